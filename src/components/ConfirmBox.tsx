/**
 * An inline confirmation for destructive actions: it takes focus when it appears (so Enter
 * confirms from the keyboard) and Escape cancels.
 */
import { type ReactNode, useEffect, useRef } from "react";

export interface ConfirmBoxProps {
  /** The group's accessible name, e.g. "Confirm removing the OpenAI key". */
  label: string;
  children: ReactNode;
  confirmText: string;
  onConfirm(): void;
  onCancel(): void;
}

export function ConfirmBox(props: ConfirmBoxProps) {
  const confirmButton = useRef<HTMLButtonElement>(null);
  useEffect(() => confirmButton.current?.focus(), []);
  return (
    <div
      className="confirm"
      role="group"
      aria-label={props.label}
      onKeyDown={(event) => {
        if (event.key === "Escape") props.onCancel();
      }}
    >
      <p>{props.children}</p>
      <button type="button" className="danger" ref={confirmButton} onClick={props.onConfirm}>
        {props.confirmText}
      </button>
      <button type="button" className="secondary" onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}
