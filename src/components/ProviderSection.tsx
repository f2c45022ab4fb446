/**
 * One provider's card on Settings → Integrations: status, masked key entry with a format check,
 * save / test / remove (with confirmation) and a link to where the provider issues keys.
 * The key input is uncontrolled, so the key never sits in React state or in a DOM attribute, and
 * it is cleared as soon as a save succeeds.
 */
import { type FormEvent, useId, useRef, useState } from "react";
import { apiKeyFormatProblem, PROVIDERS, type Service } from "../../supabase/functions/_shared/providers.ts";
import type { UseUserCredentials } from "../hooks/useUserCredentials.ts";
import { CredentialsError } from "../lib/credentialsApi.ts";
import { friendlyMessage } from "../lib/errorMessages.ts";
import { ConfirmBox } from "./ConfirmBox.tsx";
import { KeyInput } from "./KeyInput.tsx";
import { useToast } from "./Toasts.tsx";

export interface ProviderSectionProps {
  service: Service;
  credentials: UseUserCredentials;
}

const VALIDATION_WORDS = { valid: "valid", invalid: "rejected", unreachable: "could not be checked" } as const;

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

export function ProviderSection({ service, credentials }: ProviderSectionProps) {
  const spec = PROVIDERS[service];
  const notify = useToast();
  const id = useId();
  const keyInput = useRef<HTMLInputElement>(null);
  const baseUrlInput = useRef<HTMLInputElement>(null);
  const removeButton = useRef<HTMLButtonElement>(null);
  const [showKey, setShowKey] = useState(false);
  const [keyProblem, setKeyProblem] = useState<string | null>(null);
  const [urlProblem, setUrlProblem] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);

  const status = credentials.credentialStatus[service];
  const connected = status?.configured === true;
  const hasKey = status?.status.api_key === true;
  const busy = credentials.pending[service];
  const isCustom = service === "custom";

  const ids = {
    heading: `${id}-heading`,
    key: `${id}-key`,
    url: `${id}-url`,
    urlError: `${id}-url-error`,
    status: `${id}-status`,
  };

  async function save(event: FormEvent) {
    event.preventDefault();
    const key = keyInput.current?.value ?? "";
    const baseUrl = baseUrlInput.current?.value.trim() ?? "";
    const nextKeyProblem = key === "" ? (isCustom && baseUrl !== "" ? null : "Enter a key first.") : apiKeyFormatProblem(service, key);
    const nextUrlProblem = isCustom && baseUrl !== "" ? baseUrlFormatProblem(baseUrl) : null;
    setKeyProblem(nextKeyProblem);
    setUrlProblem(nextUrlProblem);
    if (nextKeyProblem) {
      keyInput.current?.focus();
      return;
    }
    if (nextUrlProblem) {
      baseUrlInput.current?.focus();
      return;
    }
    try {
      if (isCustom && baseUrl !== "") {
        await credentials.setCredential(service, baseUrl, "base_url");
        if (baseUrlInput.current) baseUrlInput.current.value = "";
      }
      let lastFour: string | null = null;
      if (key !== "") {
        const saved = await credentials.setCredential(service, key, "api_key");
        lastFour = saved.last_four;
      }
      if (keyInput.current) keyInput.current.value = "";
      setShowKey(false);
      notify("success", lastFour ? `${spec.label} key ending in ${lastFour} saved.` : `${spec.label} base URL saved.`);
    } catch (error) {
      const problem = messageOf(error);
      if (error instanceof CredentialsError && (error.code === "INVALID_FORMAT" || error.code === "INVALID_REQUEST")) {
        setKeyProblem(problem);
      }
      notify("error", problem);
    }
  }

  async function test() {
    try {
      const result = await credentials.validateCredential(service);
      if (result.valid) notify("success", `${spec.label} accepted your key.`);
      else notify("error", friendlyMessage(result.error?.code ?? "INTERNAL_ERROR", result.error?.message));
    } catch (error) {
      notify("error", messageOf(error));
    }
  }

  async function remove() {
    setConfirming(false);
    try {
      await credentials.deleteCredential(service, "api_key");
      notify("success", `${spec.label} key removed.`);
      keyInput.current?.focus();
    } catch (error) {
      notify("error", messageOf(error));
      removeButton.current?.focus();
    }
  }

  function cancelRemove() {
    setConfirming(false);
    removeButton.current?.focus();
  }

  const statusWord = connected ? "Connected" : isCustom && (hasKey || status?.status.base_url) ? "Incomplete" : "Not connected";

  return (
    <section className="provider" aria-labelledby={ids.heading} aria-busy={busy ? true : undefined} data-service={service}>
      <header className="provider-head">
        <h3 id={ids.heading}>{spec.label}</h3>
        <span className={`badge ${connected ? "badge-on" : "badge-off"}`} data-testid="status">{statusWord}</span>
      </header>

      <dl className="facts" id={ids.status}>
        {hasKey && status?.last_four && (
          <div>
            <dt>Key</dt>
            <dd>
              ending in <span className="mono" data-testid="last-four">{status.last_four}</span>
            </dd>
          </div>
        )}
        {isCustom && status?.status.base_url && (
          <div>
            <dt>Base URL</dt>
            <dd>saved</dd>
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
                    <span className={`result result-${status.validation_status}`}>
                      {VALIDATION_WORDS[status.validation_status]}
                    </span>
                  </>
                )
                : "not tested yet"}
            </dd>
          </div>
        )}
      </dl>

      <form className="key-form" onSubmit={save} noValidate>
        {isCustom && (
          <div className="field">
            <label htmlFor={ids.url}>Base URL</label>
            <input
              id={ids.url}
              ref={baseUrlInput}
              type="url"
              inputMode="url"
              placeholder="https://llm.example.com/v1"
              autoComplete="off"
              spellCheck={false}
              aria-invalid={urlProblem ? true : undefined}
              aria-describedby={urlProblem ? ids.urlError : undefined}
              onInput={() => setUrlProblem(null)}
              disabled={busy !== undefined}
            />
            {urlProblem && <p id={ids.urlError} className="field-error" role="alert">{urlProblem}</p>}
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
          onInput={() => setKeyProblem(null)}
          disabled={busy !== undefined}
          help={
            <>
              {spec.keyPrefix ? `Starts with "${spec.keyPrefix}". ` : ""}Stored encrypted; only the last four characters are shown.
              {spec.keyPageUrl && (
                <>
                  {" "}
                  <a href={spec.keyPageUrl} target="_blank" rel="noreferrer noopener">
                    Get a key from {spec.label}<span className="visually-hidden"> (opens in a new tab)</span>
                  </a>
                </>
              )}
            </>
          }
        />

        <div className="actions">
          <button type="submit" disabled={busy !== undefined}>
            {busy === "set" ? "Saving…" : "Save"}
          </button>
          <button type="button" className="secondary" onClick={test} disabled={!hasKey || busy !== undefined}>
            {busy === "validate" ? "Testing…" : "Test key"}
          </button>
          <button
            type="button"
            ref={removeButton}
            className="danger"
            aria-expanded={confirming}
            onClick={() => setConfirming(true)}
            disabled={!(hasKey || status?.status.base_url) || busy !== undefined}
          >
            {busy === "delete" ? "Removing…" : "Remove"}
          </button>
        </div>

        {confirming && (
          <ConfirmBox
            label={`Confirm removing the ${spec.label} key`}
            confirmText="Yes, remove"
            onConfirm={remove}
            onCancel={cancelRemove}
          >
            Remove your {spec.label} key? Anything that uses it stops working until you add a new one.
          </ConfirmBox>
        )}
      </form>
    </section>
  );
}

function messageOf(error: unknown): string {
  return error instanceof CredentialsError ? error.message : friendlyMessage("INTERNAL_ERROR");
}
