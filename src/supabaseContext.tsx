/**
 * Hands the app's own supabase-js client (with its signed-in session) to the panel and the hook.
 */
import type { PanelClient } from "./lib/panelClient.ts";
import { createContext, type ReactNode, useContext } from "react";

const SupabaseContext = createContext<PanelClient | null>(null);

/** Wrap the panel (or any component using useUserCredentials) in this with your client. */
export function SupabaseProvider(props: { client: PanelClient; children: ReactNode }) {
  return <SupabaseContext.Provider value={props.client}>{props.children}</SupabaseContext.Provider>;
}

/** The client passed in, else the one from the nearest SupabaseProvider. */
export function useSupabaseClient(client?: PanelClient | null): PanelClient {
  const fromContext = useContext(SupabaseContext);
  const chosen = client ?? fromContext;
  if (!chosen) {
    throw new Error("useUserCredentials needs a supabase client: pass one or wrap in <SupabaseProvider>.");
  }
  return chosen;
}
