/**
 * A real HTTP fake of an upstream provider on 127.0.0.1. It records every request it receives
 * (method, path, headers, body) and answers like the OpenAI API for the keys it knows.
 * Routes can be overridden per test with `route`.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
}

export type FakeRoute = (request: Request, recorded: RecordedRequest) => Response | Promise<Response>;

export interface FakeUpstream {
  url: string;
  /** Base URL to use as a provider base, e.g. `${url}/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Keys the fake accepts; any other key gets a 401 in the OpenAI error format. */
  validKeys: Set<string>;
  /** Override a "METHOD /path" route; return the fake to chain. */
  route(key: string, handler: FakeRoute): FakeUpstream;
  /** The key a request carried, in whichever header style it used. */
  keyOf(request: RecordedRequest): string | null;
  close(): Promise<void>;
}

const openAIError = (status: number, message: string, type: string) =>
  Response.json({ error: { message, type, param: null, code: null } }, {
    status,
    headers: { "x-request-id": `req_fake_${status}` },
  });

function keyFrom(headers: Record<string, string>): string | null {
  const bearer = headers["authorization"]?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer ?? headers["x-api-key"] ?? headers["api_key"] ?? null;
}

export function startFakeUpstream(): FakeUpstream {
  const requests: RecordedRequest[] = [];
  const validKeys = new Set<string>();
  const routes = new Map<string, FakeRoute>();

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const recorded: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      search: url.search,
      headers: Object.fromEntries(request.headers),
      body: request.body ? await request.text() : "",
      receivedAt: performance.now(),
    };
    requests.push(recorded);
    const custom = routes.get(`${request.method} ${url.pathname}`);
    if (custom) return await custom(request, recorded);

    const key = keyFrom(recorded.headers);
    if (!key || !validKeys.has(key)) {
      return openAIError(401, "Incorrect API key provided.", "invalid_request_error");
    }
    if (url.pathname.endsWith("/models") || url.pathname.endsWith("/key") || url.pathname.endsWith("/tasks")) {
      return Response.json({ object: "list", data: [{ id: "fake-model", object: "model", owned_by: "fake" }] });
    }
    return openAIError(404, `No route ${request.method} ${url.pathname}`, "invalid_request_error");
  });

  const url = `http://127.0.0.1:${server.addr.port}`;
  const fake: FakeUpstream = {
    url,
    baseUrl: `${url}/v1`,
    requests,
    validKeys,
    route(key, handler) {
      routes.set(key, handler);
      return fake;
    },
    keyOf: (request) => keyFrom(request.headers),
    close: () => server.shutdown(),
  };
  return fake;
}
