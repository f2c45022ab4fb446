/**
 * The masked key field every key form shares (provider sections, shared keys): an uncontrolled
 * password input, so the key never sits in React state or a DOM attribute, with Show/Hide, an
 * inline error tied to the input, and a help line. While a request runs the field is read-only,
 * not disabled, so it keeps focus.
 */
import type { ReactNode, RefObject } from "react";

export interface KeyInputProps {
  /** The input's id; the error and help ids derive from it. */
  id: string;
  inputRef: RefObject<HTMLInputElement | null>;
  label: string;
  name: string;
  placeholder: string;
  /** The format problem to show under the input, or null. */
  problem: string | null;
  shown: boolean;
  onToggleShown(): void;
  onInput(): void;
  /** Nothing can be entered (e.g. statuses not loaded). */
  disabled?: boolean;
  /** A request is in flight: the value cannot change, focus stays. */
  readOnly?: boolean;
  /** What the Show/Hide button names, e.g. "OpenAI key" → "Show OpenAI key". */
  toggleSubject?: string;
  help: ReactNode;
}

/** The key typed or pasted, without the spaces and newlines a paste often brings along. */
export function readKey(input: RefObject<HTMLInputElement | null>): string {
  return input.current?.value.trim() ?? "";
}

export function KeyInput(props: KeyInputProps) {
  const errorId = `${props.id}-error`;
  const helpId = `${props.id}-help`;
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <div className="key-row">
        <input
          id={props.id}
          ref={props.inputRef}
          type={props.shown ? "text" : "password"}
          name={props.name}
          autoComplete="off"
          autoCapitalize="off"
          autoCorrect="off"
          spellCheck={false}
          data-1p-ignore
          data-lpignore="true"
          placeholder={props.placeholder}
          aria-invalid={props.problem ? true : undefined}
          aria-describedby={[props.problem ? errorId : null, helpId].filter(Boolean).join(" ")}
          onInput={props.onInput}
          disabled={props.disabled}
          readOnly={props.readOnly}
        />
        <button
          type="button"
          className="secondary"
          aria-pressed={props.shown}
          aria-controls={props.id}
          onClick={props.onToggleShown}
          disabled={props.disabled}
        >
          {props.shown ? "Hide" : "Show"}
          {props.toggleSubject && (
            <>
              {" "}
              <span className="visually-hidden">{props.toggleSubject}</span>
            </>
          )}
        </button>
      </div>
      {props.problem && <p id={errorId} className="field-error" role="alert">{props.problem}</p>}
      <p id={helpId} className="help">{props.help}</p>
    </div>
  );
}
