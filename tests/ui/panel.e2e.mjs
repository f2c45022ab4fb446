// End-to-end: the built settings panel in real headless Debian Chromium (playwright-core), against
// the real local stack (Deno child process, embedded PGlite in a temp dir, or SUPABASE_DB_URL from
// DATABASE_URL) whose OpenAI upstream is a fake HTTP server started here.
// Run: node --test tests/ui/panel.e2e.mjs   (UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/)
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];
const shotsDir = join(root, "test-results", "screenshots");
// The states docs/panel.md shows; UPDATE_SCREENSHOTS=1 writes them to docs/screenshots/ too.
const DOC_SHOTS = new Set(["connected", "rejected-key", "mobile-dark"]);
const docShotsDir = process.env.UPDATE_SCREENSHOTS === "1" ? join(root, "docs", "screenshots") : null;

// Every key this run types into the page; none may ever show up anywhere but a request body.
const run = randomBytes(4).toString("hex");
const GOOD_KEY = `sk-e2e-good-${run}-A1b2`;
const REJECTED_KEY = `sk-e2e-rejected-${run}-Z9y8`;
const BADLY_FORMATTED_KEY = `pk-wrong-format-${run}`;
const SECOND_GOOD_KEY = `sk-e2e-second-${run}-C3d4`;
const OUTAGE_KEY = `sk-e2e-outage-${run}-E5f6`;
const ACCEPTED_KEYS = new Set([GOOD_KEY, SECOND_GOOD_KEY]);
const KEYS = [GOOD_KEY, REJECTED_KEY, BADLY_FORMATTED_KEY, SECOND_GOOD_KEY, OUTAGE_KEY];
const EMAIL = `e2e-${run}@example.com`;

