/**
 * One provider's card on Settings → Integrations: what the last check showed (one state model,
 * `keyState.ts`, shared with the panel's count), masked key entry with a format check, test
 * before save, save / test / turn off / remove, and a link to where the provider issues keys.
 * The key input is uncontrolled, so the key never sits in React state or in a DOM attribute, and
 * it is cleared as soon as a save succeeds. A failure stays in the card (`role="alert"`) or under
 * its field until the next action; toasts only confirm successes. Buttons stay focusable while a
 * request runs, and an action whose control goes away moves focus to its result.
 */
import { type FormEvent, useId, useRef, useState } from "react";
import { apiKeyFormatProblem, PROVIDERS, type Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { useFocusLater } from "../hooks/useFocusLater.ts";
import type { UseUserCredentials } from "../hooks/useUserCredentials.ts";
import { CredentialsError, type KeyTestResult } from "../lib/credentialsApi.ts";
import { friendlyMessage } from "../lib/errorMessages.ts";
import { KEY_STATE_VIEWS, keyStateOf, stateOfValidation } from "../lib/keyState.ts";
import { ActionButton } from "./ActionButton.tsx";
import { ConfirmBox } from "./ConfirmBox.tsx";
import { KeyInput, readKey } from "./KeyInput.tsx";
import { CardError, useToast } from "./Toasts.tsx";

export interface ProviderSectionProps {
  service: Service;
  credentials: UseUserCredentials;
}

/** What a check found, in a sentence for the card. */
const CHECK_WORDS = {
  working: "works",
  rejected: "was rejected",
  unreachable: "could not be checked",
  quota_exhausted: "has no quota left",
} as const;

/** Why a custom base URL cannot work, or null (the server checks it again, more strictly). */
function baseUrlFormatProblem(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.protocol !== "https:" && url.protocol !== "http:") return "The base URL must start with https://.";
    return null;
  } catch {
    return "Enter a full URL, for example https://llm.example.com/v1.";
  }
}

function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function messageOf(error: unknown): string {
  return error instanceof CredentialsError ? error.message : friendlyMessage("INTERNAL_ERROR");
}

/** The card's words for a test answer: null when the key works. */
function testFailureMessage(result: Pick<KeyTestResult, "valid" | "error">): string | null {
  return result.valid ? null : friendlyMessage(result.error?.code ?? "INTERNAL_ERROR", result.error?.message);
}

type Verdict = keyof typeof CHECK_WORDS;

