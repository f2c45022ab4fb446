// End-to-end: the built settings panel in real headless Debian Chromium (playwright-core), against
// the real local stack (Deno child process, embedded PGlite in a temp dir, or SUPABASE_DB_URL from
// DATABASE_URL) whose OpenAI upstream is a fake HTTP server started here.
// Run: node --test tests/ui/panel.e2e.mjs   (UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/)
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
const DOC_SHOTS = new Set(["connected", "invalid-key", "mobile-dark"]);
const docShotsDir = process.env.UPDATE_SCREENSHOTS === "1" ? join(root, "docs", "screenshots") : null;

// Every key this run types into the page; none may ever show up anywhere but a request body.
const run = randomBytes(4).toString("hex");
const GOOD_KEY = `sk-e2e-good-${run}-A1b2`;
const REJECTED_KEY = `sk-e2e-rejected-${run}-Z9y8`;
const BADLY_FORMATTED_KEY = `pk-wrong-format-${run}`;
const KEYS = [GOOD_KEY, REJECTED_KEY, BADLY_FORMATTED_KEY];
const EMAIL = `e2e-${run}@example.com`;

/** GET /v1/models: 200 for GOOD_KEY, 401 (OpenAI's error shape) for anything else. */
function startFakeOpenAI() {
  const seen = [];
  const server = createServer((request, response) => {
    seen.push({ method: request.method, url: request.url });
    const ok = request.method === "GET" && request.url === "/v1/models" &&
      request.headers.authorization === `Bearer ${GOOD_KEY}`;
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
  await page.getByText("providers connected.").waitFor();
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
  const env = { ...process.env, PORT: String(port), DATA_DIR: dataDir, OPENAI_BASE_URL: `${fake.url}/v1` };
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
    assert.equal(await openai.getByTestId("status").textContent(), "Not connected");
    await shot("signed-in");
    await checkNoKeyVisible("after sign-in");

    const input = openai.getByLabel("OpenAI API key");
    await input.fill(GOOD_KEY);
    assert.equal(await input.getAttribute("type"), "password");
    await checkNoKeyVisible("while typing (masked)");
    await openai.getByRole("button", { name: "Save" }).click();
    await openai.getByTestId("status").getByText("Connected", { exact: true }).waitFor();
    assert.equal(await openai.getByTestId("last-four").textContent(), GOOD_KEY.slice(-4));
    assert.equal(await openai.getByLabel("Replace OpenAI API key").inputValue(), "");
    await page.getByText(`OpenAI key ending in ${GOOD_KEY.slice(-4)} saved.`).waitFor();

    await openai.getByRole("button", { name: "Test key" }).click();
    await page.getByText("OpenAI accepted your key.").waitFor();
    assert.match(await openai.getByTestId("validation").textContent(), /valid/);
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
    const alert = openai.getByRole("alert");
    assert.equal(await alert.textContent(), 'OpenAI keys start with "sk-".');
    assert.equal(await input.getAttribute("aria-invalid"), "true");
    await page.waitForTimeout(300);
    assert.equal(credentialCalls.length, before, "a request went to credentials-manager");
    await checkNoKeyVisible("after a badly formatted key");
    await input.fill("");
  });

  test("panel does show the invalid-key message when the provider rejects the key", async () => {
    const openai = card("OpenAI");
    await openai.getByLabel("Replace OpenAI API key").fill(REJECTED_KEY);
    await openai.getByRole("button", { name: "Save" }).click();
    await page.getByText(`OpenAI key ending in ${REJECTED_KEY.slice(-4)} saved.`).waitFor();
    await openai.getByRole("button", { name: "Test key" }).click();
    await page.getByText("OpenAI rejected this key. Check it, or create a new one and save it here.").waitFor();
    assert.match(await openai.getByTestId("validation").textContent(), /rejected/);
    await shot("invalid-key");
    await checkNoKeyVisible("after a rejected key");
    assert.ok(
      fake.seen.some((r) => r.url === "/v1/models"),
      "the stack did not ask the fake upstream",
    );
  });

  test("panel does remove the key after confirmation and show Not connected", async () => {
    const openai = card("OpenAI");
    await openai.getByRole("button", { name: "Remove" }).click();
    const confirm = openai.getByRole("group", { name: "Confirm removing the OpenAI key" });
    await confirm.getByRole("button", { name: "Yes, remove" }).waitFor();
    // The confirmation has focus, so Enter confirms (keyboard only).
    await page.keyboard.press("Enter");
    await openai.getByTestId("status").getByText("Not connected").waitFor();
    await page.getByText("OpenAI key removed.").waitFor();
    await page.reload();
    await card("OpenAI").getByTestId("status").getByText("Not connected").waitFor();
    await checkNoKeyVisible("after remove");
  });

  test("panel does fit 375 px in a dark theme with visible focus", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 375, height: 800 });
    await page.reload();
    await page.getByText("providers connected.").waitFor();
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
