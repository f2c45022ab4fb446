/**
 * A button that stays focusable while its card is busy. A `disabled` button loses focus (to
 * <body>) the moment a request starts; this one only says it is unavailable (`aria-disabled`)
 * and ignores presses until the request ends, so focus stays where the person left it.
 * `disabled` is kept for buttons that cannot apply at all (Remove with no key).
 */
import type { ButtonHTMLAttributes, Ref } from "react";

export interface ActionButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  /** A request of this card is in flight: the button is unavailable but keeps its focus. */
  busy: boolean;
  ref?: Ref<HTMLButtonElement>;
}

export function ActionButton({ busy, onClick, ...rest }: ActionButtonProps) {
  return (
    <button
      type="button"
      {...rest}
      aria-disabled={busy || undefined}
      onClick={(event) => {
        if (busy) {
          event.preventDefault();
          return;
        }
        onClick?.(event);
      }}
    />
  );
}
