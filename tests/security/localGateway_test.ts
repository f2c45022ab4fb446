/**
 * The local stack's front door against a browser or a neighbour on this machine: the panel's
 * static server serves only files inside the built panel (every encoding of `..` tried), the
 * gateway answers only to its own host names (DNS rebinding), and the dev token endpoint, which
 * mints a session for any email, refuses foreign web origins.
 */
import { createGateway } from "../../local/gateway.ts";
import { panelFiles } from "../../local/staticFiles.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { openTestDatabase } from "../support/database.ts";
import { recordAttacks } from "./figures.ts";

const root = await Deno.makeTempDir({ prefix: "byok-gateway-" });
await Deno.mkdir(`${root}/dist/assets`, { recursive: true });
await Deno.mkdir(`${root}/.data`);
await Deno.writeTextFile(`${root}/dist/index.html`, "<!doctype html><title>panel</title>");
await Deno.writeTextFile(`${root}/dist/assets/app.js`, "console.log('panel')");
await Deno.writeTextFile(`${root}/dist/.env`, "PANEL_SECRET=do-not-serve-0001");
await Deno.writeTextFile(`${root}/.data/secrets.json`, '{"jwtSecret":"do-not-serve-0002"}');
await Deno.symlink(`${root}/.data/secrets.json`, `${root}/dist/assets/linked.json`);

const db = await openTestDatabase();
const gateway = createGateway({
  functions: new Map(),
  db,
  jwtSecret: "gateway-test-secret-0000000000",
  publicConfig: {},
  staticFiles: panelFiles(new URL(`file://${root}/dist/`)),
});

const get = (path: string, headers: Record<string, string> = {}) =>
  gateway(new Request(`http://127.0.0.1:54321${path}`, { headers }));

Deno.test("the local gateway serves only the panel, to its own host, and tokens to its own pages", async (t) => {
  try {
    await t.step("the panel's files are served", async () => {
      assertEquals((await get("/")).status, 200);
      const app = await get("/assets/app.js");
      assertEquals([app.status, await app.text()], [200, "console.log('panel')"]);
    });

    await t.step("no path leaves the built panel", async () => {
      const attempts = [
        "/assets%2f..%2f..%2f.data%2fsecrets.json",
        "/assets%2F..%2F..%2F.data%2Fsecrets.json",
        "/%2e%2e/.data/secrets.json",
        "/%2e%2e%2f.data%2fsecrets.json",
        "/assets/%2e%2e/%2e%2e/.data/secrets.json",
        "/..%2f.data%2fsecrets.json",
        "/assets%5c..%5c..%5c.data%5csecrets.json",
        "/%2fetc%2fpasswd",
        "/assets%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/.env",
        "/%2eenv",
        "/assets/linked.json",
        "/assets/app.js%00.html",
        "/%252e%252e%252f.data%252fsecrets.json",
        "/assets%2f%2e%2e%2f%2e%2e%2f.data%2fsecrets.json",
        "/%c0%ae%c0%ae/.data/secrets.json",
      ];
      let through = 0;
      for (const path of attempts) {
        const response = await get(path);
        const body = await response.text();
        if (response.status !== 404 || /do-not-serve|root:/.test(body)) {
          through++;
          console.error(`  ${path} -> ${response.status}`);
        }
      }
      recordAttacks("traversal", attempts.length, through);
      assertEquals(through, 0);
    });

    await t.step("a foreign Host header is refused (DNS rebinding)", async () => {
      const foreign = ["evil.example", "evil.example:54321", "127.0.0.1.evil.example", "[::2]"];
      let through = 0;
      for (const host of foreign) {
        const response = await get("/local-config.json", { host });
        await response.body?.cancel();
        if (response.status !== 403) through++;
      }
      const own = await get("/local-config.json", { host: "localhost:54321" });
      assertEquals(own.status, 200);
      await own.body?.cancel();
      recordAttacks("traversal", foreign.length, through);
      assertEquals(through, 0);
    });

    await t.step("the dev token endpoint answers no foreign origin", async () => {
      const token = (origin?: string, method = "POST") =>
        gateway(
          new Request("http://127.0.0.1:54321/auth/v1/dev/token", {
            method,
            headers: {
              "content-type": "application/json",
              ...(origin ? { origin } : {}),
              ...(method === "OPTIONS" ? { "access-control-request-method": "POST" } : {}),
            },
            body: method === "POST" ? JSON.stringify({ email: "victim@example.com" }) : undefined,
          }),
        );
      let through = 0;
      for (const method of ["POST", "OPTIONS"]) {
        const refused = await token("https://evil.example", method);
        const body = await refused.text();
        if (
          refused.status !== 403 || refused.headers.get("access-control-allow-origin") !== null ||
          body.includes("access_token")
        ) through++;
      }
      recordAttacks("traversal", 2, through);
      assertEquals(through, 0);
      // The panel's dev server on this machine, and curl (no Origin), still get a token.
      const panel = await token("http://localhost:5173");
      assertEquals(panel.status, 200);
      assertEquals(panel.headers.get("access-control-allow-origin"), "http://localhost:5173");
      assert((await panel.json()).access_token);
      const curl = await token();
      assertEquals(curl.status, 200);
      await curl.body?.cancel();
    });
  } finally {
    await db.close();
    await Deno.remove(root, { recursive: true });
  }
});
