/**
 * Sharing → Shared keys: team keys the caller owns. Create one (the key goes through the same
 * masked field and format check as the provider sections), change who may use it and its
 * limits (requests and tokens a day), replace the key, delete it, and see requests and tokens per
 * user per day. Only last fours come back.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { type FormEvent, useCallback, useId, useRef, useState } from "react";
import { apiKeyFormatProblem, PROVIDERS, SERVICES, type Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { useActions, useRemote } from "../hooks/useRemote.ts";
import {
  createSharedKey,
  deleteSharedKey,
  listSharedKeys,
  replaceSharedKey,
  type SharedKey,
  sharedKeyUsage,
  type SharedKeyUsageRow,
  updateSharedKeyAccess,
  updateSharedKeyLimits,
} from "../lib/sharingApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { useFocusLater } from "../hooks/useFocusLater.ts";
import { ActionButton } from "./ActionButton.tsx";
import { ConfirmBox } from "./ConfirmBox.tsx";
import { KeyInput, readKey } from "./KeyInput.tsx";
import {
  focusFirstProblem,
  formatCount,
  LimitFields,
  type LimitProblem,
  limitWords,
  readLimits,
  tokenLimitWords,
} from "./SharedKeyLimits.tsx";
import { countWords, LoadError } from "./SharingParts.tsx";
import { CardError } from "./Toasts.tsx";

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9_-]{2,99}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Splits an allow-list typed one per line or comma-separated into emails (resolved to user ids
 * by the server) and user ids; reports an entry that is neither.
 */
export function parseTeammates(text: string): { ids: string[]; emails: string[]; problem: string | null } {
  const entries = [...new Set(text.split(/[\s,;]+/).map((s) => s.trim().toLowerCase()).filter(Boolean))];
  const bad = entries.find((value) => !UUID.test(value) && !EMAIL.test(value));
  return {
    ids: entries.filter((value) => UUID.test(value)),
    emails: entries.filter((value) => EMAIL.test(value)),
    problem: bad ? `"${bad.slice(0, 40)}" is neither an email nor a user id.` : null,
  };
}

/** The allow-list as the owner reads it: emails where known, else user ids. */
function teammatesText(key: SharedKey): string {
  return (key.allowed_users ?? key.allowed_user_ids.map((id) => ({ id, email: null })))
    .map((user) => user.email ?? user.id)
    .join("\n");
}

type Problems = Partial<Record<"account" | "display" | "key" | "users" | LimitProblem, string>>;

export function SharedKeysView(props: { client?: PanelClient }) {
  const client = useSupabaseClient(props.client);
  const load = useCallback(() => listSharedKeys(client), [client]);
  const keys = useRemote(load);
  const id = useId();
  const focusLater = useFocusLater();
  const summary = useRef<HTMLParagraphElement>(null);

  const replace = (key: SharedKey) =>
    keys.setData((all) => (all ?? []).map((k) => (k.account_name === key.account_name ? key : k)));
  const remove = (account: string) => {
    keys.setData((all) => (all ?? []).filter((k) => k.account_name !== account));
    focusLater(summary);
  };

  return (
    <section className="sharing-view" aria-labelledby={`${id}-heading`} aria-busy={keys.loading}>
      <h2 id={`${id}-heading`}>Shared keys</h2>
      <p className="intro">
        A shared key lets teammates use one of your keys by its account name, within the limits you set. They never see
        the key.
      </p>
      <CreateSharedKeyForm client={client} onCreated={(key) => keys.setData((all) => [...(all ?? []), key])} />
      <p className="summary" aria-live="polite" ref={summary} tabIndex={-1}>
        {keys.loading && !keys.data ? "Loading your shared keys…" : keys.data ? countWords(keys.data.length, "shared key") : null}
      </p>
      {keys.error && <LoadError message={keys.error} retry={keys.reload} />}
      <div className="cards">
        {keys.data?.map((key) => (
          <SharedKeyCard key={key.account_name} sharedKey={key} client={client} onChange={replace} onDeleted={remove} />
        ))}
      </div>
    </section>
  );
}

