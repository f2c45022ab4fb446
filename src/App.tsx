/**
 * The standalone settings page the local stack serves at `/`: dev sign-in, then the panel with a
 * supabase-js client that carries the demo user's token.
 */
import { FunctionsClient } from "@supabase/functions-js";
import { useEffect, useMemo, useState } from "react";
import { DEV_EMAIL_STORAGE_KEY, type DevSession, DevSignIn, requestDevToken } from "./components/DevSignIn.tsx";
import { IntegrationsPanel } from "./components/IntegrationsPanel.tsx";
import type { PanelClient } from "./lib/panelClient.ts";
import { SupabaseProvider } from "./supabaseContext.tsx";

export interface LocalConfig {
  supabaseUrl: string;
  anonKey: string;
}

/**
 * A client whose every request carries the user's token, as a signed-in supabase-js client's
 * `functions` would. Only `@supabase/functions-js` is bundled: the page needs nothing else.
 */
export function clientForToken(config: LocalConfig, accessToken: string): PanelClient {
  const functions = new FunctionsClient(`${config.supabaseUrl.replace(/\/+$/, "")}/functions/v1`, {
    headers: { Authorization: `Bearer ${accessToken}`, apikey: config.anonKey },
  });
  return { functions };
}

/** The user id (`sub`) inside the dev token, so the audit trail can say "you". */
function tokenSubject(accessToken: string): string | undefined {
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub ?? undefined;
  } catch {
    return undefined;
  }
}

export function App({ config }: { config: LocalConfig }) {
  const [session, setSession] = useState<DevSession | null>(null);
  const [resuming, setResuming] = useState(() => sessionStorage.getItem(DEV_EMAIL_STORAGE_KEY) !== null);

  useEffect(() => {
    const email = sessionStorage.getItem(DEV_EMAIL_STORAGE_KEY);
    if (!email) return;
    requestDevToken(config.supabaseUrl, email)
      .then(setSession)
      .catch(() => sessionStorage.removeItem(DEV_EMAIL_STORAGE_KEY))
      .finally(() => setResuming(false));
  }, [config.supabaseUrl]);

  const client = useMemo(() => (session ? clientForToken(config, session.accessToken) : null), [config, session]);

  function signOut() {
    sessionStorage.removeItem(DEV_EMAIL_STORAGE_KEY);
    setSession(null);
  }

  return (
    <>
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="app-header">
        <h1>Settings</h1>
        {session && (
          <div className="who">
            <span>
              Signed in as <strong data-testid="signed-in-as">{session.email}</strong>
            </span>
            <button type="button" className="secondary" onClick={signOut}>Sign out</button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {client
          ? (
            <SupabaseProvider client={client}>
              <IntegrationsPanel key={session?.email} userId={session ? tokenSubject(session.accessToken) : undefined} />
            </SupabaseProvider>
          )
          : resuming
          ? <p aria-live="polite">Signing you in…</p>
          : <DevSignIn supabaseUrl={config.supabaseUrl} onSignedIn={setSession} />}
      </main>
    </>
  );
}
