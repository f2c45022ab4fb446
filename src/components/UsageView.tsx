/**
 * Sharing → Your usage: which key your requests use (your own, or a team shared key), and how
 * many requests it has served today. Switch to a shared key by its account name, or back to
 * your own keys.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { type FormEvent, useCallback, useId, useRef, useState } from "react";
import { PROVIDERS, SERVICES, type Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { formatTime, useActions, useRemote } from "../hooks/useRemote.ts";
import { chooseSharedKey, choosePersonalKeys, getMyConfig, type LlmConfigSummary } from "../lib/sharingApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { ActionButton } from "./ActionButton.tsx";
import { LoadError } from "./SharingParts.tsx";
import { CardError } from "./Toasts.tsx";

function modeWords(config: LlmConfigSummary): string {
  if (config.use_shared_key) {
    const name = config.shared_key_display_name ?? config.shared_key_account_name;
    return `Shared key "${name}"`;
  }
  if (config.use_owner_name) return `Owner-name key "${config.key_owner_name}"`;
  return "Your own keys";
}

export function UsageView(props: { client?: PanelClient }) {
  const client = useSupabaseClient(props.client);
  const load = useCallback(() => getMyConfig(client), [client]);
  const config = useRemote(load);
  const { busy, run, error: failure } = useActions();
  const id = useId();
  const accountInput = useRef<HTMLInputElement>(null);
  const [accountProblem, setAccountProblem] = useState<string | null>(null);
  const [provider, setProvider] = useState<Service | null>(null);
  const summary = config.data;
  const chosenProvider = provider ?? summary?.provider ?? "openai";

  async function useShared(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    const account = accountInput.current?.value.trim() ?? "";
    if (!/^[a-z0-9][a-z0-9_-]{2,99}$/.test(account)) {
      setAccountProblem("Enter the shared key's account name (3 to 100 of a-z, 0-9, _ and -).");
      accountInput.current?.focus();
      return;
    }
    const done = await run("shared", () => chooseSharedKey(client, account), `Your requests now use the shared key "${account}".`);
    if (done) {
      if (accountInput.current) accountInput.current.value = "";
      await config.reload();
    }
  }

  async function usePersonal(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    const done = await run(
      "personal",
      () => choosePersonalKeys(client, chosenProvider),
      `Your ${PROVIDERS[chosenProvider].label} requests now use your own key.`,
    );
    if (done) await config.reload();
  }

  return (
    <section className="sharing-view" aria-labelledby={`${id}-heading`} aria-busy={config.loading || busy !== null}>
      <h2 id={`${id}-heading`}>Your usage</h2>
      {config.error && <LoadError message={config.error} retry={config.reload} />}
      <p className="summary" aria-live="polite">{config.loading && !summary ? "Loading your usage…" : null}</p>
      {summary && (
        <div className="card">
          <dl className="facts" data-testid="usage-summary">
            <div>
              <dt>Using</dt>
              <dd data-testid="mode">{modeWords(summary)}</dd>
            </div>
            {summary.provider && (
              <div>
                <dt>Provider</dt>
                <dd>{PROVIDERS[summary.provider]?.label ?? summary.provider}{summary.model ? ` · ${summary.model}` : ""}</dd>
              </div>
            )}
            <div>
              <dt>Today</dt>
              <dd data-testid="usage-today">
                {summary.usage_today ?? 0} {summary.usage_today === 1 ? "request" : "requests"}
                {summary.daily_limit ? ` of ${summary.daily_limit}` : ""}
              </dd>
            </div>
            {summary.key_last_four && (
              <div>
                <dt>Key</dt>
                <dd>ending in <span className="mono">{summary.key_last_four}</span></dd>
              </div>
            )}
            {summary.last_validated_at && (
              <div>
                <dt>Last check</dt>
                <dd><time dateTime={summary.last_validated_at}>{formatTime(summary.last_validated_at)}</time></dd>
              </div>
            )}
          </dl>
        </div>
      )}
      <CardError message={failure} />
      <div className="grid-2">
        <form className="card" onSubmit={useShared} noValidate aria-labelledby={`${id}-shared-title`}>
          <h3 id={`${id}-shared-title`}>Use a team shared key</h3>
          <div className="field">
            <label htmlFor={`${id}-account`}>Shared key account name</label>
            <input
              id={`${id}-account`}
              ref={accountInput}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={accountProblem ? true : undefined}
              aria-describedby={accountProblem ? `${id}-account-error` : `${id}-account-help`}
              onInput={() => setAccountProblem(null)}
            />
            {accountProblem && <p id={`${id}-account-error`} className="field-error" role="alert">{accountProblem}</p>}
            <p id={`${id}-account-help`} className="help">The owner of the key gives you its account name.</p>
          </div>
          <ActionButton type="submit" busy={busy !== null}>{busy === "shared" ? "Switching…" : "Use shared key"}</ActionButton>
        </form>
        <form className="card" onSubmit={usePersonal} noValidate aria-labelledby={`${id}-own-title`}>
          <h3 id={`${id}-own-title`}>Use your own key</h3>
          <div className="field">
            <label htmlFor={`${id}-provider`}>Provider</label>
            <select id={`${id}-provider`} value={chosenProvider} onChange={(e) => setProvider(e.currentTarget.value as Service)}>
              {SERVICES.map((s) => <option key={s} value={s}>{PROVIDERS[s].label}</option>)}
            </select>
            <p className="help">Requests then use the key you saved under Provider keys.</p>
          </div>
          <ActionButton type="submit" className="secondary" busy={busy !== null}>
            {busy === "personal" ? "Switching…" : "Use my own key"}
          </ActionButton>
        </form>
      </div>
    </section>
  );
}
