/**
 * The Integrations panel and a provider section, rendered in jsdom against a real supabase-js
 * client and a real HTTP fake of credentials-manager, driven the way a keyboard user would.
 */
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";
import { IntegrationsPanel } from "../../src/components/IntegrationsPanel.tsx";
import { PROVIDERS, SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";
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
      expect(within(card).getByTestId("status").textContent).toBe("Not set");
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
    await user.click(within(card).getByRole("button", { name: "Show OpenAI key" }));
    expect(input.type).toBe("text");
    expect(within(card).getByRole("button", { name: "Hide OpenAI key" }).getAttribute("aria-pressed")).toBe("true");
    await user.click(within(card).getByRole("button", { name: "Hide OpenAI key" }));
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
    // Saved but never checked: not "Connected", and not counted as connected.
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not tested"));
    expect(screen.getByTestId("summary").textContent).toBe("0 of 7 providers connected (1 not tested).");
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
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not tested"));

    await user.click(within(card).getByRole("button", { name: "Remove OpenAI key" }));
    const confirm = within(card).getByRole("group", { name: "Confirm removing the OpenAI key" });
    expect(document.activeElement).toBe(within(confirm).getByRole("button", { name: "Yes, remove" }));
    await user.keyboard("{Escape}");
    expect(within(card).queryByRole("group")).toBeNull();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Remove OpenAI key" }));
    expect(actions(server)).not.toContain("delete");

    await user.keyboard("{Enter}");
    await user.keyboard("{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not set"));
    expect(actions(server)).toContain("delete");
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).toContain("OpenAI key removed.");
    // Remove no longer applies, so focus went to the key field, not to <body>.
    await waitFor(() => expect(document.activeElement).toBe(within(card).getByLabelText("OpenAI API key")));
  });

  test("ProviderSection does show the invalid-key message when the provider rejects the key", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), "sk-rejected-key-4321{Enter}");
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not tested"));
    await user.click(within(card).getByRole("button", { name: "Test OpenAI key" }));
    await waitFor(() => expect(within(card).getByTestId("validation").textContent).toContain("was rejected"));
    // The badge, the count and the card agree; the message stays in the card, not in a toast.
    expect(within(card).getByTestId("status").textContent).toBe("Rejected");
    expect(screen.getByTestId("summary").textContent).toBe("0 of 7 providers connected (1 rejected).");
    expect(within(card).getByTestId("card-error").getAttribute("role")).toBe("alert");
    expect(within(card).getByTestId("card-error").textContent).toBe(
      "OpenAI rejected this key. Check it, or create a new one and save it here.",
    );
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).not.toContain("rejected");
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
    await waitFor(() => expect(within(card).getByTestId("last-four").textContent).toBe("5555"));
    // The saved base URL is shown back, and a new endpoint is tested at once.
    expect(within(card).getByTestId("base-url").textContent).toBe("https://llm.example.com/v1");
    expect((within(card).getByLabelText("Base URL") as HTMLInputElement).value).toBe("https://llm.example.com/v1");
    await waitFor(() => expect(server.requests.slice(1).map((r) => [r.body.action, r.body.key])).toEqual([
      ["set", "base_url"],
      ["set", "api_key"],
      ["validate", undefined],
    ]));
  });

  test("ProviderSection does show a loading state while an action runs", async () => {
    const user = await renderPanel();
    const card = section("Perplexity");
    await user.type(within(card).getByLabelText("Perplexity API key"), "pplx-abcdefgh9999");
    const release = server.hold();
    await user.click(within(card).getByRole("button", { name: "Save Perplexity key" }));
    const saving = await within(card).findByRole("button", { name: "Saving… Perplexity key" });
    // Unavailable while saving, but still focused: focus never falls to <body>.
    expect(saving.getAttribute("aria-disabled")).toBe("true");
    expect(document.activeElement).toBe(saving);
    expect(card.getAttribute("aria-busy")).toBe("true");
    await user.click(saving);
    release();
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not tested"));
    expect(actions(server).filter((a) => a === "set")).toHaveLength(1);
    expect(card.getAttribute("aria-busy")).toBeNull();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Save Perplexity key" }));
  });

  test("ProviderSection does move through its controls in order with Tab", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    within(card).getByLabelText("OpenAI API key").focus();
    await user.tab();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Show OpenAI key" }));
    await user.tab();
    expect(document.activeElement?.textContent).toMatch(/^Get a key from OpenAI/);
    await user.tab();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Save OpenAI key" }));
    await user.tab();
    // Remove is disabled until a key is saved, so after Test comes the next card.
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Test OpenAI key" }));
    await user.tab();
    expect(document.activeElement).toBe(within(section("Gemini")).getByLabelText("Gemini API key"));
  });

  test("ProviderSection does show when the key was last tested and that it was valid", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), `${ACCEPTED_OPENAI_KEY}{Enter}`);
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not tested"));
    await user.click(within(card).getByRole("button", { name: "Test OpenAI key" }));
    await waitFor(() => expect(within(card).getByTestId("validation").textContent).toMatch(/— works$/));
    expect(within(card).getByTestId("status").textContent).toBe("Connected");
    expect(screen.getByTestId("summary").textContent).toBe("1 of 7 providers connected.");
    const time = within(card).getByTestId("validation").querySelector("time");
    expect(Date.now() - Date.parse(time?.getAttribute("datetime") ?? "")).toBeLessThan(60_000);
    expect(screen.getByRole("status", { name: "Notifications" }).textContent).toContain("OpenAI accepted your key.");
  });

  test("ProviderSection does trim a pasted key's trailing newline and space before checking and saving it", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    const input = within(card).getByLabelText("OpenAI API key");
    await user.click(input);
    await user.paste("  sk-pasted-key-1234 \n");
    await user.keyboard("{Enter}");
    await waitFor(() => expect(within(card).getByTestId("last-four").textContent).toBe("1234"));
    expect(server.requests.at(-1)?.body).toMatchObject({ action: "set", value: "sk-pasted-key-1234" });
  });

  test("ProviderSection does test a key before saving it and store nothing", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), "sk-not-accepted-0000");
    await user.click(within(card).getByRole("button", { name: "Test OpenAI key" }));
    await within(card).findByText("The key in the field was rejected.");
    expect(within(card).getByTestId("card-error").textContent).toMatch(/OpenAI rejected this key/);
    expect(actions(server)).toEqual(["list", "test"]);
    expect(within(card).getByTestId("status").textContent).toBe("Not set");

    await user.clear(within(card).getByLabelText("OpenAI API key"));
    await user.type(within(card).getByLabelText("OpenAI API key"), ACCEPTED_OPENAI_KEY);
    await user.click(within(card).getByRole("button", { name: "Test OpenAI key" }));
    await within(card).findByText("The key in the field works; save it to use it.");
    expect(within(card).queryByTestId("card-error")).toBeNull();
    await user.click(within(card).getByRole("button", { name: "Save OpenAI key" }));
    // Tested before saving: the saved key is checked too, so the badge tells the truth at once.
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    expect(actions(server)).toEqual(["list", "test", "test", "set", "validate"]);
  });

  test("ProviderSection does test a replacement for a working key first and ask before replacing it", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), `${ACCEPTED_OPENAI_KEY}{Enter}`);
    await user.click(await within(card).findByRole("button", { name: "Test OpenAI key" }));
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Connected"));
    server.requests.length = 0;

    await user.type(within(card).getByLabelText("Replace OpenAI API key"), "sk-replacement-9999{Enter}");
    const confirm = await within(card).findByRole("group", { name: "Confirm replacing the OpenAI key" });
    expect(confirm.textContent).toContain("The new key was rejected.");
    expect(actions(server)).toEqual(["test"]);
    await user.keyboard("{Escape}");
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Save OpenAI key" }));
    expect(actions(server)).toEqual(["test"]);
    expect(within(card).getByTestId("last-four").textContent).toBe(ACCEPTED_OPENAI_KEY.slice(-4));

    await user.keyboard("{Enter}");
    await within(card).findByRole("group", { name: "Confirm replacing the OpenAI key" });
    await user.keyboard("{Enter}");
    await waitFor(() => expect(within(card).getByTestId("last-four").textContent).toBe("9999"));
    expect(actions(server).filter((a) => a === "set")).toHaveLength(1);
  });

  test("ProviderSection does turn a key off and on without deleting it", async () => {
    const user = await renderPanel();
    const card = section("OpenAI");
    await user.type(within(card).getByLabelText("OpenAI API key"), "sk-kept-but-off-4444{Enter}");
    const toggle = await within(card).findByRole("switch", { name: "On Use OpenAI key" });
    await user.click(toggle);
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Turned off"));
    expect(document.activeElement).toBe(within(card).getByRole("switch"));
    expect(within(card).getByRole("switch").getAttribute("aria-checked")).toBe("false");
    expect(screen.getByTestId("summary").textContent).toBe("0 of 7 providers connected (1 turned off).");
    expect(server.requests.at(-1)?.body).toEqual({ action: "set_active", service: "openai", is_active: false });
  });

  test("IntegrationsPanel does show toasts only for successes, two at most", async () => {
    const user = await renderPanel();
    for (const [label, key] of [["OpenAI", "sk-one-11111111"], ["Anthropic", "sk-ant-two-2222"], ["OpenRouter", "sk-or-three-3333"]]) {
      await user.type(within(section(label)).getByLabelText(`${label} API key`), `${key}{Enter}`);
      await waitFor(() => expect(within(section(label)).getByTestId("last-four").textContent).toBe(key.slice(-4)));
    }
    const live = screen.getByRole("status", { name: "Notifications" });
    expect(live.querySelectorAll(".toast")).toHaveLength(2);
    server.failNext(500, { code: "INTERNAL_ERROR", message: "boom", recoverable: true });
    await user.type(within(section("Gemini")).getByLabelText("Gemini API key"), "AIzaFailingKey12345{Enter}");
    await within(section("Gemini")).findByTestId("card-error");
    expect(live.textContent).not.toMatch(/went wrong/);
  });
});

