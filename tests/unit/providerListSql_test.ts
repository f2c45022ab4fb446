/**
 * The SQL provider lists match `_shared/contract/providers.ts`: every provider check constraint in
 * supabase/migrations (`check (<column> in ('openai', ...))`) names exactly the SERVICES list, so a
 * provider added in TypeScript but not in SQL (or the other way round) fails here.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";

const migrations = resolve(fileURLToPath(new URL("../../supabase/migrations/", import.meta.url)));

Deno.test("every SQL provider check lists exactly providers.ts SERVICES", () => {
  const expected = [...SERVICES].sort();
  let lists = 0;
  for (const file of readdirSync(migrations).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(migrations, file), "utf8");
    for (const m of sql.matchAll(/check\s*\(\s*\w+\s+in\s*\(([^)]*)\)\s*\)/gi)) {
      const names = [...m[1].matchAll(/'([^']*)'/g)].map((n) => n[1]);
      if (!names.includes("openai")) continue;
      lists++;
      assertEquals(names.sort(), expected, `${file}: ${m[0]}`);
    }
  }
  assert(lists > 0, "no provider check constraint found in supabase/migrations");
});
