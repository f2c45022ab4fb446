/**
 * The folder layers hold: the settings panel (`src/`) imports only the wire contract, and only
 * `core/config.ts` reads the environment in deployed code, and handlers leave SQL to the stores and
 * bodies to the bounded reader. See docs/architecture.md.
 */
import { assertEquals } from "../support/assert.ts";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../../", import.meta.url)));
const shared = join(root, "supabase/functions/_shared");

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (/\.(ts|tsx)$/.test(entry.name)) yield path;
  }
}

/** Every relative import of a file, resolved to a path from the repository root. */
function relativeImports(file: string, text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.\.?\/[^"']+)["']/g)) {
    found.push(relative(root, resolve(dirname(file), match[1])));
  }
  return found;
}

Deno.test("the panel imports nothing from the functions but _shared/contract/", async () => {
  const outside: string[] = [];
  for await (const file of sourceFiles(join(root, "src"))) {
    for (const target of relativeImports(file, await Deno.readTextFile(file))) {
      if (
        target.startsWith("supabase/") && !target.startsWith("supabase/functions/_shared/contract/")
      ) {
        outside.push(`${relative(root, file)} -> ${target}`);
      }
    }
  }
  assertEquals(outside, []);
});

Deno.test("the contract imports nothing outside itself", async () => {
  const outside: string[] = [];
  for await (const file of sourceFiles(join(shared, "contract"))) {
    for (const target of relativeImports(file, await Deno.readTextFile(file))) {
      if (!target.startsWith("supabase/functions/_shared/contract/")) {
        outside.push(`${relative(root, file)} -> ${target}`);
      }
    }
    if (/from\s+"[^.]/.test(await Deno.readTextFile(file))) {
      outside.push(`${relative(root, file)} imports a package`);
    }
  }
  assertEquals(outside, []);
});

Deno.test("only core/config.ts reads Deno.env in deployed code", async () => {
  const readers: string[] = [];
  for await (const file of sourceFiles(join(root, "supabase/functions"))) {
    const code = (await Deno.readTextFile(file)).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    if (/Deno\s*\.\s*env\b/.test(code)) readers.push(relative(root, file));
  }
  assertEquals(readers, ["supabase/functions/_shared/core/config.ts"]);
});

Deno.test("no handler runs SQL or reads a request body itself", async () => {
  const found: string[] = [];
  for await (const entry of Deno.readDir(join(root, "supabase/functions"))) {
    if (!entry.isDirectory || entry.name === "_shared") continue;
    const file = join(root, "supabase/functions", entry.name, "handler.ts");
    const code = (await Deno.readTextFile(file)).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    // SQL belongs in a store; a body is read by the pipeline's bounded reader only.
    if (/\.query\s*[<(]/.test(code)) found.push(`${entry.name}: runs SQL`);
    if (
      /\.(json|text|bytes|arrayBuffer|formData|blob)\s*\(\s*\)|\.body\s*\.\s*getReader/.test(code)
    ) {
      found.push(`${entry.name}: reads a body`);
    }
  }
  assertEquals(found, []);
});
