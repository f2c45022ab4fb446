/**
 * SharedKeysView (and the usage and audit views) in jsdom against a real supabase-js client and a
 * real HTTP fake of llm-config and credentials-manager: create with the same masked field and
 * format check as the provider sections, edit access and limits, replace, usage, delete.
 */
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { AuditView } from "../../src/components/AuditView.tsx";
import { SharedKeysView } from "../../src/components/SharedKeysView.tsx";
import { ToastProvider } from "../../src/components/Toasts.tsx";
import { UsageView } from "../../src/components/UsageView.tsx";
import { SupabaseProvider } from "../../src/supabaseContext.tsx";
import { type FakeSharingServer, startFakeSharingServer, TEAMMATE_EMAIL, TEAMMATE_ID, USER_ID } from "./fakeSharingServer.ts";

let server: FakeSharingServer;

beforeAll(async () => {
  server = await startFakeSharingServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const SECRET = "sk-team-secret-value-4242";
const toasts = () => screen.getByRole("status", { name: "Notifications" }).textContent ?? "";
const sent = () => server.calls.map((c) => `${c.method} ${c.path.replace("/functions/v1/", "")}`);

function renderView(view: React.ReactNode) {
  const user = userEvent.setup();
  render(
    <SupabaseProvider client={server.client()}>
      <ToastProvider>{view}</ToastProvider>
    </SupabaseProvider>,
  );
  return user;
}

async function fillNewKey(user: ReturnType<typeof userEvent.setup>, key: string) {
  const form = screen.getByRole("form", { name: "New shared key" });
  await user.type(within(form).getByLabelText("Account name"), "team-openai");
  await user.type(within(form).getByLabelText("Display name"), "Team OpenAI");
  await user.type(within(form).getByLabelText("Model (optional)"), "gpt-4o-mini");
  await user.type(within(form).getByLabelText("Allowed teammates"), `${TEAMMATE_ID}, ${USER_ID}`);
  await user.type(within(form).getByLabelText("Daily limit per user"), "25");
  await user.type(within(form).getByLabelText("OpenAI API key to share"), key);
  return form;
}

async function createKey(user: ReturnType<typeof userEvent.setup>) {
  const form = await fillNewKey(user, SECRET);
  await user.click(within(form).getByRole("button", { name: "Create shared key" }));
  return await screen.findByRole("region", { name: "Team OpenAI" });
}

describe("SharedKeysView", () => {
  test("SharedKeysView does check the key format inline and send nothing", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const form = await fillNewKey(user, "pk-not-an-openai-key");
    const input = within(form).getByLabelText("OpenAI API key to share") as HTMLInputElement;
    expect(input.type).toBe("password");
    await user.click(within(form).getByRole("button", { name: "Show" }));
    expect(input.type).toBe("text");
    await user.click(within(form).getByRole("button", { name: "Create shared key" }));
    const alert = within(form).getByRole("alert");
    expect(alert.textContent).toBe('OpenAI keys start with "sk-".');
    expect(input.getAttribute("aria-describedby")).toContain(alert.id);
    expect(document.activeElement).toBe(input);
    expect(sent()).toEqual(["GET llm-config/shared-keys"]);
  });

  test("SharedKeysView does refuse an allow-list entry that is neither an email nor a user id", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const form = await fillNewKey(user, SECRET);
    await user.type(within(form).getByLabelText("Allowed teammates"), "\nbob-at-example");
    await user.click(within(form).getByRole("button", { name: "Create shared key" }));
    expect(within(form).getByRole("alert").textContent).toBe('"bob-at-example" is neither an email nor a user id.');
    expect(sent()).toEqual(["GET llm-config/shared-keys"]);
  });

  test("SharedKeysView does create a shared key and list it without the key", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const card = await createKey(user);
    expect(within(card).getByTestId("last-four").textContent).toBe("4242");
    expect(within(card).getByText("team-openai")).toBeTruthy();
    expect(within(card).getByText("2 allowed")).toBeTruthy();
    expect(within(card).getByTestId("limits").textContent).toBe("no daily limit, 25 a day per user");
    expect(toasts()).toContain('Shared key "team-openai" (ending in 4242) created.');
    expect((screen.getByLabelText("OpenAI API key to share") as HTMLInputElement).value).toBe("");
    expect((screen.getByLabelText("Account name") as HTMLInputElement).value).toBe("");
    expect(server.calls[1].body).toEqual({
      account_name: "team-openai",
      display_name: "Team OpenAI",
      provider: "openai",
      model: "gpt-4o-mini",
      api_key: SECRET,
      is_public: false,
      allowed_user_ids: [TEAMMATE_ID, USER_ID],
      daily_limit: null,
      per_user_daily_limit: 25,
      daily_token_limit: null,
      per_user_daily_token_limit: null,
    });
    expect(within(card).getByTestId("token-limits").textContent).toBe("no daily token limit, no per-user token limit");
    expect(document.body.innerHTML).not.toContain(SECRET);
    expect(JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })).not.toContain(SECRET);
  });

  test("SharedKeysView does edit the allow-list and the limits", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const card = await createKey(user);
    await user.click(within(card).getByText("Access and limits"));
    const users = within(card).getByLabelText("Allowed teammates");
    // The allow-list reads as emails, and takes teammates by email.
    expect((users as HTMLTextAreaElement).value).toBe(`${TEAMMATE_EMAIL}\nme@example.com`);
    await user.clear(users);
    await user.type(users, "Teammate@Example.com");
    await user.click(within(card).getByRole("button", { name: "Save access" }));
    await waitFor(() => expect(within(card).getByText("1 allowed")).toBeTruthy());
    expect(within(card).getByTestId("allowed-users").textContent).toBe(TEAMMATE_EMAIL);

    const daily = within(card).getByLabelText("Daily limit (all users)");
    await user.type(daily, "-3");
    await user.click(within(card).getByRole("button", { name: "Save limits" }));
    expect(within(card).getByRole("alert").textContent).toMatch(/daily limit must be a whole number/);
    await user.clear(within(card).getByLabelText("Daily limit (all users)"));
    await user.type(within(card).getByLabelText("Daily limit (all users)"), "200");
    await user.clear(within(card).getByLabelText("Daily limit per user"));
    await user.click(within(card).getByRole("button", { name: "Save limits" }));
    await waitFor(() => expect(within(card).getByTestId("limits").textContent).toBe("200 a day in all, no per-user limit"));

    expect(sent().slice(2)).toEqual([
      "POST llm-config/shared-keys/team-openai/access",
      "POST llm-config/shared-keys/team-openai/limits",
    ]);
    expect(server.calls[2].body).toEqual({ is_public: false, allowed_user_ids: [], allowed_emails: [TEAMMATE_EMAIL] });
    // Every limit is sent: the token limits, left empty, stay no limit.
    expect(server.calls[3].body).toEqual({
      daily_limit: 200,
      per_user_daily_limit: null,
      daily_token_limit: null,
      per_user_daily_token_limit: null,
    });
  });

  test("SharedKeysView does create a shared key with token limits and show them on the card", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const form = await fillNewKey(user, SECRET);
    await user.type(within(form).getByLabelText("Daily token limit (all users)"), "2000000");
    await user.type(within(form).getByLabelText("Daily token limit per user"), "50000");
    await user.click(within(form).getByRole("button", { name: "Create shared key" }));
    const card = await screen.findByRole("region", { name: "Team OpenAI" });
    expect(server.calls[1].body).toMatchObject({
      daily_limit: null,
      per_user_daily_limit: 25,
      daily_token_limit: 2_000_000,
      per_user_daily_token_limit: 50_000,
    });
    expect(within(card).getByTestId("limits").textContent).toBe("no daily limit, 25 a day per user");
    expect(within(card).getByTestId("token-limits").textContent).toBe(
      "2,000,000 tokens a day in all, 50,000 tokens a day per user",
    );
    expect((within(form).getByLabelText("Daily token limit per user") as HTMLInputElement).value).toBe("");
  });

  test("SharedKeysView does refuse a token limit out of range inline, with focus, and send nothing", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const form = await fillNewKey(user, SECRET);
    const perUser = within(form).getByLabelText("Daily token limit per user") as HTMLInputElement;
    await user.type(perUser, "1000000001");
    await user.click(within(form).getByRole("button", { name: "Create shared key" }));
    const alert = within(form).getByRole("alert");
    expect(alert.textContent).toBe("The per-user daily token limit must be a whole number from 1 to 1,000,000,000.");
    expect(perUser.getAttribute("aria-invalid")).toBe("true");
    expect(perUser.getAttribute("aria-describedby")).toBe(alert.id);
    expect(document.activeElement).toBe(perUser);
    expect(sent()).toEqual(["GET llm-config/shared-keys"]);
    // Typing again clears the error, as on the other fields.
    await user.type(perUser, "{Backspace}");
    expect(within(form).queryByRole("alert")).toBeNull();
    expect(perUser.getAttribute("aria-invalid")).toBeNull();
  });

  test("SharedKeysView does edit the token limits, and clear one emptied", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const form = await fillNewKey(user, SECRET);
    await user.type(within(form).getByLabelText("Daily token limit per user"), "50000");
    await user.click(within(form).getByRole("button", { name: "Create shared key" }));
    const card = await screen.findByRole("region", { name: "Team OpenAI" });
    await user.click(within(card).getByText("Access and limits"));
    const total = within(card).getByLabelText("Daily token limit (all users)") as HTMLInputElement;
    const perUser = within(card).getByLabelText("Daily token limit per user") as HTMLInputElement;
    expect([total.value, perUser.value]).toEqual(["", "50000"]);

    await user.type(total, "0");
    await user.click(within(card).getByRole("button", { name: "Save limits" }));
    const alert = within(card).getByRole("alert");
    expect(alert.textContent).toBe("The daily token limit must be a whole number from 1 to 1,000,000,000.");
    expect(total.getAttribute("aria-invalid")).toBe("true");
    expect(total.getAttribute("aria-describedby")).toBe(alert.id);
    expect(document.activeElement).toBe(total);
    expect(sent()).toEqual(["GET llm-config/shared-keys", "POST llm-config/shared-keys"]);

    await user.clear(total);
    await user.type(total, "3000000");
    await user.clear(perUser);
    await user.click(within(card).getByRole("button", { name: "Save limits" }));
    await waitFor(() =>
      expect(within(card).getByTestId("token-limits").textContent).toBe("3,000,000 tokens a day in all, no per-user token limit")
    );
    // The request limits are sent as they stand, so they stay; the emptied token limit is null: cleared.
    expect(server.calls.at(-1)?.body).toEqual({
      daily_limit: null,
      per_user_daily_limit: 25,
      daily_token_limit: 3_000_000,
      per_user_daily_token_limit: null,
    });
    expect(within(card).getByTestId("limits").textContent).toBe("no daily limit, 25 a day per user");
    expect(toasts()).toContain("Limits saved.");
    const [saved] = (await server.client().functions.invoke("llm-config/shared-keys", { method: "GET" })).data.shared_keys;
    expect([saved.daily_token_limit, saved.per_user_daily_token_limit]).toEqual([3_000_000, null]);
    expect((within(card).getByLabelText("Daily token limit (all users)") as HTMLInputElement).value).toBe("3000000");
  });

  test("SharedKeysView does replace the key, show usage per user, and delete after confirmation", async () => {
    const user = renderView(<SharedKeysView />);
    await screen.findByText("No shared keys yet.");
    const card = await createKey(user);
    await user.click(within(card).getByText("Replace the key"));
    const replace = within(card).getByLabelText("New OpenAI key for team-openai") as HTMLInputElement;
    await user.type(replace, "sk-team-secret-value-9999{Enter}");
    await waitFor(() => expect(within(card).getByTestId("last-four").textContent).toBe("9999"));
    expect(replace.value).toBe("");

    server.usage.set("team-openai", [
      { user_id: TEAMMATE_ID, day: "2026-11-22", requests: 7, tokens: 12_345 },
      { user_id: USER_ID, day: "2026-11-21", requests: 2, tokens: 0 },
    ]);
    await user.click(within(card).getByRole("button", { name: "Show usage" }));
    const table = await within(card).findByRole("table", { name: "Requests and tokens through team-openai, last 7 days" });
    const headers = within(table).getAllByRole("columnheader").map((th) => th.textContent);
    expect(headers).toEqual(["Day", "User", "Requests", "Tokens"]);
    const rows = within(table).getAllByRole("row").slice(1).map((row) =>
      within(row).getAllByRole("cell").map((td) => td.textContent)
    );
    expect(rows).toEqual([
      ["2026-11-22", TEAMMATE_EMAIL, "7", "12,345"],
      ["2026-11-21", "me@example.com", "2", "0"],
    ]);
    expect(sent()).toContain("GET llm-config/shared-keys/team-openai/usage?days=7");

    await user.click(within(card).getByRole("button", { name: "Delete shared key team-openai" }));
    await user.keyboard("{Escape}");
    expect(sent()).not.toContain("DELETE llm-config/shared-keys/team-openai");
    await user.click(within(card).getByRole("button", { name: "Delete shared key team-openai" }));
    await user.keyboard("{Enter}");
    await screen.findByText("No shared keys yet.");
    expect(sent()).toContain("DELETE llm-config/shared-keys/team-openai");
    expect(document.body.innerHTML).not.toContain("sk-team-secret");
  });
});

