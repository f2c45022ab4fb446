/**
 * Sharing → Audit: every event on your keys, newest first: saved, removed, tested, used through
 * a share or a shared key, refused. Who acted is "you", or their email (their user id when
 * the server knows no email). Never a key.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { useCallback, useId } from "react";
import { PROVIDERS, isService } from "../../supabase/functions/_shared/contract/providers.ts";
import { formatTime, useRemote } from "../hooks/useRemote.ts";
import { useSignedInUserId } from "../hooks/useSignedInUserId.ts";
import { listCredentialEvents } from "../lib/sharingApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { ActionButton } from "./ActionButton.tsx";
import { countWords, LoadError } from "./SharingParts.tsx";

const EVENT_WORDS: Record<string, string> = {
  set: "Key saved",
  delete: "Key removed",
  validate: "Key tested",
  use_share: "Used by a shared flow",
  use_shared_key: "Used through a shared key",
  use_owner_name: "Used by owner name",
  denied: "Use refused",
};

export function AuditView(props: { client?: PanelClient; userId?: string }) {
  const client = useSupabaseClient(props.client);
  const me = useSignedInUserId(client, props.userId);
  const load = useCallback(() => listCredentialEvents(client, 100), [client]);
  const events = useRemote(load);
  const id = useId();
  const rows = [...(events.data ?? [])].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);

  return (
    <section className="sharing-view" aria-labelledby={`${id}-heading`} aria-busy={events.loading}>
      <h2 id={`${id}-heading`}>Audit</h2>
      <p className="intro">What happened to your keys, newest first: the last 100 events.</p>
      <div className="actions">
        <ActionButton className="secondary" onClick={() => events.reload()} busy={events.loading}>
          {events.loading ? "Loading…" : "Refresh"}
        </ActionButton>
      </div>
      <p className="summary" aria-live="polite">
        {events.loading && !events.data ? "Loading the audit trail…" : events.data ? countWords(rows.length, "event") : null}
      </p>
      {events.error && <LoadError message={events.error} retry={events.reload} />}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table data-testid="audit-table">
            <caption className="visually-hidden">Events on your keys, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Service</th>
                <th scope="col">Via</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((event) => (
                <tr key={event.id} data-event={event.event}>
                  <td><time dateTime={event.created_at}>{formatTime(event.created_at)}</time></td>
                  <td>{EVENT_WORDS[event.event] ?? event.event}</td>
                  <td>{isService(event.service) ? PROVIDERS[event.service].label : event.service}</td>
                  <td>{event.via ?? "—"}</td>
                  <td className={event.actor_id && event.actor_id !== me && !event.actor_email ? "mono" : undefined}>
                    {event.actor_id === null
                      ? "—"
                      : event.actor_id === me
                      ? "you"
                      : event.actor_email ?? event.actor_id}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
