/**
 * Settings → Integrations: one section per provider in providers.ts, and the sharing views
 * (flows, shared keys, your usage, audit) as tabs beside them. Drop it into any React app
 * inside a <SupabaseProvider client={supabase}> (or pass `client`), where `supabase` already has
 * the signed-in user's session. Its styles are in panel.css, scoped under .byok-panel.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";
import { useRef, useState } from "react";
import { useSignedInUserId } from "../hooks/useSignedInUserId.ts";
import { useUserCredentials } from "../hooks/useUserCredentials.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";
import { keyStateOf, summaryOf } from "../lib/keyState.ts";
import { AuditView } from "./AuditView.tsx";
import { FlowsView } from "./FlowsView.tsx";
import { PanelTabs } from "./PanelTabs.tsx";
import { ProviderSection } from "./ProviderSection.tsx";
import { SharedKeysView } from "./SharedKeysView.tsx";
import { ToastProvider, useToast } from "./Toasts.tsx";
import { UsageView } from "./UsageView.tsx";
import "../panel.css";

export interface IntegrationsPanelProps {
  /** The app's supabase-js client; taken from <SupabaseProvider> when absent. */
  client?: PanelClient;
  /** The signed-in user's id, so the audit trail can say "you" (default: the client's session). */
  userId?: string;
  /** Where share links point (default: the page's origin). */
  shareLinkOrigin?: string;
}

export function IntegrationsPanel(props: IntegrationsPanelProps) {
  return (
    <div className="byok-panel">
      <ToastProvider>
        <OwnUserId client={props.client} userId={props.userId} />
        <PanelTabs
          label="Integrations"
          tabs={[
            { id: "keys", label: "Provider keys", render: () => <Sections client={props.client} /> },
            {
              id: "flows",
              label: "Flows",
              render: () => <FlowsView client={props.client} shareLinkOrigin={props.shareLinkOrigin} />,
            },
            { id: "shared-keys", label: "Shared keys", render: () => <SharedKeysView client={props.client} /> },
            { id: "usage", label: "Your usage", render: () => <UsageView client={props.client} /> },
            { id: "audit", label: "Audit", render: () => <AuditView client={props.client} userId={props.userId} /> },
          ]}
        />
      </ToastProvider>
    </div>
  );
}

/** The signed-in user's own id, for the API and for teammates' allow-lists, with a copy button. */
function OwnUserId(props: { client?: PanelClient; userId?: string }) {
  const me = useSignedInUserId(useSupabaseClient(props.client), props.userId);
  const notify = useToast();
  const idText = useRef<HTMLElement>(null);
  const [copyHelp, setCopyHelp] = useState(false);
  if (!me) return null;

  async function copy() {
    try {
      await navigator.clipboard.writeText(me!);
      setCopyHelp(false);
      notify("Your user id was copied.");
    } catch {
      const range = document.createRange();
      if (idText.current) range.selectNodeContents(idText.current);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      setCopyHelp(true);
    }
  }

  return (
    <div className="whoami">
      <span>Your user id</span>{" "}
      <code className="mono" data-testid="own-user-id" ref={idText}>{me}</code>{" "}
      <button type="button" className="secondary" onClick={copy}>
        Copy{" "}<span className="visually-hidden">your user id</span>
      </button>
      {copyHelp && <span className="help" role="status">Selected: copy it with Ctrl+C (⌘C on a Mac).</span>}
    </div>
  );
}

function Sections(props: IntegrationsPanelProps) {
  const credentials = useUserCredentials(props.client);
  const failed = credentials.loadError !== null && !credentials.hasLoaded;
  const states = SERVICES.map((s) => keyStateOf(credentials.credentialStatus[s], failed));

  return (
    <div className="integrations" aria-busy={credentials.isLoading}>
      <div className="integrations-intro">
        <h2 id="integrations-heading">Integrations</h2>
        <p>
          Bring your own keys. Each key is encrypted before it is stored and is only ever used for your own requests.
        </p>
        <p className="summary" aria-live="polite" data-testid="summary">
          {!credentials.hasLoaded
            ? (failed ? "Your keys could not be loaded, so their status is unknown." : "Loading your keys…")
            : summaryOf(states)}
        </p>
        {credentials.loadError && (
          <div className="load-error" role="alert">
            <p>{credentials.loadError.message}</p>
            <button type="button" className="secondary" onClick={() => credentials.getCredentialStatus().catch(() => {})}>
              Try again
            </button>
          </div>
        )}
      </div>
      <div className="providers">
        {SERVICES.map((service) => <ProviderSection key={service} service={service} credentials={credentials} />)}
      </div>
    </div>
  );
}
