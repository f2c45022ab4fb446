/**
 * Hands the app's own supabase-js client (with its signed-in session) to the panel and the hook.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import { createContext, type ReactNode, useContext } from "react";

const SupabaseContext = createContext<SupabaseClient | null>(null);

/** Wrap the panel (or any component using useUserCredentials) in this with your client. */
export function SupabaseProvider(props: { client: SupabaseClient; children: ReactNode }) {
  return <SupabaseContext.Provider value={props.client}>{props.children}</SupabaseContext.Provider>;
}

/** The client passed in, else the one from the nearest SupabaseProvider. */
export function useSupabaseClient(client?: SupabaseClient | null): SupabaseClient {
  const fromContext = useContext(SupabaseContext);
  const chosen = client ?? fromContext;
  if (!chosen) {
    throw new Error("useUserCredentials needs a supabase client: pass one or wrap in <SupabaseProvider>.");
  }
  return chosen;
}
