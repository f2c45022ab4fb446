/**
 * The Integrations panel and a provider section, rendered in jsdom against a real supabase-js
 * client and a real HTTP fake of credentials-manager, driven the way a keyboard user would.
 */
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";
import { IntegrationsPanel } from "../../src/components/IntegrationsPanel.tsx";
import { PROVIDERS, SERVICES } from "../../supabase/functions/_shared/providers.ts";
import { SupabaseProvider } from "../../src/supabaseContext.tsx";
import {
  ACCEPTED_OPENAI_KEY,
  actions,
  type FakeCredentialsServer,
  startFakeCredentialsServer,
} from "./fakeCredentialsServer.ts";

let server: FakeCredentialsServer;

beforeAll(async () => {
  server = await startFakeCredentialsServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  for (const service of SERVICES) {
    await server.client().functions.invoke("credentials-manager", { body: { action: "delete", service, key: "api_key" } });
  }
  server.requests.length = 0;
});

async function renderPanel() {
  const user = userEvent.setup();
  render(
    <SupabaseProvider client={server.client()}>
      <IntegrationsPanel />
    </SupabaseProvider>,
  );
  await screen.findByText(`0 of ${SERVICES.length} providers connected.`);
  return user;
}

function section(label: string): HTMLElement {
  return screen.getByRole("region", { name: label });
}

