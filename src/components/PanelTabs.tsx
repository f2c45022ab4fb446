/**
 * The panel's tabs (WAI-ARIA tabs pattern): Left/Right, Home and End move between tabs, and
 * only the chosen view is mounted, so a view loads its data when it is opened.
 */
import { type KeyboardEvent, type ReactNode, useId, useRef, useState } from "react";

export interface PanelTab {
  id: string;
  label: string;
  render(): ReactNode;
}

export function PanelTabs(props: { label: string; tabs: PanelTab[]; initial?: string }) {
  const baseId = useId();
  const [active, setActive] = useState(props.initial ?? props.tabs[0].id);
  const buttons = useRef<Record<string, HTMLButtonElement | null>>({});
  const current = props.tabs.find((t) => t.id === active) ?? props.tabs[0];

  function onKeyDown(event: KeyboardEvent) {
    const index = props.tabs.findIndex((t) => t.id === current.id);
    const last = props.tabs.length - 1;
    const next = event.key === "ArrowRight"
      ? (index === last ? 0 : index + 1)
      : event.key === "ArrowLeft"
      ? (index === 0 ? last : index - 1)
      : event.key === "Home"
      ? 0
      : event.key === "End"
      ? last
      : null;
    if (next === null) return;
    event.preventDefault();
    const tab = props.tabs[next];
    setActive(tab.id);
    buttons.current[tab.id]?.focus();
  }

  return (
    <>
      <div className="tabs" role="tablist" aria-label={props.label} onKeyDown={onKeyDown}>
        {props.tabs.map((tab) => (
          <button
            key={tab.id}
            ref={(el) => {
              buttons.current[tab.id] = el;
            }}
            type="button"
            role="tab"
            id={`${baseId}-tab-${tab.id}`}
            aria-selected={tab.id === current.id}
            aria-controls={`${baseId}-panel`}
            tabIndex={tab.id === current.id ? 0 : -1}
            onClick={() => setActive(tab.id)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`${baseId}-panel`} aria-labelledby={`${baseId}-tab-${current.id}`} tabIndex={-1}>
        {current.render()}
      </div>
    </>
  );
}
