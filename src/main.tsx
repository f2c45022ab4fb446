/** Entry of the standalone page: reads /local-config.json from the stack, then renders the app. */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, type LocalConfig } from "./App.tsx";
import "./styles.css";

async function loadConfig(): Promise<LocalConfig> {
  const response = await fetch("/local-config.json");
  if (!response.ok) throw new Error(`local-config.json answered ${response.status}`);
  return await response.json();
}

const root = createRoot(document.getElementById("root")!);
loadConfig()
  .then((config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    )
  )
  .catch(() =>
    root.render(
      <main id="main">
        <h1>Settings</h1>
        <p role="alert">Could not load the local stack's settings. Start it with npm start.</p>
      </main>,
    )
  );
