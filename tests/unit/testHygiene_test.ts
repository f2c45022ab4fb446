/**
 * Keeps two patterns out of tests/: a test (or step) whose body only closes or stops resources,
 * which asserts nothing and is skipped teardown when run alone; and a Deno sanitizer turned off
 * without a comment saying why. Teardown belongs in `finally` (tests/support/suite.ts).
 */
import { assertEquals } from "../support/assert.ts";

const TESTS_DIR = new URL("../", import.meta.url);

/** A call that registers a test or a step: Deno.test, t.step, suite.test, dbTest and the like. */
const TEST_CALL = /(?<![\w$.])(?:Deno\.test|\w+\.step|\w+\.test|\w*[a-z]Test)\s*\(/g;
/** One statement that only closes, stops or ends something, with no arguments. */
const CLOSE_STATEMENT =
  /^(?:await\s+)?[\w$.!?]+\.(?:close|stop|shutdown|end|terminate|kill|cancel|dispose|abort)\(\)$/;
const SANITIZER_OFF = /\bsanitize(?:Ops|Resources|Exit)\s*:\s*false\b/;

/** `source` with comments and the insides of strings, templates and regexes blanked out. */
function blankLiterals(source: string): string {
  const out = source.split("");
  const blank = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (out[i] !== "\n") out[i] = " ";
  };
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    let end = i + 1;
    if (c === "/" && next === "/") {
      end = source.indexOf("\n", i);
      if (end < 0) end = source.length;
      blank(i, end);
    } else if (c === "/" && next === "*") {
      end = source.indexOf("*/", i + 2) + 2;
      if (end < 2) end = source.length;
      blank(i, end);
    } else if (c === '"' || c === "'" || c === "`" || (c === "/" && startsRegex(source, i))) {
      end = literalEnd(source, i);
      blank(i + 1, end - 1);
    }
    i = end;
  }
  return out.join("");
}

function startsRegex(source: string, at: number): boolean {
  const before = source.slice(0, at).trimEnd();
  return before === "" || /[(,=:[!&|?{};]$/.test(before) || /\breturn$/.test(before);
}

/** Index just past the string, template or regex literal opening at `at`. */
function literalEnd(source: string, at: number): number {
  const quote = source[at];
  let inClass = false;
  for (let i = at + 1; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") i++;
    else if (quote === "/" && c === "[") inClass = true;
    else if (quote === "/" && c === "]") inClass = false;
    else if (c === quote && !inClass) return i + 1;
    else if (c === "\n" && quote !== "`") return i;
  }
  return source.length;
}

/** Index of the bracket closing the one opened at `open` in blanked text. */
function matching(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if ("([{".includes(text[i])) depth++;
    else if (")]}".includes(text[i]) && --depth === 0) return i;
  }
  return text.length;
}

/** Parts of `body` split at `separator` where it is outside any bracket. */
function topLevelParts(body: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    const c = body[i];
    if (c !== undefined && "([{".includes(c)) depth++;
    else if (c !== undefined && ")]}".includes(c)) depth--;
    else if (i === body.length || (c === separator && depth === 0)) {
      parts.push(body.slice(start, i).replace(/\s+/g, " ").trim());
      start = i + 1;
    }
  }
  return parts.filter((part) => part !== "");
}

/** The body of the first function among a call's arguments, or null when it has none. */
function firstFunctionBody(args: string): string | null {
  const found = /=>\s*|\bfn\s*\([^)]*\)\s*|\bfunction\s*\w*\s*\([^)]*\)\s*/.exec(args);
  if (!found) return null;
  const at = found.index + found[0].length;
  if (args[at] === "{") return args.slice(at + 1, matching(args, at));
  return topLevelParts(args.slice(at), ",")[0] ?? "";
}

