/**
 * The README and docs/ name files that exist: every relative markdown link, and every repository
 * path they mention (`supabase/...`, `_shared/...`, `tests/...`, ...), resolves to a file or folder
 * in the tree, and a link's `#section` to a heading of its document, so a moved module or a
 * renamed section cannot leave the docs pointing at nothing.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../../", import.meta.url)));

/** Top-level folders of the repository whose paths the docs may mention. */
const REPO_DIRS = ["supabase", "src", "local", "scripts", "bench", "tests", "docs"];
const FILE_EXTENSION = /\.(ts|tsx|mjs|js|sql|md|json|toml|sh|css|html|png|pem)$/;

/** A path as a document mentions it, and the file it must resolve to. */
interface Mention {
  text: string;
  target: string;
  /** The `#section` of a markdown link, when it has one. */
  anchor?: string;
}

function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, "");
}

/** A repository path in `candidate`, resolved from the root, or null when it is not one. */
function repoPath(candidate: string): string | null {
  const path = candidate.replace(/^\.\.\//, "").replace(/[.,;:)]+$/, "");
  if (/[<>*${}\s]/.test(path) || !path.includes("/")) return null;
  if (path.startsWith("_shared/")) return join("supabase/functions", path);
  const [top] = path.split("/");
  if (!REPO_DIRS.includes(top)) return null;
  // Routes (`llm-config/shared-keys`), MIME types and npm names start elsewhere: not repo paths.
  return path;
}

/** Every relative link and every repository path mentioned in `markdown` (a file at `file`). */
export function mentionedPaths(file: string, markdown: string): Mention[] {
  const prose = withoutCodeBlocks(markdown);
  const found: Mention[] = [];
  for (const [, link] of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z]+:/i.test(link)) continue;
    const [path, anchor] = decodeURIComponent(link).split("#");
    const target = path ? relative(root, resolve(root, dirname(file), path)) : file;
    found.push({ text: link, target, ...(anchor ? { anchor } : {}) });
  }
  for (const [, span] of prose.matchAll(/`([^`\n]+)`/g)) {
    const target = repoPath(span.trim());
    if (target) found.push({ text: `\`${span}\``, target });
  }
  const bare = new RegExp(
    String.raw`(?<![\w/.\`(\[-])((?:${REPO_DIRS.join("|")}|_shared)/[\w./-]+)`,
    "g",
  );
  for (const [, word] of prose.replace(/`[^`\n]*`|\]\([^)]*\)/g, "").matchAll(bare)) {
    const target = repoPath(word);
    if (target && FILE_EXTENSION.test(target.replace(/[.,;:)]+$/, ""))) {
      found.push({ text: word, target });
    }
  }
  return found;
}

/** The anchors GitHub gives a document's headings: lower case, punctuation dropped, `-` for spaces. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of withoutCodeBlocks(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(join(root, path));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function documents(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(join(root, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

Deno.test("README.md and docs/*.md mention only paths that exist", async () => {
  const missing: string[] = [];
  let checked = 0;
  for (const file of await documents()) {
    const text = await Deno.readTextFile(join(root, file));
    for (const mention of mentionedPaths(file, text)) {
      checked++;
      if (!(await exists(mention.target))) {
        missing.push(`${file}: ${mention.text} -> ${mention.target}`);
      } else if (mention.anchor && mention.target.endsWith(".md")) {
        const anchors = headingAnchors(await Deno.readTextFile(join(root, mention.target)));
        if (!anchors.has(mention.anchor)) {
          missing.push(`${file}: ${mention.text} (no such section)`);
        }
      }
    }
  }
  assertEquals(missing, []);
  assert(checked > 50, `only ${checked} paths found: the extractor is broken`);
});

Deno.test("mentionedPaths finds links, backticked paths, _shared paths and bare paths", () => {
  const text = [
    "See [the proxy](proxy.md#errors), [a site](https://example.com) and [here](#top).",
    "The table is `_shared/errorCodes.ts`; also `supabase/functions/<name>/deno.json`,",
    "`llm-config/shared-keys`, `text/event-stream` and tests/unit/gone_test.ts.",
    "```ts",
    'import { x } from "../_shared/inside/code.ts"; // `tests/in/code_block.ts`',
    "```",
  ].join("\n");
  assertEquals(mentionedPaths("docs/api.md", text).map((m) => [m.target, m.anchor]), [
    ["docs/proxy.md", "errors"],
    ["docs/api.md", "top"],
    ["supabase/functions/_shared/errorCodes.ts", undefined],
    ["tests/unit/gone_test.ts", undefined],
  ]);
});

Deno.test("headingAnchors names sections the way GitHub links them", () => {
  const anchors = headingAnchors(
    "# Settings → Integrations: the `panel`\n## Errors\n```\n# not a heading\n```\n## Errors\n",
  );
  assertEquals([...anchors], ["settings--integrations-the-panel", "errors", "errors-1"]);
});
