/**
 * SSRF with private base URLs off: a custom endpoint whose name resolves to this machine, every
 * literal form of a private address, and a provider's redirect to a loopback port. Names are
 * mapped to addresses through the runtime's resolver seam (no /etc/hosts edits). Every path that
 * calls a provider is tried; a raw TCP listener on the private address counts the connections
 * that got through (none may).
 */
import { createHandler as createCredentials } from "../../supabase/functions/credentials-manager/handler.ts";
import { createHandler as createModels } from "../../supabase/functions/fetch-provider-models/handler.ts";
import { createHandler as createEmbedding } from "../../supabase/functions/generate-embedding/handler.ts";
import { createHandler as createBatch } from "../../supabase/functions/batch-embeddings/handler.ts";
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createLlmProxy } from "../../supabase/functions/llm-proxy/handler.ts";
import { createHandler as createOpenAiProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { classifyAddress } from "../../supabase/functions/_shared/upstream/ipRanges.ts";
import {
  closeOutboundConnections,
  createOutboundFetch,
  resolveWithDns,
} from "../../supabase/functions/_shared/upstream/outbound.ts";
import { createRuntime } from "../../supabase/functions/_shared/core/runtime.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { jsonRequest, newUser, testConfig } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

/** Counts TCP connections on 127.0.0.1 and closes each at once. */
function connectionCounter() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const counter = { port: (listener.addr as Deno.NetAddr).port, connections: 0, close: () => {} };
  const loop = (async () => {
    for await (const conn of listener) {
      counter.connections++;
      conn.close();
    }
  })().catch(() => {});
  counter.close = () => {
    listener.close();
    void loop;
  };
  return counter;
}

/** What the attacker's DNS answers: names on this machine and one name with a mixed answer. */
const DNS: Record<string, string[]> = {
  "vm.attacker.example": ["127.0.0.1"],
  "internal.attacker.example": ["10.0.0.5"],
  "rebind.attacker.example": ["93.184.216.34", "127.0.0.1"],
  "metadata.attacker.example": ["169.254.169.254"],
  "mapped.attacker.example": ["::ffff:127.0.0.1"],
};
const resolve = (name: string) => Promise.resolve(DNS[name] ?? []);

const db = await openTestDatabase();
const internal = connectionCounter();
const redirected = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
  internalHits++;
  return new Response("internal secret");
});
let internalHits = 0;
const redirecting = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () =>
    new Response(null, {
      status: 302,
      headers: { location: `http://127.0.0.1:${redirected.addr.port}/secret` },
    }),
);
const config = testConfig({
  ALLOW_PRIVATE_BASE_URLS: "false",
  OPENAI_BASE_URL: `http://127.0.0.1:${redirecting.addr.port}/v1`,
});
const rt = createRuntime({ config, db, resolve });
const user = await newUser(db);
const dbUser = { id: user.id, claims: { sub: user.id, role: "authenticated" } };
await storeCredential(db, dbUser, config, "openai", "api_key", "sk-ssrf-openai-000001");
await storeCredential(db, dbUser, config, "custom", "api_key", "sk-ssrf-custom-000001");

const port = internal.port;
const FORMS = [
  `https://vm.attacker.example:${port}/v1`,
  `https://internal.attacker.example:${port}/v1`,
  `https://rebind.attacker.example:${port}/v1`,
  `https://metadata.attacker.example:${port}/v1`,
  `https://mapped.attacker.example:${port}/v1`,
  `https://unresolvable.attacker.example:${port}/v1`,
  `https://127.0.0.1:${port}/v1`,
  `https://127.1:${port}/v1`,
  `https://2130706433:${port}/v1`,
  `https://0x7f.0.0.1:${port}/v1`,
  `https://0.0.0.0:${port}/v1`,
  `https://10.1.2.3:${port}/v1`,
  `https://100.64.0.1:${port}/v1`,
  `https://169.254.169.254:${port}/v1`,
  `https://172.16.0.1:${port}/v1`,
  `https://192.0.0.8:${port}/v1`,
  `https://192.168.1.1:${port}/v1`,
  `https://198.18.0.1:${port}/v1`,
  `https://224.0.0.1:${port}/v1`,
  `https://[::1]:${port}/v1`,
  `https://[::]:${port}/v1`,
  `https://[::ffff:127.0.0.1]:${port}/v1`,
  `https://[::ffff:0:127.0.0.1]:${port}/v1`,
  `https://[::127.0.0.1]:${port}/v1`,
  `https://[64:ff9b::127.0.0.1]:${port}/v1`,
  `https://[64:ff9b:1::a00:1]:${port}/v1`,
  `https://[2002:7f00:1::1]:${port}/v1`,
  `https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:${port}/v1`,
  `https://[fc00::1]:${port}/v1`,
  `https://[fe80::1]:${port}/v1`,
  `https://[ff02::1]:${port}/v1`,
  `https://localhost:${port}/v1`,
];

