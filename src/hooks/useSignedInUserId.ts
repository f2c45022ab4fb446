/**
 * The signed-in user's id: the `userId` given, else the client's session (when it has one).
 */
import { useEffect, useState } from "react";
import type { PanelClient } from "../lib/panelClient.ts";

export function useSignedInUserId(client: PanelClient, given?: string): string | null {
  const [fromSession, setFromSession] = useState<string | null>(null);
  useEffect(() => {
    if (given || !client.auth) return;
    let live = true;
    client.auth.getSession()
      .then(({ data }) => live && setFromSession(data.session?.user.id ?? null))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [client, given]);
  return given ?? fromSession;
}