/** GET /v1/models: 200 for GOOD_KEY (and TEAM keys), 503 for OUTAGE_KEY, 401 (OpenAI's error shape) for anything else. */
function startFakeOpenAI() {
  const seen = [];
  const server = createServer((request, response) => {
    seen.push({ method: request.method, url: request.url });
    const key = request.headers.authorization?.replace(/^Bearer /, "");
    const models = request.method === "GET" && request.url === "/v1/models";
    if (models && key === OUTAGE_KEY) {
      response.writeHead(503, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: { message: "overloaded", type: "server_error" } }));
      return;
    }
    const ok = models && ACCEPTED_KEYS.has(key);
    response.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
    response.end(JSON.stringify(
      ok
        ? { object: "list", data: [{ id: "gpt-test", object: "model" }] }
        : { error: { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" } },
    ));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, seen, url: `http://127.0.0.1:${server.address().port}` }))
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the local stack exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the local stack did not answer /health within ${timeoutMs} ms`);
}

function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

let fake;
let stack;
let stackUrl;
let stackOutput = "";
let dataDir;
let browser;
let page;
const consoleLines = [];
const credentialCalls = [];
const leakChecks = [];

/** Records where a key could leak right now: page HTML, both storages, the URL. */
async function checkNoKeyVisible(step) {
  const html = await page.content();
  const storage = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
  const url = page.url();
  leakChecks.push(step);
  for (const key of KEYS) {
    assert.ok(!html.includes(key), `${step}: a key is in the page HTML`);
    assert.ok(!storage.includes(key), `${step}: a key is in web storage`);
    assert.ok(!url.includes(key), `${step}: a key is in the URL`);
  }
}

function card(label) {
  return page.getByRole("region", { name: label, exact: true });
}

async function shot(name) {
  mkdirSync(shotsDir, { recursive: true });
  const image = await page.screenshot({ path: join(shotsDir, `${name}.png`) });
  if (docShotsDir && DOC_SHOTS.has(name)) {
    mkdirSync(docShotsDir, { recursive: true });
    writeFileSync(join(docShotsDir, `${name}.png`), image);
  }
}

async function signIn() {
  await page.goto(stackUrl);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Email").press("Enter");
  await page.getByTestId("signed-in-as").waitFor();
  await page.getByTestId("summary").getByText(/providers connected/).waitFor();
}

before(async () => {
  process.once("exit", () => stack?.exitCode === null && stack.kill("SIGKILL"));
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/install-chromium.sh`);
  const build = spawnSync(join(root, "node_modules", ".bin", "vite"), ["build", "--logLevel", "warn"], {
    cwd: root,
    encoding: "utf8",
  });
  assert.equal(build.status, 0, `vite build failed:\n${build.stdout}${build.stderr}`);

  fake = await startFakeOpenAI();
  dataDir = mkdtempSync(join(tmpdir(), "byok-e2e-"));
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    DATA_DIR: dataDir,
    OPENAI_BASE_URL: `${fake.url}/v1`,
    // The custom endpoint card points at the fake on 127.0.0.1.
    ALLOW_PRIVATE_BASE_URLS: "true",
  };
  delete env.SUPABASE_DB_URL;
  if (process.env.DATABASE_URL) env.SUPABASE_DB_URL = process.env.DATABASE_URL;
  stack = spawn(join(root, "node_modules", ".bin", "deno"), ["run", "--allow-all", "local/server.ts"], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  stack.stdout.on("data", (d) => (stackOutput += d));
  stack.stderr.on("data", (d) => (stackOutput += d));
  stackUrl = `http://127.0.0.1:${port}`;
  await waitForHealth(stackUrl, stack, 90_000);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, colorScheme: "light" });
  page = await context.newPage();
  page.on("console", (message) => consoleLines.push(message.text()));
  page.on("pageerror", (error) => consoleLines.push(String(error)));
  page.on("request", (request) => {
    if (request.url().includes("/functions/v1/credentials-manager") && request.method() === "POST") {
      credentialCalls.push({ url: request.url(), body: request.postData() ?? "" });
    }
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopChild(stack);
  await new Promise((resolve) => (fake ? fake.server.close(() => resolve()) : resolve()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("settings panel in Chromium", () => {
  test("panel does sign in a demo user and save an OpenAI key as Connected with its last four", async () => {
    await signIn();
    const openai = card("OpenAI");
    assert.equal(await openai.getByTestId("status").textContent(), "Not set");
    await shot("signed-in");
    await checkNoKeyVisible("after sign-in");

    const input = openai.getByLabel("OpenAI API key");
    await input.fill(GOOD_KEY);
    assert.equal(await input.getAttribute("type"), "password");
    await checkNoKeyVisible("while typing (masked)");
    await openai.getByRole("button", { name: "Save OpenAI key" }).click();
    // Saved, not yet checked: never "Connected" before a check passed.
    await openai.getByTestId("status").getByText("Not tested", { exact: true }).waitFor();
    assert.equal(await openai.getByTestId("last-four").textContent(), GOOD_KEY.slice(-4));
    assert.equal(await openai.getByLabel("Replace OpenAI API key").inputValue(), "");
    await page.getByText(`OpenAI key ending in ${GOOD_KEY.slice(-4)} saved.`).waitFor();

    await openai.getByRole("button", { name: "Test OpenAI key" }).click();
    await page.getByText("OpenAI accepted your key.").waitFor();
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    assert.match(await openai.getByTestId("validation").textContent(), /works/);
    await shot("connected");
    await checkNoKeyVisible("after save and test");
  });

  test("panel does still show the key Connected after a reload", async () => {
    await page.reload();
    const openai = card("OpenAI");
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    assert.equal(await openai.getByTestId("last-four").textContent(), GOOD_KEY.slice(-4));
    await checkNoKeyVisible("after reload");
  });

  test("panel does show an inline error and send nothing for a badly formatted key", async () => {
    const openai = card("OpenAI");
    const before = credentialCalls.length;
    const input = openai.getByLabel("Replace OpenAI API key");
    await input.focus();
    await page.keyboard.type(BADLY_FORMATTED_KEY);
    await page.keyboard.press("Enter");
    const alert = openai.locator(".field-error");
    assert.equal(await alert.textContent(), 'OpenAI keys start with "sk-".');
    assert.equal(await alert.getAttribute("role"), "alert");
    assert.ok((await input.getAttribute("aria-describedby")).split(" ").includes(await alert.getAttribute("id")));
    assert.equal(await input.getAttribute("aria-invalid"), "true");
    await page.waitForTimeout(300);
    assert.equal(credentialCalls.length, before, "a request went to credentials-manager");
    await checkNoKeyVisible("after a badly formatted key");
    await input.fill("");
  });

  test("panel does show the invalid-key message when the provider rejects the key", async () => {
    const openai = card("OpenAI");
    // Replacing a working key: the new one is tested first, then the panel asks.
    await openai.getByLabel("Replace OpenAI API key").fill(REJECTED_KEY);
    await openai.getByRole("button", { name: "Save OpenAI key" }).click();
    const confirm = openai.getByRole("group", { name: "Confirm replacing the OpenAI key" });
    await confirm.getByText("The new key was rejected.").waitFor();
    await confirm.getByRole("button", { name: "Yes, replace" }).click();
    await page.getByText(`OpenAI key ending in ${REJECTED_KEY.slice(-4)} saved.`).waitFor();
    await openai.getByRole("button", { name: "Test OpenAI key" }).click();
    await openai.getByTestId("card-error").getByText(
      "OpenAI rejected this key. Check it, or create a new one and save it here.",
    ).waitFor();
    // A rejected key is never "Connected" and never counted as connected.
    assert.equal(await openai.getByTestId("status").textContent(), "Rejected");
    assert.equal(await page.getByTestId("summary").textContent(), "0 of 7 providers connected (1 rejected).");
    assert.match(await openai.getByTestId("validation").textContent(), /rejected/);
    await shot("rejected-key");
    await checkNoKeyVisible("after a rejected key");
    assert.ok(
      fake.seen.some((r) => r.url === "/v1/models"),
      "the stack did not ask the fake upstream",
    );
  });

  test("panel does remove the key after confirmation and show Not set", async () => {
    const openai = card("OpenAI");
    await openai.getByRole("button", { name: "Remove OpenAI key" }).click();
    const confirm = openai.getByRole("group", { name: "Confirm removing the OpenAI key" });
    await confirm.getByRole("button", { name: "Yes, remove" }).waitFor();
    // The confirmation has focus, so Enter confirms (keyboard only).
    await page.keyboard.press("Enter");
    await openai.getByTestId("status").getByText("Not set").waitFor();
    await page.getByText("OpenAI key removed.").waitFor();
    await page.reload();
    await card("OpenAI").getByTestId("status").getByText("Not set").waitFor();
    await checkNoKeyVisible("after remove");
  });

  test("panel does fit 375 px in a dark theme with visible focus", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 375, height: 800 });
    await page.reload();
    await page.getByTestId("summary").getByText(/providers connected/).waitFor();
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      background: getComputedStyle(document.body).backgroundColor,
    }));
    assert.ok(layout.scrollWidth <= 375, `the page scrolls sideways (${layout.scrollWidth} px)`);
    assert.equal(layout.background, "rgb(15, 20, 25)");
    const input = card("OpenAI").getByLabel("OpenAI API key");
    await input.focus();
    const outline = await input.evaluate((el) => getComputedStyle(el).outlineStyle);
    assert.equal(outline, "solid");
    await card("OpenAI").scrollIntoViewIfNeeded();
    await shot("mobile-dark");
  });

  test("panel does never expose a key in the console or the stack's logs", () => {
    assert.ok(leakChecks.length >= 6, "the page was not checked at every step");
    assert.ok(credentialCalls.some((c) => c.body.includes(GOOD_KEY)), "the good key was never sent");
    for (const key of KEYS) {
      assert.ok(!consoleLines.some((line) => line.includes(key)), "a key reached the browser console");
      assert.ok(!stackOutput.includes(key), "a key reached the local stack's output");
      assert.ok(!credentialCalls.some((c) => c.url.includes(key)), "a key was put in a request URL");
    }
    assert.ok(!credentialCalls.some((c) => c.body.includes(BADLY_FORMATTED_KEY)), "the badly formatted key was sent");
  });
});

