/**
 * Sharing → Flows: the caller's flows, the owner-funded switch, the run limits, and the share
 * link. A share link is shown once, right after publish or rotate, with a copy button; closing
 * that dialog drops the token from memory and it is never written to storage or the URL.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import { type FormEvent, useCallback, useEffect, useId, useRef, useState } from "react";
import { parseWholeNumber, useActions, useRemote } from "../hooks/useRemote.ts";
import {
  createFlow,
  type Flow,
  listFlows,
  publishFlow,
  revokeShareLink,
  rotateShareLink,
  shareLink,
  updateFlow,
} from "../lib/sharingApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { ConfirmBox } from "./ConfirmBox.tsx";
import { countWords, LoadError } from "./SharingParts.tsx";
import { useToast } from "./Toasts.tsx";

export interface FlowsViewProps {
  client?: SupabaseClient;
  /** Where share links point (default: this page's origin); the link is `<origin>/live/<live_id>#<token>`. */
  shareLinkOrigin?: string;
}

export function FlowsView(props: FlowsViewProps) {
  const client = useSupabaseClient(props.client);
  const load = useCallback(() => listFlows(client), [client]);
  const flows = useRemote(load);
  const { busy, run } = useActions();
  const id = useId();
  const nameInput = useRef<HTMLInputElement>(null);
  const [nameProblem, setNameProblem] = useState<string | null>(null);
  const origin = props.shareLinkOrigin ?? window.location.origin;

  async function create(event: FormEvent) {
    event.preventDefault();
    const name = nameInput.current?.value.trim() ?? "";
    if (name === "") {
      setNameProblem("Enter a name for the flow.");
      nameInput.current?.focus();
      return;
    }
    const flow = await run("create", () => createFlow(client, name), `Flow "${name}" created.`);
    if (flow) {
      if (nameInput.current) nameInput.current.value = "";
      flows.setData((all) => [flow, ...(all ?? [])]);
    }
  }

  const replace = (flow: Flow) => flows.setData((all) => (all ?? []).map((f) => (f.id === flow.id ? flow : f)));

  return (
    <section className="sharing-view" aria-labelledby={`${id}-heading`} aria-busy={flows.loading || busy !== null}>
      <h2 id={`${id}-heading`}>Flows</h2>
      <p className="intro">
        Publish a flow to share it by link. Owner-funded flows run on your keys for everyone with the link, within the
        limits you set.
      </p>
      <form className="inline-form" onSubmit={create} noValidate>
        <div className="field">
          <label htmlFor={`${id}-name`}>New flow name</label>
          <input
            id={`${id}-name`}
            ref={nameInput}
            maxLength={200}
            autoComplete="off"
            aria-invalid={nameProblem ? true : undefined}
            aria-describedby={nameProblem ? `${id}-name-error` : undefined}
            onInput={() => setNameProblem(null)}
          />
          {nameProblem && <p id={`${id}-name-error`} className="field-error" role="alert">{nameProblem}</p>}
        </div>
        <button type="submit" disabled={busy === "create"}>{busy === "create" ? "Creating…" : "Create flow"}</button>
      </form>
      <p className="summary" aria-live="polite">
        {flows.loading && !flows.data ? "Loading your flows…" : flows.data ? countWords(flows.data.length, "flow") : null}
      </p>
      {flows.error && <LoadError message={flows.error} retry={flows.reload} />}
      <div className="cards">
        {flows.data?.map((flow) => (
          <FlowCard key={flow.id} flow={flow} client={client} origin={origin} onChange={replace} />
        ))}
      </div>
    </section>
  );
}

