/**
 * The one owner of outbound requests to providers: the runtime's `fetch` is this guard, so every
 * path that calls a provider (proxy, validate, models, embeddings, conversation-run, and any route
 * added later) goes through it.
 *
 * - No redirect is ever followed (`redirect: "manual"`); a 3xx answer is an upstream error.
 * - A URL whose origin is one of the deployment's provider base URLs is the operator's choice and
 *   is trusted as it is.
 * - Any other URL (a user's custom endpoint) has its host resolved (A and AAAA), and every
 *   address must be public after normalising IPv4-in-IPv6 forms (ipRanges.ts), unless the
 *   deployment allows loopback (`ALLOW_PRIVATE_BASE_URLS=loopback`, what `npm start` uses) or
 *   every private address (`=true`, tests). The request then connects to the address that was
 *   checked, not to a second lookup: plain http through a TCP pin (or, where the runtime has no
 *   TCP proxy transport, as Supabase Edge Runtime, the tunnel below as a forward proxy), https
 *   through an in-isolate CONNECT tunnel to that address (TLS stays end to end, verified for the
 *   host name). Where the
 *   runtime cannot pin (no `Deno.listen` or `Deno.createHttpClient`), the checked request goes
 *   out unpinned and a warning is logged once; see docs/security.md.
 * - The key a request carries is scrubbed from everything the provider answers (headers and
 *   body), so a provider that echoes it cannot hand the owner's key to a collaborator or a shared
 *   key to a grantee, nor get it stored in a conversation. A caller relaying a user's own key
 *   back to that user marks the request with CALLERS_OWN_KEY and skips the scrub, which keeps
 *   the proxy's hot path a native byte relay.
 */
import { type AddressKind, classifyAddress } from "./ipRanges.ts";
import { log } from "../core/log.ts";

export type PrivateAddressPolicy = "none" | "loopback" | "all";

/** A request the guard would not send; callers map it like any network failure. */
export class OutboundRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboundRefusedError";
  }
}

export type Resolver = (hostname: string) => Promise<string[]>;

/** Deno.resolveDns for A and AAAA; a name with neither resolves to nothing. */
export const resolveWithDns: Resolver = async (hostname) => {
  const answers = await Promise.allSettled([
    Deno.resolveDns(hostname, "A"),
    Deno.resolveDns(hostname, "AAAA"),
  ]);
  return answers.flatMap((answer) => (answer.status === "fulfilled" ? answer.value : []));
};

function allowed(kind: AddressKind, policy: PrivateAddressPolicy): boolean {
  return kind === "public" || policy === "all" || (policy === "loopback" && kind === "loopback");
}

/**
 * The address to connect to for `url`, after checking every address its host has. Throws
 * `OutboundRefusedError` for a host that does not resolve or has any address the policy refuses.
 */
export async function checkedAddress(
  url: URL,
  policy: PrivateAddressPolicy,
  resolve: Resolver = resolveWithDns,
): Promise<string> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const literal = classifyAddress(host);
  const addresses = literal === null ? await resolve(host).catch(() => []) : [host];
  if (addresses.length === 0) {
    throw new OutboundRefusedError(`${url.hostname} does not resolve`);
  }
  for (const address of addresses) {
    const kind = classifyAddress(address) ?? "private";
    if (!allowed(kind, policy)) {
      throw new OutboundRefusedError(`${url.hostname} has a ${kind} address; refused`);
    }
  }
  return addresses[0];
}

/** Why `raw` may not be a custom endpoint once resolved, or null when it may. */
export async function outboundUrlProblem(
  raw: string,
  policy: PrivateAddressPolicy,
  resolve: Resolver = resolveWithDns,
): Promise<string | null> {
  if (policy === "all") return null;
  try {
    await checkedAddress(new URL(raw), policy, resolve);
    return null;
  } catch (error) {
    if (error instanceof OutboundRefusedError) {
      return "Base URL must resolve to public addresses only.";
    }
    throw error;
  }
}

interface Tunnel {
  listener: Deno.Listener;
  port: number;
  /** ticket -> where the CONNECT for it may go. */
  tickets: Map<string, { authority: string; address: string; port: number }>;
}

let tunnel: Tunnel | null | undefined;