describe("UsageView and AuditView", () => {
  test("UsageView does show today's usage and switch to a shared key and back", async () => {
    server.config = { use_shared_key: false, use_owner_name: false, provider: "openai", usage_today: 3, daily_limit: 50, key_last_four: "7788" };
    const user = renderView(<UsageView />);
    expect((await screen.findByTestId("mode")).textContent).toBe("Your own keys");
    expect(screen.getByTestId("usage-today").textContent).toBe("3 requests of 50");

    await user.type(screen.getByLabelText("Shared key account name"), "nobody-here{Enter}");
    // A failure stays on the page, in an alert, not in a toast that leaves by itself.
    const failure = await screen.findByTestId("card-error");
    expect(failure.getAttribute("role")).toBe("alert");
    expect(failure.textContent).toMatch(/^No shared key has that account name./);
    expect(toasts()).not.toContain("No shared key");

    await server.client().functions.invoke("llm-config/shared-keys", {
      body: { account_name: "team-openai", display_name: "Team OpenAI", provider: "openai", api_key: SECRET },
    });
    await user.clear(screen.getByLabelText("Shared key account name"));
    await user.type(screen.getByLabelText("Shared key account name"), "team-openai{Enter}");
    await waitFor(() => expect(screen.getByTestId("mode").textContent).toBe('Shared key "Team OpenAI"'));

    await user.selectOptions(screen.getByLabelText("Provider"), "gemini");
    await user.click(screen.getByRole("button", { name: "Use my own key" }));
    await waitFor(() => expect(screen.getByTestId("mode").textContent).toBe("Your own keys"));
    expect(server.calls.at(-2)?.body).toEqual({ provider: "gemini", model: null });
  });

  test("AuditView does list events newest first and call the signed-in user you", async () => {
    server.events.push(
      { id: 1, created_at: "2026-11-20T10:00:00.000Z", actor_id: USER_ID, service: "openai", event: "set", via: null, detail: {} },
      { id: 2, created_at: "2026-11-21T10:00:00.000Z", actor_id: TEAMMATE_ID, service: "openai", event: "use_shared_key", via: "team-openai", detail: {} },
    );
    renderView(<AuditView userId={USER_ID} />);
    const table = await screen.findByTestId("audit-table");
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-event"))).toEqual(["use_shared_key", "set"]);
    expect(within(rows[0]).getByText("Used through a shared key")).toBeTruthy();
    expect(within(rows[0]).getByText(TEAMMATE_EMAIL)).toBeTruthy();
    expect(within(rows[0]).getByText("team-openai")).toBeTruthy();
    expect(within(rows[1]).getByText("Key saved")).toBeTruthy();
    expect(within(rows[1]).getByText("you")).toBeTruthy();
    expect(within(rows[1]).getByText("OpenAI")).toBeTruthy();
    expect(server.calls[0].body).toEqual({ action: "events", limit: 100 });
  });
});