export function ProviderSection({ service, credentials }: ProviderSectionProps) {
  const spec = PROVIDERS[service];
  const notify = useToast();
  const focusLater = useFocusLater();
  const id = useId();
  const keyInput = useRef<HTMLInputElement>(null);
  const baseUrlInput = useRef<HTMLInputElement>(null);
  const removeButton = useRef<HTMLButtonElement>(null);
  const saveButton = useRef<HTMLButtonElement>(null);
  const [showKey, setShowKey] = useState(false);
  const [keyProblem, setKeyProblem] = useState<string | null>(null);
  const [urlProblem, setUrlProblem] = useState<string | null>(null);
  const [cardError, setCardError] = useState<string | null>(null);
  /** The verdict on the key in the field, from a test before saving it. */
  const [fieldVerdict, setFieldVerdict] = useState<Verdict | null>(null);
  const [confirming, setConfirming] = useState<"remove" | "replace" | null>(null);

  const status = credentials.credentialStatus[service];
  const state = keyStateOf(status, credentials.loadError !== null && !credentials.hasLoaded);
  const view = KEY_STATE_VIEWS[state];
  const known = state !== "loading" && state !== "load_error";
  const hasKey = status?.status.api_key === true;
  const hasStored = hasKey || status?.status.base_url === true;
  const busy = credentials.pending[service] !== undefined;
  const pending = credentials.pending[service];
  const isCustom = service === "custom";
  const savedBaseUrl = status?.base_url ?? null;
  const noun = `${spec.label} key`;

  const ids = {
    heading: `${id}-heading`,
    key: `${id}-key`,
    url: `${id}-url`,
    urlError: `${id}-url-error`,
    urlHelp: `${id}-url-help`,
    status: `${id}-status`,
  };

  /** Every action starts from a clean card: the previous failure or verdict is no longer news. */
  function startAction() {
    setCardError(null);
  }

  /** Reads and checks the fields; returns null (and focuses the field) when one is wrong. */
  function readFields(): { key: string; baseUrl: string } | null {
    const key = readKey(keyInput);
    const baseUrl = baseUrlInput.current?.value.trim() ?? "";
    const baseUrlChanged = isCustom && baseUrl !== "" && baseUrl !== savedBaseUrl;
    const nextKeyProblem = key === ""
      ? (baseUrlChanged ? null : "Enter a key first.")
      : apiKeyFormatProblem(service, key);
    const nextUrlProblem = baseUrlChanged ? baseUrlFormatProblem(baseUrl) : null;
    setKeyProblem(nextKeyProblem);
    setUrlProblem(nextUrlProblem);
    if (nextKeyProblem) {
      keyInput.current?.focus();
      return null;
    }
    if (nextUrlProblem) {
      baseUrlInput.current?.focus();
      return null;
    }
    return { key, baseUrl: baseUrlChanged ? baseUrl : "" };
  }

  async function save(event: FormEvent) {
    event.preventDefault();
    if (busy || !known) return;
    startAction();
    const fields = readFields();
    if (!fields) return;
    // Replacing a key that works: test the new one first and ask.
    if (fields.key !== "" && state === "working") {
      const verdict = fieldVerdict ?? await testField(fields.key, fields.baseUrl);
      if (verdict) setConfirming("replace");
      return;
    }
    await store(fields);
  }

  async function store(fields: { key: string; baseUrl: string }) {
    const testedWorking = fieldVerdict === "working";
    try {
      if (fields.baseUrl !== "") {
        try {
          await credentials.setCredential(service, fields.baseUrl, "base_url");
        } catch (error) {
          if (error instanceof CredentialsError && error.code === "INVALID_REQUEST") {
            setUrlProblem(error.message);
            baseUrlInput.current?.focus();
            return;
          }
          throw error;
        }
      }
      let lastFour: string | null = null;
      if (fields.key !== "") {
        try {
          lastFour = (await credentials.setCredential(service, fields.key, "api_key")).last_four;
        } catch (error) {
          if (error instanceof CredentialsError && (error.code === "INVALID_FORMAT" || error.code === "INVALID_REQUEST")) {
            setKeyProblem(error.message);
            keyInput.current?.focus();
            return;
          }
          throw error;
        }
        if (keyInput.current) keyInput.current.value = "";
        setShowKey(false);
        setFieldVerdict(null);
      }
      notify(lastFour ? `${spec.label} key ending in ${lastFour} saved.` : `${spec.label} base URL saved.`);
      // A changed endpoint, or a key already tested in the field, is checked on the saved values so
      // the badge shows the truth at once.
      const endpointChanged = fields.baseUrl !== "" && (hasKey || fields.key !== "");
      if (testedWorking || endpointChanged) await testStored();
    } catch (error) {
      setCardError(messageOf(error));
    }
  }

  /** Tests the key in the field without saving it; returns the verdict, or null on failure. */
  async function testField(key: string, baseUrl: string): Promise<Verdict | null> {
    try {
      const result = await credentials.testCredential(service, key, baseUrl || undefined);
      const verdict = stateOfValidation(result.validation_status) as Verdict;
      setFieldVerdict(verdict);
      setCardError(testFailureMessage(result));
      return verdict;
    } catch (error) {
      if (error instanceof CredentialsError && (error.code === "INVALID_FORMAT" || error.code === "INVALID_REQUEST")) {
        setKeyProblem(error.message);
        keyInput.current?.focus();
      } else {
        setCardError(messageOf(error));
      }
      return null;
    }
  }

  async function testStored() {
    try {
      const result = await credentials.validateCredential(service);
      const failure = testFailureMessage(result);
      setCardError(failure);
      if (!failure) notify(`${spec.label} accepted your key.`);
    } catch (error) {
      setCardError(messageOf(error));
    }
  }

  /** Test: the key in the field when there is one (nothing saved), else the saved key. */
  async function test() {
    if (busy) return;
    startAction();
    const key = readKey(keyInput);
    if (key === "" && status?.is_active === false) {
      setCardError(`Your ${noun} is turned off. Turn it on to test it, or paste a key to test that one.`);
      return;
    }
    if (key === "") return await testStored();
    const problem = apiKeyFormatProblem(service, key);
    setKeyProblem(problem);
    if (problem) {
      keyInput.current?.focus();
      return;
    }
    const baseUrl = baseUrlInput.current?.value.trim() ?? "";
    await testField(key, isCustom && baseUrl !== savedBaseUrl ? baseUrl : "");
  }

  async function confirmReplace() {
    setConfirming(null);
    saveButton.current?.focus();
    const fields = readFields();
    if (fields) await store(fields);
  }

  async function remove() {
    setConfirming(null);
    startAction();
    removeButton.current?.focus();
    try {
      await credentials.deleteCredential(service, "api_key");
      notify(`${spec.label} key removed.`);
      // Remove no longer applies: the key field is where the person goes next.
      focusLater(keyInput);
    } catch (error) {
      setCardError(messageOf(error));
    }
  }

  async function toggleActive() {
    if (busy || !status) return;
    startAction();
    const on = status.is_active === false;
    try {
      await credentials.setCredentialActive(service, on);
      notify(on ? `${spec.label} key turned on.` : `${spec.label} key turned off; it is kept but not used.`);
    } catch (error) {
      setCardError(messageOf(error));
    }
  }

  function cancelConfirm(returnTo: "remove" | "save") {
    setConfirming(null);
    (returnTo === "remove" ? removeButton : saveButton).current?.focus();
  }

  const active = status?.is_active !== false;
  const saveLabel = pending === "set" ? "Saving…" : "Save";
  const testLabel = pending === "test" || pending === "validate" ? "Testing…" : "Test";
  const removeLabel = pending === "delete" ? "Removing…" : "Remove";

  return (
    <section
      className="provider"
      aria-labelledby={ids.heading}
      aria-busy={busy || state === "loading" ? true : undefined}
      data-service={service}
      data-state={state}
    >
      <header className="provider-head">
        <h3 id={ids.heading}>{spec.label}</h3>
        <span className={`badge badge-${view.tone}`} data-testid="status">{view.badge}</span>
      </header>

      <dl className="facts" id={ids.status}>
        {state === "loading" && (
          <div>
            <dt>Status</dt>
            <dd>loading…</dd>
          </div>
        )}
        {state === "load_error" && (
          <div>
            <dt>Status</dt>
            <dd>could not be loaded; nothing is known about this key right now</dd>
          </div>
        )}
        {hasKey && status?.last_four && (
          <div>
            <dt>Key</dt>
            <dd>
              ending in <span className="mono" data-testid="last-four">{status.last_four}</span>
              {!active && " (turned off, never used)"}
            </dd>
          </div>
        )}
        {isCustom && savedBaseUrl && (
          <div>
            <dt>Base URL</dt>
            <dd className="mono" data-testid="base-url">{savedBaseUrl}</dd>
          </div>
        )}
        {hasKey && status?.created_at && (
          <div>
            <dt>Added</dt>
            <dd data-testid="facts-added"><time dateTime={status.created_at}>{formatTime(status.created_at)}</time></dd>
          </div>
        )}
        {hasKey && (
          <div>
            <dt>Last used</dt>
            <dd data-testid="last-used">
              {status?.last_used_at
                ? <time dateTime={status.last_used_at}>{formatTime(status.last_used_at)}</time>
                : "never"}
            </dd>
          </div>
        )}
        {hasKey && (
          <div>
            <dt>Last check</dt>
            <dd data-testid="validation">
              {status?.last_validated_at && status.validation_status
                ? (
                  <>
                    <time dateTime={status.last_validated_at}>{formatTime(status.last_validated_at)}</time>
                    {" — "}
                    <span className={`result result-${view.tone}`}>
                      {CHECK_WORDS[stateOfValidation(status.validation_status) as Verdict]}
                    </span>
                  </>
                )
                : "not tested yet"}
            </dd>
          </div>
        )}
        {hasKey && status?.usage && (
          <>
            <div>
              <dt>Today</dt>
              <dd data-testid="usage-today">{usageWords(status.usage.today)}</dd>
            </div>
            <div>
              <dt>Last 30 days</dt>
              <dd data-testid="usage-30-days">{usageWords(status.usage.last_30_days)}</dd>
            </div>
          </>
        )}
      </dl>

      <form className="key-form" onSubmit={save} noValidate>
        {isCustom && (
          <div className="field">
            <label htmlFor={ids.url}>Base URL</label>
            <input
              id={ids.url}
              key={savedBaseUrl ?? ""}
              ref={baseUrlInput}
              type="url"
              inputMode="url"
              placeholder="https://llm.example.com/v1"
              defaultValue={savedBaseUrl ?? ""}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={urlProblem ? true : undefined}
              aria-describedby={[urlProblem ? ids.urlError : null, ids.urlHelp].filter(Boolean).join(" ")}
              onInput={() => {
                setUrlProblem(null);
                setFieldVerdict(null);
              }}
              disabled={!known}
              readOnly={busy || confirming !== null}
            />
            {urlProblem && <p id={ids.urlError} className="field-error" role="alert">{urlProblem}</p>}
            <p id={ids.urlHelp} className="help">Changing it tests your key against the new endpoint.</p>
          </div>
        )}
        <KeyInput
          id={ids.key}
          inputRef={keyInput}
          label={hasKey ? `Replace ${spec.label} API key` : `${spec.label} API key`}
          name={`${service}-api-key`}
          placeholder={spec.keyPrefix ? `${spec.keyPrefix}…` : "Paste your key"}
          problem={keyProblem}
          shown={showKey}
          onToggleShown={() => setShowKey((s) => !s)}
          onInput={() => {
            setKeyProblem(null);
            setFieldVerdict(null);
          }}
          disabled={!known}
          readOnly={busy || confirming !== null}
          toggleSubject={noun}
          help={
            <>
              {spec.keyPrefix ? `Starts with "${spec.keyPrefix}". ` : ""}Stored encrypted; only the last four characters are
              shown. Test checks the key in this field before you save it.
              {spec.keyPageUrl && (
                <>
                  {" "}
                  <a href={spec.keyPageUrl} target="_blank" rel="noreferrer noopener">
                    Get a key from {spec.label}
                    <span className="visually-hidden">{" "}(opens in a new tab)</span>
                  </a>
                </>
              )}
            </>
          }
        />
        {fieldVerdict && (
          <p className={`test-answer result-${fieldVerdict === "working" ? "ok" : "bad"}`} role="status" data-testid="test-answer">
            The key in the field {CHECK_WORDS[fieldVerdict]}{fieldVerdict === "working" ? "; save it to use it." : "."}
          </p>
        )}

        <div className="actions">
          <ActionButton type="submit" ref={saveButton} busy={busy} disabled={!known}>
            {saveLabel}
            {" "}<span className="visually-hidden">{`${noun}`}</span>
          </ActionButton>
          <ActionButton className="secondary" onClick={test} busy={busy} disabled={!known}>
            {testLabel}
            {" "}<span className="visually-hidden">{`${noun}`}</span>
          </ActionButton>
          {hasKey && (
            <ActionButton
              className="secondary"
              role="switch"
              aria-checked={active}
              onClick={toggleActive}
              busy={busy}
              data-testid="active-switch"
            >
              {pending === "toggle" ? "Saving…" : active ? "On" : "Off"}
              {" "}<span className="visually-hidden">{`Use ${noun}`}</span>
            </ActionButton>
          )}
          <ActionButton
            ref={removeButton}
            className="danger"
            aria-expanded={confirming === "remove"}
            onClick={() => {
              startAction();
              setConfirming("remove");
            }}
            busy={busy}
            disabled={!hasStored}
          >
            {removeLabel}
            {" "}<span className="visually-hidden">{`${noun}`}</span>
          </ActionButton>
        </div>

        <CardError message={cardError} />

        {confirming === "remove" && (
          <ConfirmBox
            label={`Confirm removing the ${noun}`}
            confirmText="Yes, remove"
            onConfirm={remove}
            onCancel={() => cancelConfirm("remove")}
          >
            Remove your {noun}? Anything that uses it stops working until you add a new one.
          </ConfirmBox>
        )}
        {confirming === "replace" && (
          <ConfirmBox
            label={`Confirm replacing the ${noun}`}
            confirmText="Yes, replace"
            onConfirm={confirmReplace}
            onCancel={() => cancelConfirm("save")}
          >
            Replace your working {noun} ending in {status?.last_four}? The new key{" "}
            {fieldVerdict ? CHECK_WORDS[fieldVerdict] : "was not tested"}.
          </ConfirmBox>
        )}
      </form>
    </section>
  );
}

function usageWords(usage: { requests: number; tokens: number }): string {
  const requests = `${usage.requests.toLocaleString("en")} ${usage.requests === 1 ? "request" : "requests"}`;
  return `${requests}, ${usage.tokens.toLocaleString("en")} tokens`;
}
