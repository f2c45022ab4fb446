import { assertEquals } from "../support/assert.ts";
import {
  FUNCTION_PACKAGES,
  FUNCTIONS_DIR,
  rootImports,
  staleFunctionConfigs,
} from "../../scripts/gen-function-imports.ts";

Deno.test("every function's deno.json is what scripts/gen-function-imports.ts generates", async () => {
  assertEquals(
    await staleFunctionConfigs(),
    [],
    "out of date: run `npx deno run -A scripts/gen-function-imports.ts`",
  );
});

async function* sourceFiles(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) yield* sourceFiles(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts")) yield new URL(entry.name, dir);
  }
}

Deno.test("deployed code imports only the packages the function deno.json files declare", async () => {
  const bare = new Set<string>();
  for await (const file of sourceFiles(FUNCTIONS_DIR)) {
    const text = await Deno.readTextFile(file);
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*"([^".\/][^"]*)"/g)) {
      bare.add(match[1]);
    }
  }
  assertEquals([...bare].sort(), [...FUNCTION_PACKAGES].sort());
});

Deno.test("package.json and the root deno.json pin the same versions", async () => {
  const pkg = JSON.parse(await Deno.readTextFile(new URL("../../package.json", import.meta.url)));
  const pinned = { ...pkg.dependencies, ...pkg.devDependencies } as Record<string, string>;
  const mismatched: string[] = [];
  for (const specifier of Object.values(await rootImports())) {
    const match = specifier.match(/^npm:((?:@[^/]+\/)?[^@/]+)@([^/]+)/);
    if (!match) continue;
    const [, name, version] = match;
    if (pinned[name] !== undefined && pinned[name] !== version) {
      mismatched.push(`${name}: deno.json ${version}, package.json ${pinned[name]}`);
    }
  }
  assertEquals(mismatched, []);
});
