/**
 * FlowsView in jsdom against a real supabase-js client and a real HTTP fake of the flows
 * function, driven from the keyboard: create, owner-funded, limits, and the share link that is
 * shown once and then forgotten.
 */
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";
import { FlowsView } from "../../src/components/FlowsView.tsx";
import { ToastProvider } from "../../src/components/Toasts.tsx";
import { SupabaseProvider } from "../../src/supabaseContext.tsx";
import { type FakeSharingServer, startFakeSharingServer } from "./fakeSharingServer.ts";

let server: FakeSharingServer;

beforeAll(async () => {
  server = await startFakeSharingServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const flowActions = () => server.calls.map((c) => c.body?.action);
const toasts = () => screen.getByRole("status", { name: "Notifications" }).textContent ?? "";

async function renderWithFlow(name = "Research flow") {
  const user = userEvent.setup();
  render(
    <SupabaseProvider client={server.client()}>
      <ToastProvider>
        <FlowsView shareLinkOrigin="https://app.example.com" />
      </ToastProvider>
    </SupabaseProvider>,
  );
  await screen.findByText("No flows yet.");
  await user.type(screen.getByLabelText("New flow name"), `${name}{Enter}`);
  const card = await screen.findByRole("region", { name });
  return { user, card };
}

describe("FlowsView", () => {
  test("FlowsView does create a flow from the keyboard and list it unpublished", async () => {
    const { card } = await renderWithFlow();
    expect(within(card).getByTestId("flow-status").textContent).toBe("Not published");
    expect((screen.getByLabelText("New flow name") as HTMLInputElement).value).toBe("");
    expect(screen.getByText("1 flow.")).toBeTruthy();
    expect(toasts()).toContain('Flow "Research flow" created.');
    expect(flowActions()).toEqual(["list", "create"]);
    expect(server.calls[1].body).toEqual({ action: "create", name: "Research flow" });
  });

  test("FlowsView does refuse an empty name inline without sending", async () => {
    const user = userEvent.setup();
    render(
      <SupabaseProvider client={server.client()}>
        <FlowsView />
      </SupabaseProvider>,
    );
    await screen.findByText("No flows yet.");
    await user.click(screen.getByRole("button", { name: "Create flow" }));
    expect(screen.getByRole("alert").textContent).toBe("Enter a name for the flow.");
    expect(document.activeElement).toBe(screen.getByLabelText("New flow name"));
    expect(flowActions()).toEqual(["list"]);
  });

  test("FlowsView does turn owner-funded on and warn that collaborators spend your keys", async () => {
    const { user, card } = await renderWithFlow();
    const toggle = within(card).getByRole("switch", { name: /Owner-funded/ }) as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    expect(within(card).getByText(/collaborators with the share link spend your provider keys/)).toBeTruthy();
    toggle.focus();
    await user.keyboard(" ");
    await waitFor(() => expect(toggle.checked).toBe(true));
    const warning = within(card).getByText(/everyone with the share link spends your provider keys/);
    expect(warning.className).toBe("warning");
    expect(toggle.getAttribute("aria-describedby")).toBe(warning.id);
    expect(server.calls.at(-1)?.body).toMatchObject({ action: "update", use_owner_keys: true });
    expect(toasts()).toContain("now runs on your keys");
  });

  test("FlowsView does check the limits before saving them", async () => {
    const { user, card } = await renderWithFlow();
    const perMinute = within(card).getByLabelText("Runs per minute") as HTMLInputElement;
    const daily = within(card).getByLabelText("Runs per day") as HTMLInputElement;
    expect([perMinute.value, daily.value]).toEqual(["10", "100"]);
    await user.clear(perMinute);
    await user.type(perMinute, "0");
    await user.click(within(card).getByRole("button", { name: "Save limits" }));
    expect(within(card).getByRole("alert").textContent).toMatch(/Runs per minute must be a whole number from 1 to 10,000/);
    expect(perMinute.getAttribute("aria-invalid")).toBe("true");
    expect(flowActions()).toEqual(["list", "create"]);

    await user.clear(perMinute);
    await user.type(perMinute, "3");
    await user.clear(daily);
    await user.type(daily, "40{Enter}");
    await waitFor(() => expect(within(card).getByText("0 of 40")).toBeTruthy());
    expect(server.calls.at(-1)?.body).toMatchObject({ action: "update", per_minute_limit: 3, daily_limit: 40 });
  });

  test("FlowsView does show the share link once, copy it, and forget it when closed", async () => {
    const { user, card } = await renderWithFlow();
    const consoleSpies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m));
    await user.click(within(card).getByRole("button", { name: "Publish and get link" }));
    const dialog = await within(card).findByRole("dialog", { name: "Share link for Research flow" });
    const [token] = server.issuedTokens;
    const flow = (await server.client().functions.invoke("flows", { body: { action: "list" } })).data.flows[0];
    const input = within(dialog).getByLabelText("Share link") as HTMLInputElement;
    expect(input.value).toBe(`https://app.example.com/live/${flow.live_id}#${token}`);
    expect(within(card).getByTestId("flow-status").textContent).toBe("Published");
    expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Copy link" }));

    await user.keyboard("{Enter}");
    expect(await navigator.clipboard.readText()).toBe(input.value);
    await waitFor(() => expect(toasts()).toContain("Link copied."));

    await user.keyboard("{Escape}");
    expect(within(card).queryByRole("dialog")).toBeNull();
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "New share link" }));
    expect(document.body.innerHTML).not.toContain(token);
    expect(JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })).not.toContain(token);
    expect(window.location.href).not.toContain(token);
    for (const spy of consoleSpies) expect(JSON.stringify(spy.mock.calls)).not.toContain(token);
  });

  test("FlowsView does rotate and revoke the link only after confirmation", async () => {
    const { user, card } = await renderWithFlow();
    await user.click(within(card).getByRole("button", { name: "Publish and get link" }));
    await user.click(await within(card).findByRole("button", { name: "Done" }));

    await user.click(within(card).getByRole("button", { name: "New share link" }));
    const confirm = within(card).getByRole("group", { name: "Confirm a new share link for Research flow" });
    expect(document.activeElement).toBe(within(confirm).getByRole("button", { name: "Yes, new link" }));
    await user.keyboard("{Escape}");
    expect(flowActions()).not.toContain("rotate_token");
    expect(document.activeElement).toBe(within(card).getByRole("button", { name: "New share link" }));

    await user.keyboard("{Enter}");
    await user.keyboard("{Enter}");
    const dialog = await within(card).findByRole("dialog");
    expect((within(dialog).getByLabelText("Share link") as HTMLInputElement).value).toContain(server.issuedTokens[1]);
    expect(flowActions()).toContain("rotate_token");
    await user.click(within(dialog).getByRole("button", { name: "Done" }));
    expect(document.body.innerHTML).not.toContain(server.issuedTokens[1]);

    await user.click(within(card).getByRole("button", { name: "Revoke link" }));
    await user.click(within(card).getByRole("button", { name: "Yes, revoke" }));
    await waitFor(() => expect(flowActions()).toContain("revoke_token"));
    await waitFor(() => expect(toasts()).toContain("Link revoked."));
    // Revoked means not published, and focus lands on Publish, never on <body>.
    expect(within(card).getByTestId("flow-status").textContent).toBe("Not published");
    await waitFor(() =>
      expect(document.activeElement).toBe(within(card).getByRole("button", { name: "Publish and get link" }))
    );
  });

  test("FlowsView does rename, unpublish and delete a flow, keeping focus on the page", async () => {
    const user = userEvent.setup();
    render(
      <SupabaseProvider client={server.client()}>
        <FlowsView />
      </SupabaseProvider>,
    );
    await user.type(await screen.findByLabelText("New flow name"), "Lifecycle flow{Enter}");
    const card = await screen.findByRole("region", { name: "Lifecycle flow" });
    const name = within(card).getByLabelText("Flow name");
    await user.clear(name);
    await user.type(name, "Renamed flow{Enter}");
    await screen.findByRole("region", { name: "Renamed flow" });
    expect(flowActions()).toContain("update");

    const renamed = screen.getByRole("region", { name: "Renamed flow" });
    await user.click(within(renamed).getByRole("button", { name: "Publish and get link" }));
    const dialog = await within(renamed).findByRole("dialog");
    // The dialog keeps focus inside it: Tab from Done goes round to the link, Shift+Tab back.
    within(dialog).getByRole("button", { name: "Done" }).focus();
    await user.tab();
    expect(dialog.contains(document.activeElement)).toBe(true);
    await user.tab({ shift: true });
    expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Done" }));
    await user.keyboard("{Escape}");

    await user.click(within(renamed).getByRole("button", { name: "Unpublish" }));
    await user.keyboard("{Enter}");
    await waitFor(() => expect(within(renamed).getByTestId("flow-status").textContent).toBe("Not published"));
    expect(flowActions()).toContain("unpublish");

    await user.click(within(renamed).getByRole("button", { name: "Delete flow Renamed flow" }));
    await user.keyboard("{Enter}");
    await waitFor(() => expect(screen.queryByRole("region", { name: "Renamed flow" })).toBeNull());
    expect(flowActions()).toContain("delete");
    await waitFor(() => expect(document.activeElement?.classList.contains("summary")).toBe(true));
  });

  test("FlowsView does show a friendly message and retry when loading fails", async () => {
    server.failNext(503, { code: "CREDENTIALS_UNAVAILABLE", message: "x", recoverable: true });
    const user = userEvent.setup();
    render(
      <SupabaseProvider client={server.client()}>
        <FlowsView />
      </SupabaseProvider>,
    );
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Your stored keys could not be read right now.");
    await user.click(within(alert).getByRole("button", { name: "Try again" }));
    await screen.findByText("No flows yet.");
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