// The sharing views, in the same browser and stack: the signed-in user from above keeps going.
const SHARED_KEY = `sk-e2e-shared-${run}-Q7w6`;
KEYS.push(SHARED_KEY);
DOC_SHOTS.add("sharing-flows");
DOC_SHOTS.add("sharing-mobile-dark");
const shareTokens = [];
const requestUrls = [];

/** Fails when a share token handed out so far is in the page HTML, web storage or the URL. */
async function checkNoShareTokenVisible(step) {
  const html = await page.content();
  const storage = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
  for (const token of shareTokens) {
    assert.ok(!html.includes(token), `${step}: a share token is in the page HTML`);
    assert.ok(!storage.includes(token), `${step}: a share token is in web storage`);
    assert.ok(!page.url().includes(token), `${step}: a share token is in the URL`);
  }
  await checkNoKeyVisible(step);
}

/** The signed-in user's shared keys as the stack reads them from its database, not through the page. */
async function sharedKeysInDatabase() {
  const session = await fetch(`${stackUrl}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: EMAIL }),
  });
  const { access_token: token } = await session.json();
  const response = await fetch(`${stackUrl}/functions/v1/llm-config/shared-keys`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200);
  return (await response.json()).shared_keys;
}

async function openTab(name) {
  await page.getByRole("tab", { name, exact: true }).click();
  assert.equal(await page.getByRole("tab", { name, exact: true }).getAttribute("aria-selected"), "true");
}

describe("sharing views in Chromium", () => {
  before(async () => {
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: stackUrl });
    page.on("request", (request) => requestUrls.push(request.url()));
    await page.reload();
    await page.getByTestId("summary").getByText(/providers connected/).waitFor();
  });

  test("flows view does create a flow, turn on owner-funded and show the share link once", async () => {
    await openTab("Flows");
    await page.getByText("No flows yet.").waitFor();
    await page.getByLabel("New flow name").fill("E2E research flow");
    await page.getByLabel("New flow name").press("Enter");
    const flow = page.getByRole("region", { name: "E2E research flow" });
    await flow.waitFor();
    assert.equal(await flow.getByTestId("flow-status").textContent(), "Not published");

    const toggle = flow.getByRole("switch", { name: /Owner-funded/ });
    await toggle.focus();
    await page.keyboard.press("Space");
    await flow.getByText(/everyone with the share link spends your provider keys/).waitFor();
    assert.equal(await toggle.isChecked(), true);

    await flow.getByRole("button", { name: "Publish and get link" }).click();
    const dialog = flow.getByRole("dialog", { name: "Share link for E2E research flow" });
    await dialog.waitFor();
    const link = await dialog.getByLabel("Share link").inputValue();
    const match = link.match(new RegExp(`^${stackUrl}/live/([A-Za-z0-9_-]+)#(shr_[A-Za-z0-9_-]{43})$`));
    assert.ok(match, `unexpected share link shape: ${link.replace(/shr_\S+/, "shr_…")}`);
    shareTokens.push(match[2]);
    assert.equal(await flow.getByTestId("flow-status").textContent(), "Published");

    await dialog.getByRole("button", { name: "Copy link" }).click();
    await page.getByText("Link copied.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await checkNoShareTokenVisible("after closing the share link");

    // The database kept the switch and the publication; the link is not shown again.
    await page.reload();
    await openTab("Flows");
    const reloaded = page.getByRole("region", { name: "E2E research flow" });
    await reloaded.getByTestId("flow-status").getByText("Published").waitFor();
    assert.equal(await reloaded.getByRole("switch", { name: /Owner-funded/ }).isChecked(), true);
    assert.equal(await reloaded.getByRole("dialog").count(), 0);
    await shot("sharing-flows");
    await checkNoShareTokenVisible("after a reload of the flows view");
  });

  test("flows view does rotate the link after confirmation and forget the new token too", async () => {
    const flow = page.getByRole("region", { name: "E2E research flow" });
    await flow.getByRole("button", { name: "New share link" }).click();
    await flow.getByRole("button", { name: "Yes, new link" }).click();
    const dialog = flow.getByRole("dialog");
    await dialog.waitFor();
    const link = await dialog.getByLabel("Share link").inputValue();
    const token = link.slice(link.indexOf("#") + 1);
    assert.notEqual(token, shareTokens[0]);
    shareTokens.push(token);
    await dialog.getByRole("button", { name: "Done" }).click();
    await dialog.waitFor({ state: "detached" });
    await checkNoShareTokenVisible("after rotating the share link");
  });

  test("shared keys view does create a shared key and list it without the key", async () => {
    await openTab("Shared keys");
    await page.getByText("No shared keys yet.").waitFor();
    const form = page.getByRole("form", { name: "New shared key" });
    await form.getByLabel("Account name").fill(`e2e-team-${run}`);
    await form.getByLabel("Display name").fill("E2E team key");
    await form.getByLabel("Daily limit per user").fill("20");
    await form.getByLabel("Daily token limit per user").fill("50000");
    await form.getByLabel("OpenAI API key to share").fill(SHARED_KEY);
    assert.equal(await form.getByLabel("OpenAI API key to share").getAttribute("type"), "password");
    const created = page.waitForResponse((r) => r.url().endsWith("/functions/v1/llm-config/shared-keys") && r.request().method() === "POST");
    await form.getByRole("button", { name: "Create shared key" }).click();
    const answer = await (await created).json();
    assert.equal(answer.shared_key.per_user_daily_token_limit, 50_000);
    assert.equal(answer.shared_key.daily_token_limit, null);
    const card = page.getByRole("region", { name: "E2E team key" });
    await card.waitFor();
    assert.equal(await card.getByTestId("last-four").textContent(), SHARED_KEY.slice(-4));
    assert.equal(await card.getByTestId("limits").textContent(), "no daily limit, 20 a day per user");
    assert.equal(await card.getByTestId("token-limits").textContent(), "no daily token limit, 50,000 tokens a day per user");
    assert.equal(await form.getByLabel("OpenAI API key to share").inputValue(), "");
    await checkNoShareTokenVisible("after creating a shared key");

    await page.reload();
    await openTab("Shared keys");
    await page.getByRole("region", { name: "E2E team key" }).getByTestId("last-four").waitFor();
    await card.getByRole("button", { name: "Show usage" }).click();
    await card.getByText("No requests in the last 7 days.").waitFor();
    await checkNoShareTokenVisible("after reloading the shared keys");
  });

  test("shared keys view does set a token limit and clear another, and the database keeps both", async () => {
    const card = page.getByRole("region", { name: "E2E team key" });
    await card.getByText("Access and limits").click();
    const total = card.getByLabel("Daily token limit (all users)");
    assert.equal(await card.getByLabel("Daily token limit per user").inputValue(), "50000");
    // Out of range: the field says why and keeps focus; nothing is sent.
    await total.fill("1000000001");
    await card.getByRole("button", { name: "Save limits" }).click();
    const alert = card.getByRole("alert");
    assert.equal(await alert.textContent(), "The daily token limit must be a whole number from 1 to 1,000,000,000.");
    assert.equal(await total.getAttribute("aria-invalid"), "true");
    assert.equal(await total.getAttribute("aria-describedby"), await alert.getAttribute("id"));
    assert.equal(await total.evaluate((el) => el === document.activeElement), true);

    await total.fill("2000000");
    await card.getByLabel("Daily token limit per user").fill("");
    const saved = page.waitForResponse((r) => r.url().endsWith("/limits") && r.request().method() === "POST");
    await card.getByRole("button", { name: "Save limits" }).click();
    const answer = await (await saved).json();
    assert.equal(answer.shared_key.daily_token_limit, 2_000_000);
    assert.equal(answer.shared_key.per_user_daily_token_limit, null);
    await card.getByTestId("token-limits").getByText("2,000,000 tokens a day in all, no per-user token limit").waitFor();

    const [stored] = (await sharedKeysInDatabase()).filter((key) => key.account_name === `e2e-team-${run}`);
    assert.deepEqual(
      [stored.daily_limit, stored.per_user_daily_limit, stored.daily_token_limit, stored.per_user_daily_token_limit],
      [null, 20, 2_000_000, null],
    );
    await checkNoShareTokenVisible("after saving token limits");
  });

  test("audit view does show the set event of the key saved earlier, newest first", async () => {
    await openTab("Audit");
    const table = page.getByTestId("audit-table");
    await table.waitFor();
    const rows = table.locator("tbody tr");
    const events = await rows.evaluateAll((all) => all.map((row) => row.getAttribute("data-event")));
    assert.ok(events.includes("set"), `no set event in ${events.join(", ")}`);
    assert.ok(events.includes("delete"), `no delete event in ${events.join(", ")}`);
    const set = table.locator('tbody tr[data-event="set"]').first();
    assert.match(await set.textContent(), /Key saved.*OpenAI.*you$/);
    const times = await table.locator("tbody time").evaluateAll((all) => all.map((t) => t.getAttribute("datetime")));
    assert.deepEqual(times, [...times].sort().reverse(), "events are not newest first");
    await checkNoShareTokenVisible("on the audit view");
  });

  test("sharing views do fit 375 px in the dark theme", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 375, height: 800 });
    for (const tab of ["Flows", "Shared keys", "Your usage", "Audit"]) {
      await openTab(tab);
      await page.getByRole("tabpanel").getByRole("heading", { level: 2, name: tab }).waitFor();
      await page.waitForTimeout(200);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `${tab} scrolls sideways (${width} px)`);
    }
    await openTab("Flows");
    await page.getByRole("region", { name: "E2E research flow" }).waitFor();
    await page.getByRole("tab", { name: "Flows", exact: true }).focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.getByRole("tab", { name: "Shared keys" }).getAttribute("aria-selected"), "true");
    await page.keyboard.press("ArrowLeft");
    await page.getByRole("region", { name: "E2E research flow" }).waitFor();
    await shot("sharing-mobile-dark");
  });

  test("sharing views do never expose a share token or the shared key in the console, URLs or the stack's logs", () => {
    assert.equal(shareTokens.length, 2);
    for (const secret of [...shareTokens, SHARED_KEY]) {
      assert.ok(!consoleLines.some((line) => line.includes(secret)), "a secret reached the browser console");
      assert.ok(!stackOutput.includes(secret), "a secret reached the local stack's output");
      assert.ok(!requestUrls.some((url) => url.includes(secret)), "a secret was put in a request URL");
    }
  });
});

