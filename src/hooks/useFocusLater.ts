/**
 * Moves focus once React has committed the next render. An action's result often replaces the
 * control that started it (Remove disappears with the key, Revoke with the link); focusing the
 * new target straight after `await` would hit an element that is not there yet, or is still
 * disabled, and focus would fall to <body>.
 */
import { type RefObject, useCallback, useEffect, useState } from "react";

type Target = RefObject<HTMLElement | null> | (() => HTMLElement | null | undefined);

export function useFocusLater(): (target: Target) => void {
  const [pending, setPending] = useState<{ target: Target } | null>(null);
  useEffect(() => {
    if (!pending) return;
    const element = typeof pending.target === "function" ? pending.target() : pending.target.current;
    element?.focus();
    setPending(null);
  }, [pending]);
  return useCallback((target: Target) => setPending({ target }), []);
}