/** Names (first line of the call) of tests or steps whose body only closes resources. */
export function teardownOnlyTests(source: string): string[] {
  const text = blankLiterals(source);
  const found: string[] = [];
  for (const call of text.matchAll(TEST_CALL)) {
    if (/\bfunction\s+$/.test(text.slice(0, call.index))) continue;
    const open = call.index + call[0].length - 1;
    const body = firstFunctionBody(text.slice(open + 1, matching(text, open)));
    if (body === null) continue;
    const parts = topLevelParts(body, ";");
    if (parts.every((part) => CLOSE_STATEMENT.test(part))) {
      found.push(source.slice(call.index, source.indexOf("\n", call.index)).trim());
    }
  }
  return found;
}

/** Lines (1-based, with their text) that turn a sanitizer off with no comment on or above. */
export function uncommentedSanitizerOffs(source: string): string[] {
  const lines = source.split("\n");
  // Matched in code only: a sanitizer named inside a string or a comment turns nothing off.
  const code = blankLiterals(source).split("\n");
  const found: string[] = [];
  let previousExplained = false;
  lines.forEach((line, index) => {
    const above = (lines[index - 1] ?? "").trim();
    const turnsOff = SANITIZER_OFF.test(code[index]);
    const explained = /\/\//.test(line) || /^(?:\/\/|\/\*|\*)/.test(above) ||
      (previousExplained && SANITIZER_OFF.test(code[index - 1]));
    if (turnsOff && !explained) found.push(`${index + 1}: ${line.trim()}`);
    previousExplained = turnsOff && explained;
  });
  return found;
}

async function testSources(dir: URL, path = ""): Promise<{ path: string; source: string }[]> {
  const files: { path: string; source: string }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const name = `${path}${entry.name}`;
    if (entry.isDirectory && entry.name !== "ui" && entry.name !== "fixtures") {
      files.push(...await testSources(new URL(`${entry.name}/`, dir), `${name}/`));
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      files.push({ path: name, source: await Deno.readTextFile(new URL(entry.name, dir)) });
    }
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

Deno.test("the hygiene scanner finds teardown-only tests and unexplained sanitizer switches", () => {
  const sample = [
    'dbTest("a closes its database", async () => {',
    "  await db.close();",
    "});",
    'Deno.test({ name: "b teardown", fn: async () => { await stack.close(); await fake.close(); } });',
    'dbTest("c", () => db.close());',
    'Deno.test("d asserts", async () => {',
    "  await db.close();",
    '  assertEquals(lines, [], "no leak");',
    "});",
    'await t.step("e stops the server", async () => { await server.shutdown(); });',
    'suite.test("f checks {braces} in strings", async () => {',
    '  const body = "} await x.close(); {";',
    "  assertEquals(body.length, 22);",
    "});",
    "export function dbTest(name: string) {}",
  ].join("\n");
  assertEquals(teardownOnlyTests(sample), [
    'dbTest("a closes its database", async () => {',
    'Deno.test({ name: "b teardown", fn: async () => { await stack.close(); await fake.close(); } });',
    'dbTest("c", () => db.close());',
    't.step("e stops the server", async () => { await server.shutdown(); });',
  ]);
  const switches = [
    "Deno.test({",
    "  sanitizeOps: false,",
    "  // the CLI child process outlives the test",
    "  sanitizeResources: false,",
    "  sanitizeExit: false,",
    "  sanitizeOps: false, // PGlite's worker",
    "  sanitizeResources: true,",
    "});",
    'const text = "sanitizeOps: false";',
  ].join("\n");
  assertEquals(uncommentedSanitizerOffs(switches), ["2: sanitizeOps: false,"]);
});

Deno.test("no test under tests/ only closes resources, and every sanitizer turned off says why", async () => {
  const teardownOnly: string[] = [];
  const unexplained: string[] = [];
  for (const { path, source } of await testSources(TESTS_DIR)) {
    for (const name of teardownOnlyTests(source)) teardownOnly.push(`${path}: ${name}`);
    for (const line of uncommentedSanitizerOffs(source)) unexplained.push(`${path}:${line}`);
  }
  assertEquals(teardownOnly, [], "teardown-only tests: close resources in `finally` instead");
  assertEquals(unexplained, [], "sanitizers turned off with no comment on or above the line");
});