function FlowCard(props: { flow: Flow; client: SupabaseClient; origin: string; onChange(flow: Flow): void }) {
  const { flow, client } = props;
  const id = useId();
  const { busy, run } = useActions();
  const [link, setLink] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<"rotate" | "revoke" | null>(null);
  const [limitProblem, setLimitProblem] = useState<string | null>(null);
  const perMinute = useRef<HTMLInputElement>(null);
  const daily = useRef<HTMLInputElement>(null);
  const linkButton = useRef<HTMLButtonElement>(null);

  async function toggleOwnerFunded(on: boolean) {
    const updated = await run(
      "owner",
      () => updateFlow(client, flow.id, { use_owner_keys: on }),
      on ? `"${flow.name}" now runs on your keys for everyone with the link.` : `"${flow.name}" no longer uses your keys.`,
    );
    if (updated) props.onChange(updated);
  }

  async function saveLimits(event: FormEvent) {
    event.preventDefault();
    const minute = parseWholeNumber(perMinute.current?.value ?? "", "runs per minute", { min: 1, max: 10_000 });
    const day = parseWholeNumber(daily.current?.value ?? "", "runs per day", { min: 1, max: 1_000_000 });
    const problem = minute.problem ?? day.problem;
    setLimitProblem(problem);
    if (problem) {
      (minute.problem ? perMinute : daily).current?.focus();
      return;
    }
    const updated = await run(
      "limits",
      () => updateFlow(client, flow.id, { per_minute_limit: minute.value!, daily_limit: day.value! }),
      "Limits saved.",
    );
    if (updated) props.onChange(updated);
  }

  async function issueLink(kind: "publish" | "rotate") {
    setConfirming(null);
    const answer = await run(
      kind,
      () => (kind === "publish" ? publishFlow : rotateShareLink)(client, flow.id),
      kind === "publish" ? "Flow published." : "New link created; the old link no longer works.",
    );
    if (!answer) return;
    props.onChange(answer.flow);
    setLink(shareLink(props.origin, answer.live_id, answer.share_token));
  }

  async function revoke() {
    setConfirming(null);
    const updated = await run("revoke", () => revokeShareLink(client, flow.id), "Link revoked. Nobody can use it any more.");
    if (updated) props.onChange(updated);
    linkButton.current?.focus();
  }

  function closeLink() {
    setLink(null);
    linkButton.current?.focus();
  }

  const disabled = busy !== null;
  return (
    <section className="card" aria-labelledby={`${id}-heading`} aria-busy={busy ? true : undefined} data-flow={flow.id}>
      <header className="card-head">
        <h3 id={`${id}-heading`}>{flow.name}</h3>
        <span className={`badge ${flow.published ? "badge-on" : "badge-off"}`} data-testid="flow-status">
          {flow.published ? "Published" : "Not published"}
        </span>
      </header>
      <dl className="facts">
        <div>
          <dt>Runs today</dt>
          <dd>{flow.daily_execution_count} of {flow.daily_limit}</dd>
        </div>
        {flow.live_id && (
          <div>
            <dt>Live id</dt>
            <dd className="mono">{flow.live_id}</dd>
          </div>
        )}
      </dl>

      <div className="field switch-field">
        <label>
          <input
            type="checkbox"
            role="switch"
            checked={flow.use_owner_keys}
            onChange={(event) => toggleOwnerFunded(event.currentTarget.checked)}
            disabled={disabled}
            aria-describedby={`${id}-owner-warning`}
          />{" "}
          Owner-funded: run on my keys
        </label>
        <p id={`${id}-owner-warning`} className={flow.use_owner_keys ? "warning" : "help"}>
          {flow.use_owner_keys
            ? "On: everyone with the share link spends your provider keys, and you pay for their runs, up to the limits below."
            : "When on, collaborators with the share link spend your provider keys and you pay for their runs."}
        </p>
      </div>

      <form className="limits" onSubmit={saveLimits} noValidate key={`${flow.per_minute_limit}-${flow.daily_limit}`}>
        <div className="field">
          <label htmlFor={`${id}-minute`}>Runs per minute</label>
          <input
            id={`${id}-minute`}
            ref={perMinute}
            type="number"
            inputMode="numeric"
            min={1}
            max={10000}
            defaultValue={flow.per_minute_limit}
            aria-invalid={limitProblem?.startsWith("Runs per minute") ? true : undefined}
            aria-describedby={limitProblem ? `${id}-limit-error` : undefined}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-daily`}>Runs per day</label>
          <input
            id={`${id}-daily`}
            ref={daily}
            type="number"
            inputMode="numeric"
            min={1}
            max={1000000}
            defaultValue={flow.daily_limit}
            aria-invalid={limitProblem?.startsWith("Runs per day") ? true : undefined}
            aria-describedby={limitProblem ? `${id}-limit-error` : undefined}
          />
        </div>
        <button type="submit" className="secondary" disabled={disabled}>
          {busy === "limits" ? "Saving…" : "Save limits"}
        </button>
        {limitProblem && <p id={`${id}-limit-error`} className="field-error" role="alert">{limitProblem}</p>}
      </form>

      <div className="actions">
        {flow.published
          ? (
            <>
              <button
                type="button"
                ref={linkButton}
                aria-expanded={confirming === "rotate"}
                onClick={() => setConfirming("rotate")}
                disabled={disabled}
              >
                {busy === "rotate" ? "Creating link…" : "New share link"}
              </button>
              <button
                type="button"
                className="danger"
                aria-expanded={confirming === "revoke"}
                onClick={() => setConfirming("revoke")}
                disabled={disabled}
              >
                {busy === "revoke" ? "Revoking…" : "Revoke link"}
              </button>
            </>
          )
          : (
            <button type="button" ref={linkButton} onClick={() => issueLink("publish")} disabled={disabled}>
              {busy === "publish" ? "Publishing…" : "Publish and get link"}
            </button>
          )}
      </div>

      {confirming === "rotate" && (
        <ConfirmBox
          label={`Confirm a new share link for ${flow.name}`}
          confirmText="Yes, new link"
          onConfirm={() => issueLink("rotate")}
          onCancel={() => {
            setConfirming(null);
            linkButton.current?.focus();
          }}
        >
          Make a new share link? The current link stops working at once.
        </ConfirmBox>
      )}
      {confirming === "revoke" && (
        <ConfirmBox
          label={`Confirm revoking the share link for ${flow.name}`}
          confirmText="Yes, revoke"
          onConfirm={revoke}
          onCancel={() => {
            setConfirming(null);
            linkButton.current?.focus();
          }}
        >
          Revoke the share link? Nobody can open or run this flow through it any more.
        </ConfirmBox>
      )}
      {link && <ShareLinkDialog link={link} flowName={flow.name} onClose={closeLink} />}
    </section>
  );
}

/** Shows a freshly issued link once. The parent drops it from state when this closes. */
function ShareLinkDialog(props: { link: string; flowName: string; onClose(): void }) {
  const id = useId();
  const notify = useToast();
  const input = useRef<HTMLInputElement>(null);
  const copyButton = useRef<HTMLButtonElement>(null);
  useEffect(() => copyButton.current?.focus(), []);

  async function copy() {
    try {
      await navigator.clipboard.writeText(props.link);
      notify("success", "Link copied.");
    } catch {
      input.current?.select();
      notify("info", "Select the link and copy it with Ctrl+C (⌘C on a Mac).");
    }
  }

  return (
    <div
      className="share-dialog"
      role="dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-note`}
      onKeyDown={(event) => {
        if (event.key === "Escape") props.onClose();
      }}
    >
      <h4 id={`${id}-title`}>Share link for {props.flowName}</h4>
      <p id={`${id}-note`}>
        Copy it now: it is shown only this once. Anyone with the link can run the flow. Lost it? Make a new link.
      </p>
      <label htmlFor={`${id}-link`} className="visually-hidden">Share link</label>
      <input
        id={`${id}-link`}
        ref={input}
        readOnly
        value={props.link}
        className="mono"
        autoComplete="off"
        spellCheck={false}
        onFocus={(event) => event.currentTarget.select()}
      />
      <div className="actions">
        <button type="button" ref={copyButton} onClick={copy}>Copy link</button>
        <button type="button" className="secondary" onClick={props.onClose}>Done</button>
      </div>
    </div>
  );
}
