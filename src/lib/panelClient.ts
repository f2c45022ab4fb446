/**
 * What the panel needs of the app's client: `functions.invoke`, and optionally the session so
 * the audit trail can say "you". A supabase-js `SupabaseClient` is one; so is a bare
 * `FunctionsClient` from `@supabase/functions-js` with the user's token in its headers, which is
 * all the standalone page ships (the rest of supabase-js stays out of the bundle).
 */
import type { FunctionsClient } from "@supabase/functions-js";

export interface PanelClient {
  functions: Pick<FunctionsClient, "invoke">;
  auth?: {
    getSession(): Promise<{ data: { session: { user: { id: string } } | null } }>;
  };
}
