/**
 * Toasts: short feedback after each action, announced to screen readers through one polite
 * aria-live region. A toast never contains a key (callers pass fixed wording and last fours only).
 */
import { createContext, type ReactNode, useCallback, useContext, useMemo, useRef, useState } from "react";

export type ToastKind = "success" | "error" | "info";

interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

type Notify = (kind: ToastKind, text: string) => void;

const ToastContext = createContext<Notify>(() => {});

/** How long a toast stays before it leaves by itself. */
const TOAST_MS = 6000;

/** Provides `useToast()` and renders the live region the toasts appear in. */
export function ToastProvider(props: { children: ReactNode; durationMs?: number }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);
  const duration = props.durationMs ?? TOAST_MS;

  const dismiss = useCallback((id: number) => setToasts((all) => all.filter((t) => t.id !== id)), []);

  const notify = useCallback<Notify>((kind, text) => {
    const id = nextId.current++;
    setToasts((all) => [...all.slice(-3), { id, kind, text }]);
    if (duration > 0) setTimeout(() => dismiss(id), duration);
  }, [dismiss, duration]);

  const value = useMemo(() => notify, [notify]);

  return (
    <ToastContext.Provider value={value}>
      {props.children}
      <div className="toasts" role="status" aria-live="polite" aria-label="Notifications">
        {toasts.map((toast) => (
          <div key={toast.id} className={`toast toast-${toast.kind}`} data-kind={toast.kind}>
            <span>{toast.text}</span>
            <button type="button" className="toast-close" onClick={() => dismiss(toast.id)} aria-label="Dismiss">
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

/** Shows a toast: `notify("success", "Saved.")`. */
export function useToast(): Notify {
  return useContext(ToastContext);
}