describe("Integrations panel", () => {
  test("IntegrationsPanel does show one labelled section per provider", async () => {
    await renderPanel();
    for (const service of SERVICES) {
      const spec = PROVIDERS[service];
      const card = section(spec.label);
      expect(within(card).getByTestId("status").textContent).toBe("Not connected");
      expect(within(card).getByLabelText(`${spec.label} API key`)).toBeTruthy();
      if (spec.keyPageUrl) {
        const link = within(card).getByRole("link", { name: new RegExp(`Get a key from ${spec.label}`) });
        expect(link.getAttribute("href")).toBe(spec.keyPageUrl);
      }
    }
    expect(within(section("Custom endpoint")).getByLabelText("Base URL")).toBeTruthy();
  });

  test("ProviderSection does mask the key and toggle it with Show and Hide", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    const input = within(card).getByLabelText("OpenAI API key") as HTMLInputElement;
    expect(input.type).toBe("password");
    await user.click(within(card).getByRole("button", { name: "Show" }));
    expect(input.type).toBe("text");
    expect(within(card).getByRole("button", { name: "Hide" }).getAttribute("aria-pressed")).toBe("true");
    await user.click(within(card).getByRole("button", { name: "Hide" }));
    expect(input.type).toBe("password");
  });

  test("ProviderSection does show a format problem inline and send nothing", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    const input = within(card).getByLabelText("OpenAI API key");
    await user.type(input, "not-a-real-key{Enter}");
    const alert = within(card).getByRole("alert");
    expect(alert.textContent).toBe('OpenAI keys start with "sk-".');
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(input.getAttribute("aria-describedby")).toContain(alert.id);
    expect(document.activeElement).toBe(input);
    expect(actions(server)).toEqual(["list"]);
  });

  test("ProviderSection does save with the keyboard, clear the input and show the last four", async () => {
    const user = await renderPanel();
    const consoleSpies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m));
    const card = section("OpenAI");
    const input = within(card).getByLabelText("OpenAI API key") as HTMLInputElement;
    await user.click(input);
    await user.keyboard("sk-secret-value-7788{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    expect(within(card).getByTestId("last-four").textContent).toBe("7788");
    expect(input.value).toBe("");
    expect(within(card).getByText("not tested yet")).toBeTruthy();
    const live = screen.getByRole("status", { name: "Notifications" });
    expect(live.getAttribute("aria-live")).toBe("polite");
    expect(live.textContent).toContain("OpenAI key ending in 7788 saved.");
    expect(document.body.innerHTML).not.toContain("sk-secret-value-7788");
    expect(JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })).not.toContain("sk-secret");
    expect(window.location.href).not.toContain("sk-secret");
    for (const spy of consoleSpies) {
      expect(JSON.stringify(spy.mock.calls)).not.toContain("sk-secret-value-7788");
    }
  });

  test("ProviderSection does remove a key only after confirmation", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), "sk-secret-value-7788{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));

    await user.click(within(card).getByRole("button", { name: "Remove" }));
    const confirm = within(card).getByRole("group", { name: "Confirm removing the OpenAI key" });
    expect(document.activeElement).toBe(within(confirm).getByRole("button", { name: "Yes, remove" }));
    await user.keyboard("{Escape}");
    expect(within(card).queryByRole("group")).toBeNull();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Remove" }));
    expect(actions(server)).not.toContain("delete");

    await user.keyboard("{Enter}");
    await user.keyboard("{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not connected"));
    expect(actions(server)).toContain("delete");
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).toContain("OpenAI key removed.");
  });

  test("ProviderSection does show the invalid-key message when the provider rejects the key", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), "sk-rejected-key-4321{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    await user.click(within(card).getByRole("button", { name: "Test key" }));
    await waitFor(() => expect(within(card).getByTestId("validation").textContent).toContain("rejected"));
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).toContain(
      "OpenAI rejected this key. Check it, or create a new one and save it here.",
    );
  });

  test("ProviderSection does save a custom endpoint's base URL and key", async () => {
    const user = await renderPanel();
    const card = section("Custom endpoint");
    await user.type(within(card).getByLabelText("Base URL"), "not a url");
    await user.type(within(card).getByLabelText("Custom endpoint API key"), "custom-key-5555{Enter}");
    expect(within(card).getByRole("alert").textContent).toMatch(/full URL/);
    expect(actions(server)).toEqual(["list"]);

    await user.clear(within(card).getByLabelText("Base URL"));
    await user.type(within(card).getByLabelText("Base URL"), "https://llm.example.com/v1{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    expect(within(card).getByTestId("last-four").textContent).toBe("5555");
    expect(server.requests.slice(1).map((r) => [r.body.action, r.body.key])).toEqual([
      ["set", "base_url"],
      ["set", "api_key"],
    ]);
  });

  test("ProviderSection does show a loading state while an action runs", async () => {
    const user = await renderPanel();
    const card = section("Perplexity");
    await user.type(within(card).getByLabelText("Perplexity API key"), "pplx-abcdefgh9999");
    const release = server.hold();
    await user.click(within(card).getByRole("button", { name: "Save" }));
    const saving = await within(card).findByRole("button", { name: "Saving…" });
    expect((saving as HTMLButtonElement).disabled).toBe(true);
    expect(card.getAttribute("aria-busy")).toBe("true");
    expect((within(card).getByRole("button", { name: "Remove" }) as HTMLButtonElement).disabled).toBe(true);
    release();
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    expect(card.getAttribute("aria-busy")).toBeNull();
    expect(within(card).getByRole("button", { name: "Save" })).toBeTruthy();
  });

  test("ProviderSection does move through its controls in order with Tab", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    within(card).getByLabelText("OpenAI API key").focus();
    await user.tab();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Show" }));
    await user.tab();
    expect(document.activeElement?.textContent).toMatch(/^Get a key from OpenAI/);
    await user.tab();
    // Test key and Remove are disabled until a key is saved, so Save is next.
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Save" }));
    await user.tab();
    expect(document.activeElement).toBe(within(section("Gemini")).getByLabelText("Gemini API key"));
  });

  test("ProviderSection does show when the key was last tested and that it was valid", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), `${ACCEPTED_OPENAI_KEY}{Enter}`);
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    await user.click(within(card).getByRole("button", { name: "Test key" }));
    await waitFor(() => expect(within(card).getByTestId("validation").textContent).toMatch(/— valid$/));
    const time = within(card).getByTestId("validation").querySelector("time");
    expect(Date.now() - Date.parse(time?.getAttribute("datetime") ?? "")).toBeLessThan(60_000);
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).toContain("OpenAI accepted your key.");
  });
});
