/**
 * Local stack only: signs in a demo user through POST /auth/v1/dev/token. Only the email is
 * remembered (sessionStorage), so a reload signs the same demo user in again; the token stays in
 * memory.
 */
import { type FormEvent, useId, useState } from "react";

export interface DevSession {
  email: string;
  accessToken: string;
}

export const DEV_EMAIL_STORAGE_KEY = "byok-dev-email";

/** Asks the local stack for a token for `email`. */
export async function requestDevToken(supabaseUrl: string, email: string): Promise<DevSession> {
  const response = await fetch(`${supabaseUrl}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok || !body?.access_token) {
    throw new Error(body?.error?.message ?? "Sign-in failed. Is the local stack running?");
  }
  return { email: body.user?.email ?? email, accessToken: body.access_token };
}

export function DevSignIn(props: { supabaseUrl: string; onSignedIn: (session: DevSession) => void }) {
  const id = useId();
  const [email, setEmail] = useState("alice@example.com");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await requestDevToken(props.supabaseUrl, email.trim());
      sessionStorage.setItem(DEV_EMAIL_STORAGE_KEY, session.email);
      props.onSignedIn(session);
    } catch (err) {
      setError(err instanceof Error ? err.message : "Sign-in failed.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="sign-in" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Sign in (local demo)</h2>
      <p className="help">Any email works on the local stack; each one is a separate demo user.</p>
      <div className="field">
        <label htmlFor={`${id}-email`}>Email</label>
        <input
          id={`${id}-email`}
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
        />
      </div>
      {error && <p id={`${id}-error`} className="field-error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
    </form>
  );
}