function CreateSharedKeyForm(props: { client: PanelClient; onCreated(key: SharedKey): void }) {
  const id = useId();
  const { busy, run, error: failure } = useActions();
  const form = useRef<HTMLFormElement>(null);
  const keyInput = useRef<HTMLInputElement>(null);
  const [provider, setProvider] = useState<Service>("openai");
  const [showKey, setShowKey] = useState(false);
  const [problems, setProblems] = useState<Problems>({});
  const spec = PROVIDERS[provider];

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const data = new FormData(event.currentTarget);
    const text = (name: string) => String(data.get(name) ?? "").trim();
    const apiKey = readKey(keyInput);
    const users = parseTeammates(text("allowed_user_ids"));
    const { limits, problems: limitProblems } = readLimits(data);
    const next: Problems = {
      account: ACCOUNT_NAME.test(text("account_name")) ? undefined : "Use 3 to 100 of a-z, 0-9, _ and -, starting with a letter or digit.",
      display: text("display_name") ? undefined : "Enter a display name.",
      key: apiKey === "" ? "Enter the key to share." : apiKeyFormatProblem(provider, apiKey) ?? undefined,
      users: users.problem ?? undefined,
      ...limitProblems,
    };
    setProblems(next);
    const first = Object.entries(next).find(([, problem]) => problem);
    if (first) {
      if (first[0] === "key") keyInput.current?.focus();
      else form.current?.querySelector<HTMLElement>(`[data-field="${first[0]}"]`)?.focus();
      return;
    }
    const created = await run(
      "create",
      () =>
        createSharedKey(props.client, {
          account_name: text("account_name"),
          display_name: text("display_name"),
          provider,
          model: text("model") || null,
          api_key: apiKey,
          is_public: data.get("is_public") === "on",
          allowed_user_ids: users.ids,
          ...(users.emails.length > 0 ? { allowed_emails: users.emails } : {}),
          ...limits,
        }),
      (key) => `Shared key "${key.account_name}" (ending in ${key.last_four}) created.`,
    );
    if (created) {
      form.current?.reset();
      if (keyInput.current) keyInput.current.value = "";
      setShowKey(false);
      props.onCreated(created);
    }
  }

  const field = (name: keyof Problems) => ({
    "data-field": name,
    "aria-invalid": problems[name] ? true : undefined,
    "aria-describedby": problems[name] ? `${id}-${name}-error` : undefined,
    onInput: () => setProblems((p) => ({ ...p, [name]: undefined })),
  });
  const error = (name: keyof Problems) =>
    problems[name] && <p id={`${id}-${name}-error`} className="field-error" role="alert">{problems[name]}</p>;

  return (
    <form ref={form} className="card create-shared-key" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>New shared key</h3>
      <div className="grid-2">
        <div className="field">
          <label htmlFor={`${id}-account`}>Account name</label>
          <input id={`${id}-account`} name="account_name" autoComplete="off" spellCheck={false} {...field("account")} />
          {error("account")}
        </div>
        <div className="field">
          <label htmlFor={`${id}-display`}>Display name</label>
          <input id={`${id}-display`} name="display_name" autoComplete="off" {...field("display")} />
          {error("display")}
        </div>
        <div className="field">
          <label htmlFor={`${id}-provider`}>Provider</label>
          <select
            id={`${id}-provider`}
            name="provider"
            value={provider}
            onChange={(event) => setProvider(event.currentTarget.value as Service)}
          >
            {SERVICES.map((s) => <option key={s} value={s}>{PROVIDERS[s].label}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-model`}>Model (optional)</label>
          <input id={`${id}-model`} name="model" autoComplete="off" spellCheck={false} maxLength={200} />
        </div>
      </div>
      <KeyInput
        id={`${id}-key`}
        inputRef={keyInput}
        label={`${spec.label} API key to share`}
        name="shared-api-key"
        placeholder={spec.keyPrefix ? `${spec.keyPrefix}…` : "Paste the key"}
        problem={problems.key ?? null}
        shown={showKey}
        onToggleShown={() => setShowKey((s) => !s)}
        onInput={() => setProblems((p) => ({ ...p, key: undefined }))}
        help={`${spec.keyPrefix ? `Starts with "${spec.keyPrefix}". ` : ""}Stored encrypted; teammates never see it.`}
      />
      <div className="field switch-field">
        <label>
          <input type="checkbox" name="is_public" /> Anyone signed in may use it (public)
        </label>
      </div>
      <div className="field">
        <label htmlFor={`${id}-users`}>Allowed teammates</label>
        <textarea id={`${id}-users`} name="allowed_user_ids" rows={2} spellCheck={false} {...field("users")} />
        <p className="help">
          Their emails (or user ids), one per line or separated by commas. Each must have an account here. Ignored when
          the key is public.
        </p>
        {error("users")}
      </div>
      <LimitFields id={id} problems={problems} onInput={(name) => setProblems((p) => ({ ...p, [name]: undefined }))} />
      <div className="actions">
        <ActionButton type="submit" busy={busy !== null}>{busy === "create" ? "Creating…" : "Create shared key"}</ActionButton>
      </div>
      <CardError message={failure} />
    </form>
  );
}

function SharedKeyCard(props: {
  sharedKey: SharedKey;
  client: PanelClient;
  onChange(key: SharedKey): void;
  onDeleted(account: string): void;
}) {
  const key = props.sharedKey;
  const id = useId();
  const { busy, run, error: failure } = useActions();
  const keyInput = useRef<HTMLInputElement>(null);
  const deleteButton = useRef<HTMLButtonElement>(null);
  const [showKey, setShowKey] = useState(false);
  const [problems, setProblems] = useState<Problems>({});
  const [confirming, setConfirming] = useState(false);
  const [usage, setUsage] = useState<SharedKeyUsageRow[] | null>(null);
  const spec = PROVIDERS[key.provider];
  const isBusy = busy !== null;

  async function saveAccess(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const data = new FormData(event.currentTarget);
    const users = parseTeammates(String(data.get("allowed_user_ids") ?? ""));
    setProblems((p) => ({ ...p, users: users.problem ?? undefined }));
    if (users.problem) return;
    const updated = await run(
      "access",
      () =>
        updateSharedKeyAccess(props.client, key.account_name, {
          is_public: data.get("is_public") === "on",
          allowed_user_ids: users.ids,
          allowed_emails: users.emails,
        }),
      "Access saved.",
    );
    if (updated) props.onChange(updated);
  }

  async function saveLimits(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget;
    // Every limit is sent as it stands: an emptied field is null, which clears that limit.
    const { limits, problems: limitProblems } = readLimits(new FormData(form));
    setProblems((p) => ({ ...p, ...limitProblems }));
    if (focusFirstProblem(form, limitProblems)) return;
    const updated = await run(
      "limits",
      () => updateSharedKeyLimits(props.client, key.account_name, limits),
      "Limits saved.",
    );
    if (updated) props.onChange(updated);
  }

  async function replaceKey(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    const value = readKey(keyInput);
    const problem = value === "" ? "Enter the new key." : apiKeyFormatProblem(key.provider, value);
    setProblems((p) => ({ ...p, key: problem ?? undefined }));
    if (problem) {
      keyInput.current?.focus();
      return;
    }
    const updated = await run(
      "key",
      () => replaceSharedKey(props.client, key, value),
      (k) => `Key replaced; it now ends in ${k.last_four}.`,
    );
    if (updated) {
      if (keyInput.current) keyInput.current.value = "";
      setShowKey(false);
      props.onChange(updated);
    }
  }

  async function remove() {
    setConfirming(false);
    deleteButton.current?.focus();
    const done = await run("delete", () => deleteSharedKey(props.client, key.account_name), `Shared key "${key.account_name}" deleted.`);
    if (done) props.onDeleted(key.account_name);
  }

  async function loadUsage() {
    const rows = await run("usage", () => sharedKeyUsage(props.client, key.account_name, 7));
    if (rows) setUsage(rows);
  }

  const error = (name: keyof Problems) =>
    problems[name] && <p id={`${id}-${name}-error`} className="field-error" role="alert">{problems[name]}</p>;

  return (
    <section className="card" aria-labelledby={`${id}-heading`} aria-busy={busy ? true : undefined} data-account={key.account_name}>
      <header className="card-head">
        <h3 id={`${id}-heading`}>{key.display_name}</h3>
        <span className={`badge ${key.is_public ? "badge-on" : "badge-off"}`}>
          {key.is_public ? "Public" : `${key.allowed_user_ids.length} allowed`}
        </span>
      </header>
      <dl className="facts">
        <div>
          <dt>Account</dt>
          <dd className="mono">{key.account_name}</dd>
        </div>
        <div>
          <dt>Provider</dt>
          <dd>{spec.label}{key.model ? ` · ${key.model}` : ""}</dd>
        </div>
        <div>
          <dt>Key</dt>
          <dd>ending in <span className="mono" data-testid="last-four">{key.last_four}</span></dd>
        </div>
        {!key.is_public && (key.allowed_users ?? []).length > 0 && (
          <div>
            <dt>Allowed</dt>
            <dd data-testid="allowed-users">
              {(key.allowed_users ?? []).map((user) => user.email ?? user.id).join(", ")}
            </dd>
          </div>
        )}
        <div>
          <dt>Request limits</dt>
          <dd data-testid="limits">{limitWords(key)}</dd>
        </div>
        <div>
          <dt>Token limits</dt>
          <dd data-testid="token-limits">{tokenLimitWords(key)}</dd>
        </div>
      </dl>

      <details>
        <summary>Access and limits</summary>
        <form onSubmit={saveAccess} noValidate key={`access-${key.updated_at}`}>
          <div className="field switch-field">
            <label>
              <input type="checkbox" name="is_public" defaultChecked={key.is_public} /> Anyone signed in may use it (public)
            </label>
          </div>
          <div className="field">
            <label htmlFor={`${id}-users`}>Allowed teammates</label>
            <textarea
              id={`${id}-users`}
              name="allowed_user_ids"
              rows={3}
              spellCheck={false}
              defaultValue={teammatesText(key)}
              aria-invalid={problems.users ? true : undefined}
              aria-describedby={problems.users ? `${id}-users-error` : undefined}
            />
            {error("users")}
          </div>
          <ActionButton type="submit" className="secondary" busy={isBusy}>{busy === "access" ? "Saving…" : "Save access"}</ActionButton>
        </form>
        <form onSubmit={saveLimits} noValidate key={`limits-${key.updated_at}`}>
          <LimitFields
            id={id}
            problems={problems}
            values={key}
            onInput={(name) => setProblems((p) => ({ ...p, [name]: undefined }))}
          />
          <ActionButton type="submit" className="secondary" busy={isBusy}>{busy === "limits" ? "Saving…" : "Save limits"}</ActionButton>
        </form>
      </details>

      <details>
        <summary>Replace the key</summary>
        <form onSubmit={replaceKey} noValidate>
          <KeyInput
            id={`${id}-key`}
            inputRef={keyInput}
            label={`New ${spec.label} key for ${key.account_name}`}
            name={`${key.account_name}-api-key`}
            placeholder={spec.keyPrefix ? `${spec.keyPrefix}…` : "Paste the key"}
            problem={problems.key ?? null}
            shown={showKey}
            onToggleShown={() => setShowKey((s) => !s)}
            onInput={() => setProblems((p) => ({ ...p, key: undefined }))}
            readOnly={isBusy}
            help="Teammates keep using the account name; only the key behind it changes."
          />
          <ActionButton type="submit" className="secondary" busy={isBusy}>{busy === "key" ? "Replacing…" : "Replace key"}</ActionButton>
        </form>
      </details>

      <div className="actions">
        <ActionButton className="secondary" onClick={loadUsage} busy={isBusy}>
          {busy === "usage" ? "Loading usage…" : usage ? "Refresh usage" : "Show usage"}
        </ActionButton>
        <ActionButton
          ref={deleteButton}
          className="danger"
          aria-expanded={confirming}
          onClick={() => setConfirming(true)}
          busy={isBusy}
        >
          {busy === "delete" ? "Deleting…" : "Delete"}
          {" "}<span className="visually-hidden">{`shared key ${key.account_name}`}</span>
        </ActionButton>
      </div>
      <CardError message={failure} />
      {confirming && (
        <ConfirmBox
          label={`Confirm deleting the shared key ${key.account_name}`}
          confirmText="Yes, delete"
          onConfirm={remove}
          onCancel={() => {
            setConfirming(false);
            deleteButton.current?.focus();
          }}
        >
          Delete "{key.account_name}"? Everyone using it needs their own key again.
        </ConfirmBox>
      )}
      {usage && <UsageTable rows={usage} caption={`Requests and tokens through ${key.account_name}, last 7 days`} />}
    </section>
  );
}

function UsageTable(props: { rows: SharedKeyUsageRow[]; caption: string }) {
  if (props.rows.length === 0) return <p className="help" data-testid="usage-empty">No requests in the last 7 days.</p>;
  return (
    <div className="table-wrap">
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Day</th>
            <th scope="col">User</th>
            <th scope="col">Requests</th>
            <th scope="col">Tokens</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={`${row.day}-${row.user_id}`}>
              <td>{row.day}</td>
              <td className={row.email ? undefined : "mono"}>{row.email ?? row.user_id}</td>
              <td>{formatCount(row.requests)}</td>
              <td>{formatCount(row.tokens)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