/** Reads a CONNECT request head, checks its ticket and authority, and splices the sockets. */
async function serveTunnel(conn: Deno.Conn, tickets: Tunnel["tickets"]): Promise<void> {
  const buffer = new Uint8Array(8192);
  let length = 0;
  let head = "";
  try {
    while (!head.includes("\r\n\r\n")) {
      if (length === buffer.length) throw new Error("CONNECT head too long");
      const read = await conn.read(buffer.subarray(length));
      if (read === null) throw new Error("closed before the CONNECT head");
      length += read;
      head = new TextDecoder().decode(buffer.subarray(0, length));
    }
    const end = head.indexOf("\r\n\r\n");
    const [requestLine, ...lines] = head.slice(0, end).split("\r\n");
    const connect = requestLine.match(/^CONNECT (\S+) HTTP\/1\.1$/);
    // Plain http comes as a forward-proxy request (`GET http://host:port/path HTTP/1.1`).
    const forward = connect ? null : requestLine.match(/^([A-Z]+) (http:\/\/\S+) HTTP\/1\.1$/);
    const target = forward ? new URL(forward[2]) : null;
    const authority = connect?.[1] ?? (target && `${target.hostname}:${target.port || 80}`);
    const credentials = lines.find((l) => /^proxy-authorization:/i.test(l))
      ?.replace(/^proxy-authorization:\s*basic\s+/i, "");
    const ticket = credentials ? atob(credentials).split(":")[0] : "";
    const pin = tickets.get(ticket);
    if (!authority || !pin || pin.authority !== authority) throw new Error("CONNECT refused");
    const upstream = await Deno.connect({ hostname: pin.address, port: pin.port });
    const encoder = new TextEncoder();
    if (forward && target) {
      // Origin-form, without the proxy's headers; one request per connection, so a reused
      // connection never sends the upstream a second request in proxy form.
      const kept = lines.filter((l) =>
        !/^(proxy-authorization|proxy-connection|connection):/i.test(l)
      );
      const origin = `${forward[1]} ${target.pathname}${target.search} HTTP/1.1`;
      await upstream.write(
        encoder.encode([origin, ...kept, "connection: close", "", ""].join("\r\n")),
      );
    } else {
      await conn.write(encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    }
    const rest = buffer.subarray(end + 4, length);
    if (rest.length > 0) await upstream.write(rest);
    await Promise.allSettled([
      conn.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(conn.writable),
    ]);
  } catch {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

let warnedUnpinned = false;
function warnUnpinnedOnce(): void {
  if (warnedUnpinned) return;
  warnedUnpinned = true;
  log.warn("outbound: this runtime cannot pin connections; checked requests go out unpinned");
}

function openTunnel(): Tunnel | null {
  if (tunnel !== undefined) return tunnel;
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const tickets: Tunnel["tickets"] = new Map();
    tunnel = { listener, port: (listener.addr as Deno.NetAddr).port, tickets };
    (async () => {
      for await (const conn of listener) serveTunnel(conn, tickets);
    })().catch(() => {});
    // The isolate must be free to exit while the tunnel waits for connections.
    (listener as unknown as { unref?: () => void }).unref?.();
  } catch {
    warnUnpinnedOnce();
    tunnel = null;
  }
  return tunnel;
}

const MAX_CLIENTS = 64;
const clients = new Map<string, Deno.HttpClient>();

/** Closes the tunnel and every pinned client (tests, so nothing outlives them). */
export function closeOutboundConnections(): void {
  for (const client of clients.values()) client.close();
  clients.clear();
  tunnel?.listener.close();
  tunnel = undefined;
}

/**
 * A plain-http client connecting straight to `address`, or undefined where the runtime has no
 * TCP proxy transport (Supabase Edge Runtime's Deno, which takes only a proxy URL): such
 * requests are pinned through the tunnel instead.
 */
function tcpPinnedClient(address: string, port: number): Deno.HttpClient | undefined {
  try {
    return Deno.createHttpClient({ proxy: { transport: "tcp", hostname: address, port } });
  } catch {
    return undefined;
  }
}

/** An HTTP client whose connections go to `address` only, cached per host, address and port. */
function pinnedClient(
  url: URL,
  address: string,
  caCerts: string[] | undefined,
): Deno.HttpClient | undefined {
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  const key = `${url.protocol}//${url.hostname}:${port}@${address}${caCerts ? "+ca" : ""}`;
  const cached = clients.get(key);
  if (cached) return cached;
  if (typeof Deno.createHttpClient !== "function") {
    // Some runtimes (older Supabase Edge Runtime builds) have no custom HTTP clients.
    warnUnpinnedOnce();
    return undefined;
  }
  let client: Deno.HttpClient | undefined;
  if (url.protocol === "http:") client = tcpPinnedClient(address, port);
  if (!client) {
    const open = openTunnel();
    if (!open) return undefined;
    const ticket = crypto.randomUUID();
    open.tickets.set(ticket, { authority: `${url.hostname}:${port}`, address, port });
    client = Deno.createHttpClient({
      proxy: {
        url: `http://127.0.0.1:${open.port}`,
        basicAuth: { username: ticket, password: "" },
      },
      ...(caCerts ? { caCerts } : {}),
    });
  }
  if (clients.size >= MAX_CLIENTS) {
    const [oldest, old] = clients.entries().next().value!;
    clients.delete(oldest);
    old.close();
  }
  clients.set(key, client);
  return client;
}

/**
 * Request header that says the key belongs to the caller the answer goes back to. The guard
 * removes it before sending; without it, the answer is scrubbed (the safe default).
 */
export const CALLERS_OWN_KEY = "x-byok-callers-own-key";

/** What an echoed key becomes. */
export const REDACTED = "[REDACTED]";

/** The credential a provider request carries, in any of the providers' styles. */
function outgoingKey(url: URL, headers: Headers): string | null {
  const bearer = headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
  return bearer ?? headers.get("x-api-key") ?? headers.get("x-goog-api-key") ??
    headers.get("api_key") ?? url.searchParams.get("key");
}

/** Where `needle` first occurs in `data` at or after `from`, or -1 (native scan per byte hit). */
function indexOfBytes(data: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = data.length - needle.length;
  for (
    let at = data.indexOf(first, from);
    at !== -1 && at <= last;
    at = data.indexOf(first, at + 1)
  ) {
    let k = 1;
    while (k < needle.length && data[at + k] === needle[k]) k++;
    if (k === needle.length) return at;
  }
  return -1;
}

/** The length of the longest proper prefix of `needle` that ends `data` (from `from` on). */
function partialTail(data: Uint8Array, from: number, needle: Uint8Array): number {
  for (let length = Math.min(needle.length - 1, data.length - from); length > 0; length--) {
    let k = 0;
    while (k < length && data[data.length - length + k] === needle[k]) k++;
    if (k === length) return length;
  }
  return 0;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Replaces every occurrence of `secret` in a byte stream, across chunk boundaries. Only a chunk
 * tail that could be the start of the secret is held back, so an SSE event is never delayed.
 */
export function redactStream(secret: string): TransformStream<Uint8Array, Uint8Array> {
  const needle = new TextEncoder().encode(secret);
  const replacement = new TextEncoder().encode(REDACTED);
  let carry: Uint8Array | null = null;
  return new TransformStream({
    transform(chunk, controller) {
      const data = carry ? concatBytes([carry, chunk]) : chunk;
      carry = null;
      const parts: Uint8Array[] = [];
      let start = 0;
      for (let at = indexOfBytes(data, needle); at >= 0; at = indexOfBytes(data, needle, start)) {
        parts.push(data.subarray(start, at), replacement);
        start = at + needle.length;
      }
      const hold = partialTail(data, start, needle);
      if (parts.length === 0 && hold === 0) {
        controller.enqueue(data);
        return;
      }
      parts.push(data.subarray(start, data.length - hold));
      if (hold > 0) carry = data.slice(data.length - hold);
      const out = concatBytes(parts);
      if (out.length > 0) controller.enqueue(out);
    },
    flush(controller) {
      if (carry) controller.enqueue(carry);
    },
  });
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** `response` with `secret` scrubbed from its headers and body. */
function scrubbed(response: Response, secret: string): Response {
  const headers = new Headers();
  response.headers.forEach((value, name) => {
    headers.append(name, value.includes(secret) ? value.replaceAll(secret, REDACTED) : value);
  });
  const body = NULL_BODY_STATUSES.has(response.status) || !response.body
    ? null
    : response.body.pipeThrough(redactStream(secret));
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/** Keys shorter than this are not scrubbed (they would match ordinary text). */
const MIN_SCRUBBED_KEY = 8;

export interface OutboundOptions {
  policy: PrivateAddressPolicy;
  /** Origins of the deployment's own provider base URLs. */
  trustedOrigins: Iterable<string>;
  /** DNS seam: tests map names to addresses without touching /etc/hosts. */
  resolve?: Resolver;
  /** The fetch underneath (tests may wrap it to observe requests). */
  fetch?: typeof fetch;
  /** Extra trusted roots for pinned https connections (tests' own CA). */
  caCerts?: string[];
}

/** The guarded fetch: the runtime's one way out to a provider. */
export function createOutboundFetch(options: OutboundOptions): typeof fetch {
  const trusted = new Set(options.trustedOrigins);
  const inner = options.fetch ?? fetch;
  const resolve = options.resolve ?? resolveWithDns;
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new OutboundRefusedError(`${url.protocol} is not an upstream protocol`);
    }
    let client: Deno.HttpClient | undefined;
    if (!trusted.has(url.origin) && options.policy !== "all") {
      client = pinnedClient(
        url,
        await checkedAddress(url, options.policy, resolve),
        options.caCerts,
      );
    }
    const headers = new Headers(
      init?.headers ?? (input instanceof Request ? input.headers : undefined),
    );
    const ownKey = headers.has(CALLERS_OWN_KEY);
    headers.delete(CALLERS_OWN_KEY);
    const response = await inner(input, {
      ...init,
      headers,
      redirect: "manual",
      ...(client ? { client } : {}),
    } as RequestInit);
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new OutboundRefusedError(
        `upstream answered ${response.status}, a redirect; redirects are not followed`,
      );
    }
    if (ownKey) return response;
    const key = outgoingKey(url, headers);
    return key && key.length >= MIN_SCRUBBED_KEY ? scrubbed(response, key) : response;
  };
}
