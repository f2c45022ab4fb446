import { assert, assertEquals } from "../support/assert.ts";
import { ERROR_TABLE } from "../../supabase/functions/_shared/contract/errorCodes.ts";
import { API_DOCS, renderErrorTable, withCurrentTable } from "../../scripts/gen-api-docs.ts";

Deno.test("docs/api.md carries the error-code table generated from errorCodes.ts", async () => {
  const docs = await Deno.readTextFile(API_DOCS);
  assertEquals(
    withCurrentTable(docs) === docs,
    true,
    "docs/api.md is out of date: run `npx deno run -A scripts/gen-api-docs.ts`",
  );
});

Deno.test("the generated error-code table lists every code with its status", () => {
  const table = renderErrorTable();
  for (const [code, spec] of Object.entries(ERROR_TABLE)) {
    assert(table.includes(`| \`${code}\` | ${spec.httpStatus} |`), `${code} is missing`);
  }
});

Deno.test("docs/api.md documents every deployed function", async () => {
  const docs = await Deno.readTextFile(API_DOCS);
  for (
    const name of [
      "credentials-manager",
      "conversation-run",
      "conversation-cancel",
      "conversation-manager",
      "fetch-provider-models",
      "generate-embedding",
      "batch-embeddings",
      "manus-key-validate",
      "openai-proxy",
    ]
  ) {
    assert(
      docs.includes(`## ${name}`) || docs.includes(`## \`${name}\``),
      `${name} is not documented`,
    );
  }
});
