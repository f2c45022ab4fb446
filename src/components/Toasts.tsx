/**
 * Toasts: short confirmations of actions that succeeded, announced through one polite aria-live
 * region. Failures never go here: they stay in the card or under the field they belong to
 * (`CardError`, field errors), where they remain until the next action. At most two toasts are
 * shown, and they move out of the way of the focused control: from the bottom of the screen to
 * the top, and if that still covers it, the control is scrolled clear. A toast never contains a
 * key (callers pass fixed wording and last fours only).
 */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
} from "react";

interface Toast {
  id: number;
  text: string;
}

type Notify = (text: string) => void;

const ToastContext = createContext<Notify>(() => {});

/** How long a toast stays before it leaves by itself. */
const TOAST_MS = 6000;
/** How many toasts are on screen at once; an older one leaves when a new one comes. */
export const MAX_TOASTS = 2;

function overlaps(a: DOMRect, b: DOMRect): boolean {
  return a.width > 0 && b.width > 0 && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/** The controls a person is using: the focused element's action row (or the element itself). */
function activeControls(): HTMLElement[] {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || active === document.body) return [];
  const row = active.closest(".provider, .card")?.querySelector<HTMLElement>(".actions");
  return row ? [active, row] : [active];
}

/** Provides `useToast()` and renders the live region the toasts appear in. */
export function ToastProvider(props: { children: ReactNode; durationMs?: number }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [placement, setPlacement] = useState<"bottom" | "top">("bottom");
  const region = useRef<HTMLDivElement>(null);
  const nextId = useRef(1);
  const duration = props.durationMs ?? TOAST_MS;

  const dismiss = useCallback((id: number) => setToasts((all) => all.filter((t) => t.id !== id)), []);

  const notify = useCallback<Notify>((text) => {
    const id = nextId.current++;
    setToasts((all) => [...all.slice(-(MAX_TOASTS - 1)), { id, text }]);
    if (duration > 0) setTimeout(() => dismiss(id), duration);
  }, [dismiss, duration]);

  const keepClear = useCallback(() => {
    const box = region.current?.getBoundingClientRect();
    if (!box) return;
    const covered = activeControls().find((el) => overlaps(box, el.getBoundingClientRect()));
    if (!covered) return;
    if (placement === "bottom") setPlacement("top");
    else covered.scrollIntoView({ block: "center" });
  }, [placement]);

  useLayoutEffect(() => {
    if (toasts.length > 0) keepClear();
    else setPlacement("bottom");
  }, [toasts, keepClear]);

  useEffect(() => {
    if (toasts.length === 0) return;
    document.addEventListener("focusin", keepClear);
    return () => document.removeEventListener("focusin", keepClear);
  }, [toasts.length, keepClear]);

  const value = useMemo(() => notify, [notify]);

  return (
    <ToastContext.Provider value={value}>
      {props.children}
      <div
        ref={region}
        className={`toasts toasts-${placement}`}
        role="status"
        aria-live="polite"
        aria-label="Notifications"
      >
        {toasts.map((toast) => (
          <div key={toast.id} className="toast toast-success" data-kind="success">
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

/** Confirms a success: `notify("Saved.")`. */
export function useToast(): Notify {
  return useContext(ToastContext);
}

/** A card's failure, shown in the card until the next action clears it. */
export function CardError(props: { message: string | null }) {
  if (!props.message) return null;
  return <div className="card-error" role="alert" data-testid="card-error">{props.message}</div>;
}
