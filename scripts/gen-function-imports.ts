/**
 * Writes `supabase/functions/<name>/deno.json` for every function: the per-function dependency
 * declaration the Supabase CLI finds and uploads as the function's import map (it never reads the
 * repository-root deno.json). The versions come from one list, the root deno.json's `imports`,
 * which the local stack and the tests use; this script only copies the entries the deployed code
 * needs, so a version is changed in one place and the function files follow.
 *
 *   npx deno run -A scripts/gen-function-imports.ts          rewrite the files
 *   npx deno run -A scripts/gen-function-imports.ts --check  exit 1 when one is out of date
 */

const ROOT = new URL("../", import.meta.url);
export const FUNCTIONS_DIR = new URL("supabase/functions/", ROOT);
const ROOT_CONFIG = new URL("deno.json", ROOT);

/** The packages deployed code imports (supabase/functions/**); everything else is local or test. */
export const FUNCTION_PACKAGES = ["eventsource-parser", "jose", "postgres", "zod"] as const;

/** Every deployable function: a folder beside `_shared` with an index.ts. */
export async function functionNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(FUNCTIONS_DIR)) {
    if (!entry.isDirectory || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    try {
      await Deno.stat(new URL(`${entry.name}/index.ts`, FUNCTIONS_DIR));
      names.push(entry.name);
    } catch {
      // not a function folder
    }
  }
  return names.sort();
}

/** The root deno.json's import map: the one list of versions. */
export async function rootImports(): Promise<Record<string, string>> {
  const config = JSON.parse(await Deno.readTextFile(ROOT_CONFIG)) as {
    imports?: Record<string, string>;
  };
  return config.imports ?? {};
}

/** The text of a function's deno.json, generated from the root list. */
export function renderFunctionConfig(imports: Record<string, string>): string {
  const selected: Record<string, string> = {};
  for (const name of FUNCTION_PACKAGES) {
    const specifier = imports[name];
    if (!specifier?.match(/^npm:(@[^/]+\/)?[^@/]+@\d+\.\d+\.\d+$/)) {
      throw new Error(`root deno.json must map ${name} to npm:${name}@<exact version>`);
    }
    selected[name] = specifier;
  }
  return JSON.stringify({ imports: selected }, null, 2) + "\n";
}

export const functionConfigUrl = (name: string) => new URL(`${name}/deno.json`, FUNCTIONS_DIR);

/** The functions whose deno.json differs from what the root list generates. */
export async function staleFunctionConfigs(): Promise<string[]> {
  const expected = renderFunctionConfig(await rootImports());
  const stale: string[] = [];
  for (const name of await functionNames()) {
    const current = await Deno.readTextFile(functionConfigUrl(name)).catch(() => null);
    if (current !== expected) stale.push(name);
  }
  return stale;
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const stale = await staleFunctionConfigs();
    if (stale.length > 0) {
      console.error(`out of date: ${stale.join(", ")}; run scripts/gen-function-imports.ts`);
      Deno.exit(1);
    }
  } else {
    const text = renderFunctionConfig(await rootImports());
    for (const name of await functionNames()) {
      await Deno.writeTextFile(functionConfigUrl(name), text);
    }
  }
}