const credentials = createCredentials(rt);
const call = async (handler: (r: Request) => Promise<Response>, url: string, body: unknown) => {
  const response = await handler(jsonRequest(url, body, user.authorization));
  return { status: response.status, text: await response.text() };
};

Deno.test(`outbound requests reach only public addresses (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step("every private form is refused as a custom base URL when saved", async () => {
      let through = 0;
      for (const form of FORMS) {
        const saved = await call(credentials, "http://local/credentials-manager", {
          action: "set",
          service: "custom",
          key: "base_url",
          value: form,
        });
        if (saved.status !== 400) {
          through++;
          console.error(`  saved: ${form} -> ${saved.status}`);
        }
      }
      recordAttacks("SSRF forms", FORMS.length, through);
      assertEquals(through, 0);
    });

    await t.step(
      "a stored private base URL is refused on every path that calls a provider",
      async () => {
        const paths: [string, (r: Request) => Promise<Response>, string, unknown][] = [
          ["llm-proxy", createLlmProxy(rt), "http://local/llm-proxy/custom/v1/chat/completions", {
            model: "m",
            messages: [{ role: "user", content: "hi" }],
          }],
          ["validate", credentials, "http://local/credentials-manager", {
            action: "validate",
            service: "custom",
          }],
          ["models", createModels(rt), "http://local/fetch-provider-models", {
            provider: "custom",
          }],
          ["embedding", createEmbedding(rt), "http://local/generate-embedding", {
            input: "x",
            provider: "custom",
          }],
          ["batch", createBatch(rt), "http://local/batch-embeddings", {
            inputs: ["x", "y"],
            provider: "custom",
          }],
          ["conversation-run", createRun(rt), "http://local/conversation-run", {
            messages: [{ role: "user", content: "hi" }],
            model: "m",
            provider: "custom",
          }],
        ];
        let attempts = 0;
        for (const form of FORMS.slice(0, 8)) {
          // Stored as if the name had resolved to a public address when it was saved.
          await storeCredential(db, dbUser, config, "custom", "base_url", form);
          rt.vault.forget(user.id, "custom");
          for (const [name, handler, url, body] of paths) {
            const answer = await call(handler, url, body);
            attempts++;
            assert(!answer.text.includes("sk-ssrf-custom"), `${name} echoed the key`);
          }
        }
        recordAttacks("SSRF forms", attempts, internal.connections);
        assertEquals(internal.connections, 0);
      },
    );

    // The review's case: the machine's own name (`vm` in /etc/hosts) through the real resolver.
    const hostname = Deno.hostname();
    const own = await resolveWithDns(hostname);
    await t.step({
      name: `a name this machine resolves to itself (${hostname}) is refused through real DNS`,
      ignore: !own.some((address) => classifyAddress(address) === "loopback"),
      fn: async () => {
        const osRuntime = createRuntime({ config, db });
        const before = internal.connections;
        await storeCredential(
          db,
          dbUser,
          config,
          "custom",
          "base_url",
          `https://${hostname}:${port}/v1`,
        );
        osRuntime.vault.forget(user.id, "custom");
        const answer = await call(
          createLlmProxy(osRuntime),
          "http://local/llm-proxy/custom/v1/chat/completions",
          { model: "m", messages: [{ role: "user", content: "hi" }] },
        );
        assertEquals(answer.status, 502);
        const saved = await call(createCredentials(osRuntime), "http://local/credentials-manager", {
          action: "set",
          service: "custom",
          key: "base_url",
          value: `https://${hostname}:${port}/v1`,
        });
        assertEquals(saved.status, 400);
        recordAttacks("SSRF forms", 2, internal.connections - before);
        assertEquals(internal.connections, before);
      },
    });

    await t.step("a provider's redirect to a loopback port is not followed", async () => {
      const answer = await call(
        createOpenAiProxy(rt),
        "http://local/openai-proxy/v1/chat/completions",
        { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
      );
      // A refused redirect is an upstream failure, mapped like any network failure.
      assertEquals(answer.status, 502);
      assert(
        /^OPENAI_(UNREACHABLE|API_ERROR)$/.test(JSON.parse(answer.text).error.code),
        answer.text,
      );
      assert(!answer.text.includes("internal secret"));
      const models = await call(createModels(rt), "http://local/fetch-provider-models", {
        provider: "openai",
      });
      assert(!models.text.includes("internal secret"));
      recordAttacks("SSRF forms", 2, internalHits);
      assertEquals(internalHits, 0);
    });

    await t.step("a checked request connects to the address that was checked", async () => {
      // `pinned.test` has no DNS record anywhere; only the resolver seam knows it. The request
      // reaching the server proves the connection went to the checked address, not a new lookup.
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (request) => new Response(`host ${request.headers.get("host")}`),
      );
      try {
        const guarded = createOutboundFetch({
          policy: "loopback",
          trustedOrigins: [],
          resolve: (name) => Promise.resolve(name === "pinned.test" ? ["127.0.0.1"] : []),
        });
        const response = await guarded(`http://pinned.test:${server.addr.port}/v1/models`);
        assertEquals(await response.text(), `host pinned.test:${server.addr.port}`);
        // Loopback only: the same guard refuses a private LAN address.
        const lan = await guarded(`http://10.0.0.1:${server.addr.port}/`).catch((e) => e.name);
        assertEquals(lan, "OutboundRefusedError");
      } finally {
        await server.shutdown();
      }
    });
    await t.step(
      "an http request is pinned through the tunnel where the runtime has no TCP proxy transport",
      async () => {
        // Supabase Edge Runtime's deno_fetch takes only `proxy: { url, basicAuth }`; a
        // `transport` proxy fails to deserialize there ("missing field `url`").
        const original = Deno.createHttpClient;
        const edgeLike = ((options: Deno.CreateHttpClientOptions) => {
          if (options.proxy && "transport" in options.proxy) {
            throw new TypeError("missing field `url`");
          }
          return original(options);
        }) as typeof Deno.createHttpClient;
        const seen: string[] = [];
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          async (request) => {
            seen.push(
              `${request.method} ${new URL(request.url).pathname}${new URL(request.url).search}`,
            );
            return new Response(`host ${request.headers.get("host")} ${await request.text()}`);
          },
        );
        closeOutboundConnections();
        Deno.createHttpClient = edgeLike;
        try {
          const guarded = createOutboundFetch({
            policy: "loopback",
            trustedOrigins: [],
            resolve: (name) => Promise.resolve(name === "pinned.test" ? ["127.0.0.1"] : []),
          });
          const url = `http://pinned.test:${server.addr.port}/v1/chat?x=1`;
          for (const body of ["first", "second"]) {
            const response = await guarded(url, { method: "POST", body });
            assertEquals(await response.text(), `host pinned.test:${server.addr.port} ${body}`);
          }
          assertEquals(seen, ["POST /v1/chat?x=1", "POST /v1/chat?x=1"]);
        } finally {
          Deno.createHttpClient = original;
          closeOutboundConnections();
          await server.shutdown();
        }
      },
    );
    await t.step(
      "an https request is pinned to the checked address through the tunnel",
      async () => {
        const fixtures = new URL("../support/fixtures/", import.meta.url);
        const read = (name: string) => Deno.readTextFile(new URL(name, fixtures));
        const server = Deno.serve(
          {
            hostname: "127.0.0.1",
            port: 0,
            cert: await read("pinned-test-cert.pem"),
            key: await read("pinned-test-key.pem"),
            onListen() {},
          },
          (request) => new Response(`tls host ${new URL(request.url).host}`),
        );
        try {
          const guarded = createOutboundFetch({
            policy: "loopback",
            trustedOrigins: [],
            resolve: (name) => Promise.resolve(name === "pinned.test" ? ["127.0.0.1"] : []),
            caCerts: [await read("pinned-test-ca.pem")],
          });
          const response = await guarded(`https://pinned.test:${server.addr.port}/v1/models`);
          assertEquals(await response.text(), `tls host pinned.test:${server.addr.port}`);
        } finally {
          closeOutboundConnections();
          await server.shutdown();
        }
      },
    );
  } finally {
    internal.close();
    await redirected.shutdown();
    await redirecting.shutdown();
    await db.close();
  }
});
