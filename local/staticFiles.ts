/**
 * Serves the built settings panel (dist/) at the stack's root, when it has been built.
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

export function panelFiles(): (request: Request) => Promise<Response | null> {
  return async (request) => {
    const path = new URL(request.url).pathname;
    const relative = path === "/" ? "index.html" : path.slice(1);
    if (relative.split("/").some((part) => part === ".." || part.startsWith("."))) return null;
    try {
      const body = await Deno.readFile(new URL(relative, DIST));
      const type = TYPES[relative.split(".").pop() ?? ""] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return null;
    }
  };
}
