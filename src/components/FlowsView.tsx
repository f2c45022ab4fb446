/**
 * Sharing → Flows: the caller's flows and their whole lifecycle (create, rename, publish, new
 * link, revoke, unpublish, delete), the owner-funded switch and the run limits. A share link is
 * shown once, right after publish or rotate, in a dialog that keeps focus inside it; closing it
 * drops the token from memory and it is never written to storage or the URL. Failures stay in
 * the card until the next action; focus stays on the control used, or moves to the result.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { type FormEvent, type KeyboardEvent, useCallback, useEffect, useId, useRef, useState } from "react";
import { useFocusLater } from "../hooks/useFocusLater.ts";
import { parseWholeNumber, useActions, useRemote } from "../hooks/useRemote.ts";
import {
  createFlow,
  deleteFlow,
  type Flow,
  listFlows,
  publishFlow,
  revokeShareLink,
  rotateShareLink,
  shareLink,
  unpublishFlow,
  updateFlow,
} from "../lib/sharingApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { ActionButton } from "./ActionButton.tsx";
import { ConfirmBox } from "./ConfirmBox.tsx";
import { countWords, LoadError } from "./SharingParts.tsx";
import { CardError, useToast } from "./Toasts.tsx";

export interface FlowsViewProps {
  client?: PanelClient;
  /** Where share links point (default: this page's origin); the link is `<origin>/live/<live_id>#<token>`. */
  shareLinkOrigin?: string;
}

export function FlowsView(props: FlowsViewProps) {
  const client = useSupabaseClient(props.client);
  const load = useCallback(() => listFlows(client), [client]);
  const flows = useRemote(load);
  const { busy, run, error } = useActions();
  const id = useId();
  const focusLater = useFocusLater();
  const nameInput = useRef<HTMLInputElement>(null);
  const summary = useRef<HTMLParagraphElement>(null);
  const [nameProblem, setNameProblem] = useState<string | null>(null);
  const origin = props.shareLinkOrigin ?? window.location.origin;

  async function create(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
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
  const removed = (flowId: string) => {
    flows.setData((all) => (all ?? []).filter((f) => f.id !== flowId));
    // The card is gone: focus goes to the count that says so.
    focusLater(summary);
  };

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
        <ActionButton type="submit" busy={busy !== null}>{busy === "create" ? "Creating…" : "Create flow"}</ActionButton>
      </form>
      <CardError message={error} />
      <p className="summary" aria-live="polite" ref={summary} tabIndex={-1}>
        {flows.loading && !flows.data ? "Loading your flows…" : flows.data ? countWords(flows.data.length, "flow") : null}
      </p>
      {flows.error && <LoadError message={flows.error} retry={flows.reload} />}
      <div className="cards">
        {flows.data?.map((flow) => (
          <FlowCard key={flow.id} flow={flow} client={client} origin={origin} onChange={replace} onDeleted={removed} />
        ))}
      </div>
    </section>
  );
}

type Confirming = "rotate" | "revoke" | "unpublish" | "delete";

