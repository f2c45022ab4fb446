/**
 * Resolves one function exactly as the CLI uploaded it, the way the server-side bundler sees it:
 * a temp directory holding only the uploaded files, the uploaded import map as the only config
 * (none when the upload named none), no node_modules and no package.json. npm packages come from
 * the registry through Deno's cache. Returns every resolution error in the module graph.
 */
import type { FunctionUpload } from "./managementApi.ts";

const DENO = Deno.execPath();

function collectErrors(node: unknown, into: string[]): void {
  if (Array.isArray(node)) return node.forEach((item) => collectErrors(item, into));
  if (!node || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "error" && typeof value === "string") into.push(value);
    else collectErrors(value, into);
  }
}

export interface Resolution {
  errors: string[];
  /** Local modules in the graph, relative to the upload root. */
  localModules: string[];
  /** `npm:` packages the graph resolved. */
  npmPackages: string[];
}

export async function resolveAsUploaded(upload: FunctionUpload): Promise<Resolution> {
  const dir = await Deno.makeTempDir({ prefix: `byok-upload-${upload.slug}-` });
  try {
    for (const [path, content] of upload.files) {
      if (path.startsWith("/") || path.split("/").includes("..")) {
        return {
          errors: [`upload path escapes the bundle: ${path}`],
          localModules: [],
          npmPackages: [],
        };
      }
      await Deno.mkdir(`${dir}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/${path}`, content);
    }
    const importMap = upload.metadata.import_map_path;
    const args = ["info", "--json", ...(importMap ? ["--config", importMap] : ["--no-config"])];
    const result = await new Deno.Command(DENO, {
      args: [...args, upload.metadata.entrypoint_path],
      cwd: dir,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (result.code !== 0) {
      return {
        errors: [new TextDecoder().decode(result.stderr).trim()],
        localModules: [],
        npmPackages: [],
      };
    }
    const graph = JSON.parse(new TextDecoder().decode(result.stdout)) as {
      modules: { specifier: string }[];
      npmPackages?: Record<string, unknown>;
    };
    const errors: string[] = [];
    collectErrors(graph.modules, errors);
    const root = new URL(`file://${await Deno.realPath(dir)}/`).href;
    return {
      errors,
      localModules: graph.modules.map((m) => m.specifier).filter((s) => s.startsWith(root))
        .map((s) => s.slice(root.length)).sort(),
      npmPackages: Object.keys(graph.npmPackages ?? {}).sort(),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface ServedFunction {
  url: string;
  /** Everything the process wrote so far. */
  output(): string;
  close(): Promise<void>;
}

/**
 * Runs one uploaded function the way the platform starts it: only the uploaded files, the
 * uploaded import map as the config, its `index.ts` calling `Deno.serve`, and `env` as the
 * function's secrets. Resolves once it listens.
 */
export async function serveAsUploaded(
  upload: FunctionUpload,
  env: Record<string, string>,
): Promise<ServedFunction> {
  const dir = await Deno.makeTempDir({ prefix: `byok-serve-${upload.slug}-` });
  for (const [path, content] of upload.files) {
    await Deno.mkdir(`${dir}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, content);
  }
  const importMap = upload.metadata.import_map_path;
  const child = new Deno.Command(DENO, {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      ...(importMap ? ["--config", importMap] : ["--no-config"]),
      upload.metadata.entrypoint_path,
    ],
    cwd: dir,
    clearEnv: true,
    env: {
      ...env,
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? dir,
      DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let resolveUrl: (url: string) => void;
  const listening = new Promise<string>((resolve) => (resolveUrl = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const match = text.match(/Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      if (match) resolveUrl(match[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
    await pumps;
    await Deno.remove(dir, { recursive: true });
  };
  const exited = child.status.then((status) => `exited with ${status.code}`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const first = await Promise.race([
    listening,
    exited,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("did not listen in 60 s"), 60_000);
    }),
  ]);
  clearTimeout(timer);
  if (!first.startsWith("http://")) {
    await close();
    throw new Error(`${upload.slug} ${first}: ${text}`);
  }
  return { url: first, output: () => text, close };
}
