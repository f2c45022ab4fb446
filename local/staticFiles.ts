/**
 * Serves the built settings panel (dist/) at the stack's root, when it has been built; text
 * files gzip-compressed for clients that accept it (the panel's JS is about a third of its size).
 * The path is decoded first, then resolved, and the file must lie inside dist/ once symlinks are
 * followed: no `..`, encoded or not, no dotfile, no NUL reaches the file system.
 */
import { resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

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

/** The file a request path names inside `root`, or null when it names anything else. */
export async function fileInside(root: string, pathname: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const parts = decoded.split("/").filter((part) => part !== "");
  if (parts.some((part) => part.startsWith("."))) return null;
  const wanted = resolve(root, parts.length === 0 ? "index.html" : parts.join(sep));
  try {
    const real = await Deno.realPath(wanted);
    const realRoot = await Deno.realPath(root);
    return real.startsWith(realRoot + sep) && (await Deno.stat(real)).isFile ? real : null;
  } catch {
    return null;
  }
}

export function panelFiles(dist: URL = DIST): (request: Request) => Promise<Response | null> {
  const root = fileURLToPath(dist);
  return async (request) => {
    const file = await fileInside(root, new URL(request.url).pathname);
    if (!file) return null;
    const type = TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream";
    return encoded(request, await Deno.readFile(file), type);
  };
}