function FlowCard(
  props: { flow: Flow; client: PanelClient; origin: string; onChange(flow: Flow): void; onDeleted(flowId: string): void },
) {
  const { flow, client } = props;
  const id = useId();
  const { busy, run, error } = useActions();
  const focusLater = useFocusLater();
  const [link, setLink] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Confirming | null>(null);
  const [limitProblem, setLimitProblem] = useState<string | null>(null);
  const [nameProblem, setNameProblem] = useState<string | null>(null);
  const perMinute = useRef<HTMLInputElement>(null);
  const daily = useRef<HTMLInputElement>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const linkButton = useRef<HTMLButtonElement>(null);
  const confirmOpeners = useRef<Partial<Record<Confirming, HTMLButtonElement | null>>>({});

  async function rename(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    const name = nameInput.current?.value.trim() ?? "";
    setNameProblem(name === "" ? "Enter a name for the flow." : null);
    if (name === "") {
      nameInput.current?.focus();
      return;
    }
    if (name === flow.name) return;
    const updated = await run("rename", () => updateFlow(client, flow.id, { name }), `Flow renamed to "${name}".`);
    if (updated) props.onChange(updated);
  }

  async function toggleOwnerFunded(on: boolean) {
    if (busy) return;
    const updated = await run(
      "owner",
      () => updateFlow(client, flow.id, { use_owner_keys: on }),
      on ? `"${flow.name}" now runs on your keys for everyone with the link.` : `"${flow.name}" no longer uses your keys.`,
    );
    if (updated) props.onChange(updated);
  }

  async function saveLimits(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
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
    linkButton.current?.focus();
    const answer = await run(
      kind,
      () => (kind === "publish" ? publishFlow : rotateShareLink)(client, flow.id),
      kind === "publish" ? "Flow published." : "New link created; the old link no longer works.",
    );
    if (!answer) return;
    props.onChange(answer.flow);
    setLink(shareLink(props.origin, answer.live_id, answer.share_token));
  }

  /** Revoke or unpublish: either way the flow is no longer published, and Publish is next. */
  async function withdraw(kind: "revoke" | "unpublish") {
    setConfirming(null);
    confirmOpeners.current[kind]?.focus();
    const updated = await run(
      kind,
      () => (kind === "revoke" ? revokeShareLink : unpublishFlow)(client, flow.id),
      kind === "revoke" ? "Link revoked. Nobody can use it any more." : "Flow unpublished.",
    );
    if (updated) {
      props.onChange(updated);
      focusLater(linkButton);
    }
  }

  async function remove() {
    setConfirming(null);
    confirmOpeners.current.delete?.focus();
    const done = await run("delete", () => deleteFlow(client, flow.id), `Flow "${flow.name}" deleted.`);
    if (done) props.onDeleted(flow.id);
  }

  function closeLink() {
    setLink(null);
    linkButton.current?.focus();
  }

  function cancel(kind: Confirming) {
    setConfirming(null);
    (kind === "rotate" ? linkButton.current : confirmOpeners.current[kind])?.focus();
  }

  const isBusy = busy !== null;
  const opener = (kind: Confirming) => ({
    ref: (el: HTMLButtonElement | null) => {
      confirmOpeners.current[kind] = el;
    },
    "aria-expanded": confirming === kind,
    onClick: () => setConfirming(kind),
    busy: isBusy,
  });
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

      <form className="inline-form rename" onSubmit={rename} noValidate key={`name-${flow.name}`}>
        <div className="field">
          <label htmlFor={`${id}-rename`}>Flow name</label>
          <input
            id={`${id}-rename`}
            ref={nameInput}
            defaultValue={flow.name}
            maxLength={200}
            autoComplete="off"
            readOnly={isBusy}
            aria-invalid={nameProblem ? true : undefined}
            aria-describedby={nameProblem ? `${id}-rename-error` : undefined}
            onInput={() => setNameProblem(null)}
          />
          {nameProblem && <p id={`${id}-rename-error`} className="field-error" role="alert">{nameProblem}</p>}
        </div>
        <ActionButton type="submit" className="secondary" busy={isBusy}>
          {busy === "rename" ? "Renaming…" : "Rename"}
          {" "}<span className="visually-hidden">{`${flow.name}`}</span>
        </ActionButton>
      </form>

      <div className="field switch-field">
        <label>
          <input
            type="checkbox"
            role="switch"
            checked={flow.use_owner_keys}
            onChange={(event) => toggleOwnerFunded(event.currentTarget.checked)}
            aria-disabled={isBusy || undefined}
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
        <ActionButton type="submit" className="secondary" busy={isBusy}>
          {busy === "limits" ? "Saving…" : "Save limits"}
        </ActionButton>
        {limitProblem && <p id={`${id}-limit-error`} className="field-error" role="alert">{limitProblem}</p>}
      </form>

      <div className="actions">
        {flow.published
          ? (
            <>
              <ActionButton ref={linkButton} aria-expanded={confirming === "rotate"} onClick={() => setConfirming("rotate")} busy={isBusy}>
                {busy === "rotate" ? "Creating link…" : "New share link"}
              </ActionButton>
              <ActionButton className="danger" {...opener("revoke")}>
                {busy === "revoke" ? "Revoking…" : "Revoke link"}
              </ActionButton>
              <ActionButton className="secondary" {...opener("unpublish")}>
                {busy === "unpublish" ? "Unpublishing…" : "Unpublish"}
              </ActionButton>
            </>
          )
          : (
            <ActionButton ref={linkButton} onClick={() => issueLink("publish")} busy={isBusy}>
              {busy === "publish" ? "Publishing…" : "Publish and get link"}
            </ActionButton>
          )}
        <ActionButton className="danger" {...opener("delete")}>
          {busy === "delete" ? "Deleting…" : "Delete flow"}
          {" "}<span className="visually-hidden">{`${flow.name}`}</span>
        </ActionButton>
      </div>
      <CardError message={error} />

      {confirming === "rotate" && (
        <ConfirmBox
          label={`Confirm a new share link for ${flow.name}`}
          confirmText="Yes, new link"
          onConfirm={() => issueLink("rotate")}
          onCancel={() => cancel("rotate")}
        >
          Make a new share link? The current link stops working at once.
        </ConfirmBox>
      )}
      {confirming === "revoke" && (
        <ConfirmBox
          label={`Confirm revoking the share link for ${flow.name}`}
          confirmText="Yes, revoke"
          onConfirm={() => withdraw("revoke")}
          onCancel={() => cancel("revoke")}
        >
          Revoke the share link? Nobody can open or run this flow through it any more, and the flow is no longer
          published. Publishing it again gives a new link at the same address.
        </ConfirmBox>
      )}
      {confirming === "unpublish" && (
        <ConfirmBox
          label={`Confirm unpublishing ${flow.name}`}
          confirmText="Yes, unpublish"
          onConfirm={() => withdraw("unpublish")}
          onCancel={() => cancel("unpublish")}
        >
          Unpublish the flow? Its link and its address stop working; publishing again gives a new address.
        </ConfirmBox>
      )}
      {confirming === "delete" && (
        <ConfirmBox
          label={`Confirm deleting ${flow.name}`}
          confirmText="Yes, delete"
          onConfirm={remove}
          onCancel={() => cancel("delete")}
        >
          Delete "{flow.name}"? Its link stops working and this cannot be undone.
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
  const box = useRef<HTMLDivElement>(null);
  const [copyHelp, setCopyHelp] = useState(false);
  useEffect(() => copyButton.current?.focus(), []);

  async function copy() {
    try {
      await navigator.clipboard.writeText(props.link);
      notify("Link copied.");
    } catch {
      input.current?.select();
      setCopyHelp(true);
    }
  }

  /** Tab and Shift+Tab go round the dialog's own controls; Escape closes it. */
  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    if (event.key === "Escape") {
      props.onClose();
      return;
    }
    if (event.key !== "Tab" || !box.current) return;
    const stops = [...box.current.querySelectorAll<HTMLElement>("input, button")];
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  return (
    <div
      ref={box}
      className="share-dialog"
      role="dialog"
      aria-modal="true"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-note`}
      onKeyDown={onKeyDown}
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
      {copyHelp && <p className="help" role="status">Select the link and copy it with Ctrl+C (⌘C on a Mac).</p>}
    </div>
  );
}
