/**
 * Serves the built settings panel (dist/) at the stack's root, when it has been built; text
 * files gzip-compressed for clients that accept it (the panel's JS is about a third of its size).
 */
const DIST = new URL("../dist/", import.meta.url);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  json: "application/json",
};

const COMPRESSIBLE = /^(text\/|application\/json|image\/svg)/;

/** The file's response, gzip-compressed when its type gains from it and the client accepts gzip. */
function encoded(request: Request, body: Uint8Array<ArrayBuffer>, type: string): Response {
  const headers = { "content-type": type, vary: "accept-encoding" };
  const acceptsGzip = /\bgzip\b/.test(request.headers.get("accept-encoding") ?? "");
  if (!acceptsGzip || !COMPRESSIBLE.test(type)) return new Response(body, { headers });
  const gzipped = new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(gzipped, { headers: { ...headers, "content-encoding": "gzip" } });
}

export function panelFiles(): (request: Request) => Promise<Response | null> {
  return async (request) => {
    const path = new URL(request.url).pathname;
    const relative = path === "/" ? "index.html" : path.slice(1);
    if (relative.split("/").some((part) => part === ".." || part.startsWith("."))) return null;
    try {
      const body = await Deno.readFile(new URL(relative, DIST));
      const type = TYPES[relative.split(".").pop() ?? ""] ?? "application/octet-stream";
      return encoded(request, body, type);
    } catch {
      return null;
    }
  };
}