// Issue 17: the panel tells the truth about every key and keeps working for keyboard, phone and
// screen-reader users. A second demo user, so the states start clean.
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const EMAIL_2 = `e2e-truth-${run}@example.com`;
DOC_SHOTS.add("disabled-key");
DOC_SHOTS.add("load-error");
DOC_SHOTS.add("phone-layout");

/** Fails unless focus is on a real control (not <body>, not nothing). */
async function assertFocusKept(step) {
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    return el && el !== document.body ? `${el.tagName}:${el.textContent?.trim().slice(0, 40) ?? ""}` : null;
  });
  assert.ok(focused, `${step}: focus fell to <body>`);
  return focused;
}

/** Presses Tab until `locator` has focus (keyboard only), at most `max` times. */
async function tabTo(locator, max = 60) {
  for (let i = 0; i < max; i++) {
    if (await locator.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${locator}`);
}

/** axe-core on the page as it is; returns the serious and critical violations. */
async function axeSeriousViolations() {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(async () =>
    await window.axe.run(document, { resultTypes: ["violations"] })
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

function contrast(a, b) {
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
const rgb = (css) => css.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);

describe("issue 17: the panel tells the truth, in Chromium", () => {
  before(async () => {
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(stackUrl);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.getByLabel("Email").fill(EMAIL_2);
    await page.getByLabel("Email").press("Enter");
    await page.getByText("0 of 7 providers connected.").waitFor();
  });

  test("panel JS is at most 100 kB gzipped and the stack serves it compressed", async () => {
    const assets = join(root, "dist", "assets");
    const js = readdirSync(assets).filter((name) => name.endsWith(".js"));
    const gzipped = js.reduce((n, name) => n + gzipSync(readFileSync(join(assets, name)), { level: 9 }).length, 0);
    assert.ok(gzipped <= 100 * 1024, `the panel's JS is ${(gzipped / 1024).toFixed(1)} kB gzipped`);
    const response = await fetch(`${stackUrl}/assets/${js[0]}`, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(response.headers.get("content-encoding"), "gzip");
    await response.arrayBuffer();
  });

  test("a key is tested before saving, saved, and only a passed check shows Connected (keyboard only)", async () => {
    const openai = card("OpenAI");
    const input = openai.getByLabel("OpenAI API key");
    await tabTo(input);
    // A pasted key with a trailing space is trimmed, not refused.
    await page.keyboard.insertText(`${GOOD_KEY}  `);
    await tabTo(openai.getByRole("button", { name: "Test OpenAI key" }));
    await page.keyboard.press("Enter");
    await openai.getByTestId("test-answer").getByText("The key in the field works; save it to use it.").waitFor();
    assert.equal(await openai.getByTestId("status").textContent(), "Not set", "testing saved something");
    await assertFocusKept("after test before save");
    await tabTo(openai.getByRole("button", { name: "Save OpenAI key" }));
    await page.keyboard.press("Enter");
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    assert.equal(await openai.getByTestId("last-four").textContent(), GOOD_KEY.slice(-4));
    assert.equal(await page.getByTestId("summary").textContent(), "1 of 7 providers connected.");
    assert.match(await openai.getByTestId("facts-added").textContent(), /\d/);
    await assertFocusKept("after save");
    await checkNoKeyVisible("after test before save");
  });

  test("a key that cannot be checked is never Connected, and the reason stays in the card", async () => {
    const anthropic = card("Gemini");
    await anthropic.getByLabel("Gemini API key").fill("AIzaSyE2eNotAcceptedKey123");
    await anthropic.getByRole("button", { name: "Save Gemini key" }).click();
    await anthropic.getByTestId("status").getByText("Not tested", { exact: true }).waitFor();
    await anthropic.getByRole("button", { name: "Test Gemini key" }).click();
    const alert = anthropic.getByRole("alert");
    await alert.waitFor();
    assert.notEqual(await anthropic.getByTestId("status").textContent(), "Connected");
    await page.waitForTimeout(6500);
    // Still there after a toast would have gone: until the next action.
    assert.equal(await alert.count(), 1);
    assert.doesNotMatch(await page.getByTestId("summary").textContent(), /^[1-9]+ of 7 providers connected\.$/);
    await anthropic.getByRole("button", { name: "Remove Gemini key" }).click();
    assert.equal(await anthropic.getByTestId("card-error").count(), 0, "the next action did not clear the error");
    await page.keyboard.press("Enter");
    await anthropic.getByTestId("status").getByText("Not set").waitFor();
    await assertFocusKept("after remove");
  });

  test("replacing a working key asks first, with the new key's test result, from the keyboard", async () => {
    const openai = card("OpenAI");
    const input = openai.getByLabel("Replace OpenAI API key");
    await tabTo(input);
    await page.keyboard.insertText(SECOND_GOOD_KEY);
    await page.keyboard.press("Enter");
    const confirm = openai.getByRole("group", { name: "Confirm replacing the OpenAI key" });
    await confirm.getByText("The new key works.").waitFor();
    await page.keyboard.press("Enter");
    await openai.getByTestId("last-four").getByText(SECOND_GOOD_KEY.slice(-4)).waitFor();
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    await assertFocusKept("after replace");
  });

  test("a key is turned off and on without deleting it, from the keyboard", async () => {
    const openai = card("OpenAI");
    const toggle = openai.getByRole("switch", { name: /Use OpenAI key/ });
    await tabTo(toggle);
    await page.keyboard.press("Enter");
    await openai.getByTestId("status").getByText("Turned off").waitFor();
    assert.equal(await toggle.getAttribute("aria-checked"), "false");
    assert.equal(await page.getByTestId("summary").textContent(), "0 of 7 providers connected (1 turned off).");
    assert.equal(await assertFocusKept("after toggle"), await toggle.evaluate((el) => `${el.tagName}:${el.textContent.trim().slice(0, 40)}`));
    await openai.scrollIntoViewIfNeeded();
    await shot("disabled-key");
    await page.reload();
    await card("OpenAI").getByTestId("status").getByText("Turned off").waitFor();
    await tabTo(card("OpenAI").getByRole("switch", { name: /Use OpenAI key/ }));
    await page.keyboard.press("Space");
    await card("OpenAI").getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    await assertFocusKept("after toggle on");
  });

  test("the custom endpoint shows its saved base URL, and changing it runs a test", async () => {
    const custom = card("Custom endpoint");
    await custom.getByLabel("Base URL").fill(`${fake.url}/v1`);
    await custom.getByLabel("Custom endpoint API key").fill(OUTAGE_KEY);
    await custom.getByRole("button", { name: "Save Custom endpoint key" }).click();
    await custom.getByTestId("base-url").getByText(`${fake.url}/v1`).waitFor();
    assert.equal(await custom.getByLabel("Base URL").inputValue(), `${fake.url}/v1`);
    // Saving a new endpoint tested it; the fake is "down" for this key: could not check, not Connected.
    await custom.getByTestId("status").getByText("Could not check").waitFor();
    await custom.getByTestId("card-error").waitFor();
  });

  test("toasts are only for successes, two at most, and never cover the active card's controls at 375 px", async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    for (const [label, key] of [["Perplexity", `pplx-e2e-${run}-1111`], ["OpenRouter", `sk-or-e2e-${run}-2222`], ["Manus", `manus-e2e-${run}-3333`]]) {
      KEYS.push(key);
      const section = card(label);
      await section.scrollIntoViewIfNeeded();
      await section.getByLabel(`${label} API key`).fill(key);
      await section.getByLabel(`${label} API key`).press("Enter");
      await section.getByTestId("last-four").waitFor();
      const toasts = page.locator(".toast");
      assert.ok((await toasts.count()) <= 2, `${await toasts.count()} toasts at once`);
      const region = await page.locator(".toasts").boundingBox();
      for (const control of await section.locator(".actions button, input").all()) {
        const box = await control.boundingBox();
        if (!box || !region || region.height === 0) continue;
        const overlap = box.x < region.x + region.width && region.x < box.x + box.width &&
          box.y < region.y + region.height && region.y < box.y + box.height;
        assert.ok(!overlap, `a toast covers ${label}'s ${await control.textContent() || "field"}`);
      }
    }
    assert.equal(await page.locator('.toast[data-kind="error"]').count(), 0);
    await shot("phone-layout");
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  test("while loading and when loading fails, no card claims Not set and Save stays off", async () => {
    let release;
    const held = new Promise((resolve) => (release = resolve));
    await page.route("**/functions/v1/credentials-manager", async (route) => {
      if (route.request().postData()?.includes('"list"')) await held;
      await route.continue();
    });
    await page.reload();
    const openai = card("OpenAI");
    await openai.getByTestId("status").getByText("Loading…").waitFor();
    assert.equal(await openai.getByRole("button", { name: "Save OpenAI key" }).isDisabled(), true);
    assert.doesNotMatch(await page.locator(".providers").textContent(), /Not set|Not connected/);
    release();
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    await page.unroute("**/functions/v1/credentials-manager");

    await page.route("**/functions/v1/credentials-manager", (route) =>
      route.request().postData()?.includes('"list"')
        ? route.fulfill({
          status: 503,
          contentType: "application/json",
          headers: { "access-control-allow-origin": "*" },
          body: JSON.stringify({ error: { code: "CREDENTIALS_UNAVAILABLE", message: "x", recoverable: true } }),
        })
        : route.continue());
    await page.reload();
    await page.getByText("Your keys could not be loaded, so their status is unknown.").waitFor();
    for (const label of ["OpenAI", "Gemini", "Custom endpoint"]) {
      assert.equal(await card(label).getByTestId("status").textContent(), "Status unknown");
      assert.equal(await card(label).getByRole("button", { name: `Save ${label} key` }).isDisabled(), true);
    }
    assert.doesNotMatch(await page.locator(".providers").textContent(), /Not set|Not connected/);
    await shot("load-error");
    await page.unroute("**/functions/v1/credentials-manager");
    await page.getByRole("button", { name: "Try again" }).click();
    await card("OpenAI").getByTestId("status").getByText("Connected", { exact: true }).waitFor();
  });

  test("light-theme focus ring and field borders have at least 3:1 contrast; forced colors mark the selected tab", async () => {
    const openai = card("OpenAI");
    const input = openai.getByLabel("Replace OpenAI API key");
    await input.focus();
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Tab");
    const colours = await input.evaluate((el) => {
      const card = el.closest(".provider");
      return {
        outline: getComputedStyle(el).outlineColor,
        border: getComputedStyle(el).borderTopColor,
        field: getComputedStyle(el).backgroundColor,
        card: getComputedStyle(card).backgroundColor,
      };
    });
    for (const [name, value] of [["focus ring", colours.outline], ["field border", colours.border]]) {
      for (const against of [colours.card, colours.field]) {
        const ratio = contrast(rgb(value), rgb(against));
        assert.ok(ratio >= 3, `${name} ${value} on ${against} is ${ratio.toFixed(2)}:1`);
      }
    }

    await page.emulateMedia({ colorScheme: "light", forcedColors: "active" });
    const looks = await page.locator('[role="tab"]').evaluateAll((tabs) =>
      tabs.map((tab) => {
        const style = getComputedStyle(tab);
        return { selected: tab.getAttribute("aria-selected") === "true", look: `${style.backgroundColor}|${style.color}` };
      })
    );
    const selected = looks.find((t) => t.selected).look;
    assert.ok(looks.filter((t) => !t.selected).every((t) => t.look !== selected), "the selected tab looks like the others");
    await page.emulateMedia({ colorScheme: "light", forcedColors: "none" });
  });

  test("a flow is published, revoked, published, unpublished and deleted from the keyboard; its link dialog keeps focus", async () => {
    await openTab("Flows");
    const name = page.getByLabel("New flow name");
    await tabTo(name);
    await page.keyboard.insertText("Lifecycle flow");
    await page.keyboard.press("Enter");
    const flow = page.getByRole("region", { name: "Lifecycle flow" });
    await flow.waitFor();
    await tabTo(flow.getByRole("button", { name: "Publish and get link" }));
    await page.keyboard.press("Enter");
    const dialog = flow.getByRole("dialog");
    await dialog.waitFor();
    shareTokens.push((await dialog.getByLabel("Share link").inputValue()).split("#")[1]);
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab");
      assert.ok(await dialog.evaluate((el) => el.contains(document.activeElement)), "Tab left the share-link dialog");
    }
    await page.keyboard.press("Shift+Tab");
    assert.ok(await dialog.evaluate((el) => el.contains(document.activeElement)), "Shift+Tab left the dialog");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await assertFocusKept("after closing the link");

    await tabTo(flow.getByRole("button", { name: "Revoke link" }));
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    await flow.getByTestId("flow-status").getByText("Not published").waitFor();
    await assertFocusKept("after revoke");

    await tabTo(flow.getByRole("button", { name: "Publish and get link" }));
    await page.keyboard.press("Enter");
    await flow.getByRole("dialog").waitFor();
    shareTokens.push((await flow.getByRole("dialog").getByLabel("Share link").inputValue()).split("#")[1]);
    await page.keyboard.press("Escape");
    await flow.getByTestId("flow-status").getByText("Published", { exact: true }).waitFor();
    await tabTo(flow.getByRole("button", { name: "Unpublish" }));
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    await flow.getByTestId("flow-status").getByText("Not published").waitFor();
    await assertFocusKept("after unpublish");

    await tabTo(flow.getByRole("button", { name: "Delete flow Lifecycle flow" }));
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    await flow.waitFor({ state: "detached" });
    await assertFocusKept("after delete");
    await checkNoShareTokenVisible("after the flow lifecycle");
  });

  test("users see their own id with a copy button, and an owner adds a teammate to a shared key by email (keyboard only)", async () => {
    const teammate = `e2e-mate-${run}@example.com`;
    const signUp = await fetch(`${stackUrl}/auth/v1/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: teammate }),
    });
    const teammateId = (await signUp.json()).user.id;
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: stackUrl });
    const ownId = await page.getByTestId("own-user-id").textContent();
    assert.match(ownId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await tabTo(page.getByRole("button", { name: "Copy your user id" }));
    await page.keyboard.press("Enter");
    await page.getByText("Your user id was copied.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), ownId);

    await openTab("Shared keys");
    const form = page.getByRole("form", { name: "New shared key" });
    await form.waitFor();
    const TEAM_KEY = `sk-e2e-team-${run}-G7h8`;
    KEYS.push(TEAM_KEY);
    for (const [label, text] of [
      ["Account name", `mail-team-${run}`],
      ["Display name", "E2E email team"],
      ["Allowed teammates", teammate],
      ["OpenAI API key to share", TEAM_KEY],
    ]) {
      await tabTo(form.getByLabel(label));
      await page.keyboard.insertText(text);
    }
    await tabTo(form.getByRole("button", { name: "Create shared key" }));
    await page.keyboard.press("Enter");
    const shared = page.getByRole("region", { name: "E2E email team" });
    await shared.getByTestId("allowed-users").getByText(teammate).waitFor();
    assert.ok(!(await page.content()).includes(teammateId), "the teammate's UUID is shown instead of the email");
    await checkNoKeyVisible("after creating a shared key by email");
  });

  test("axe-core finds no serious or critical violation in any view, light and dark, desktop and 375 px", async () => {
    const views = ["Provider keys", "Flows", "Shared keys", "Your usage", "Audit"];
    const failures = [];
    let runs = 0;
    for (const scheme of ["light", "dark"]) {
      for (const width of [1100, 375]) {
        await page.emulateMedia({ colorScheme: scheme, forcedColors: "none" });
        await page.setViewportSize({ width, height: 900 });
        for (const view of views) {
          await openTab(view);
          await page.getByRole("tabpanel").locator('[aria-busy="true"]').waitFor({ state: "detached" }).catch(() => {});
          await page.waitForTimeout(150);
          for (const v of await axeSeriousViolations()) failures.push(`${view}, ${scheme}, ${width} px: ${v}`);
          runs++;
        }
      }
    }
    assert.equal(runs, 20);
    assert.deepEqual(failures, []);
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1100, height: 900 });
    await openTab("Provider keys");
  });
});