describe("Integrations panel before its statuses load", () => {
  test("IntegrationsPanel does never claim Not set while loading, and keeps Save off", async () => {
    const release = server.hold();
    render(
      <SupabaseProvider client={server.client()}>
        <IntegrationsPanel />
      </SupabaseProvider>,
    );
    const card = await screen.findByRole("region", { name: "OpenAI" });
    expect(within(card).getByTestId("status").textContent).toBe("Loading…");
    expect(screen.getByTestId("summary").textContent).toBe("Loading your keys…");
    expect((within(card).getByRole("button", { name: "Save OpenAI key" }) as HTMLButtonElement).disabled).toBe(true);
    expect(document.body.textContent).not.toMatch(/Not set|Not connected/);
    release();
    await waitFor(() => expect(within(card).getByTestId("status").textContent).toBe("Not set"));
  });

  test("IntegrationsPanel does show a load error with status unknown, never Not set", async () => {
    server.failNext(503, { code: "CREDENTIALS_UNAVAILABLE", message: "down", recoverable: true });
    render(
      <SupabaseProvider client={server.client()}>
        <IntegrationsPanel />
      </SupabaseProvider>,
    );
    await screen.findByText("Your keys could not be loaded, so their status is unknown.");
    for (const service of SERVICES) {
      const card = screen.getByRole("region", { name: PROVIDERS[service].label });
      expect(within(card).getByTestId("status").textContent).toBe("Status unknown");
      expect((within(card).getByRole("button", { name: `Save ${PROVIDERS[service].label} key` }) as HTMLButtonElement).disabled)
        .toBe(true);
    }
    expect(document.body.textContent).not.toMatch(/Not set|Not connected/);
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Try again" }));
    await screen.findByText("0 of 7 providers connected.");
  });
});
