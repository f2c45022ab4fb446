/**
 * integrationSuite (tests/support/suite.ts) in a child `deno test`: its closers run, last opened
 * first, when a case fails and when the setup fails; the cases after a failing one still run; an
 * ignored case is reported as ignored; and the resource sanitizer is on.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";

const FIXTURE = new URL("../support/fixtures/failingSuite.ts", import.meta.url).pathname;

async function runFixture(env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--no-check", FIXTURE],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, text };
}

const closed = (text: string) => text.match(/^closed: .+$/gm) ?? [];

Deno.test("integrationSuite closes everything, last opened first, when a case fails", async () => {
  const { code, text } = await runFixture();
  assert(code !== 0, text);
  assertMatch(text, /a failing case \.\.\. FAILED/);
  assertMatch(text, /ran: a case after the failure/);
  assertMatch(text, /an ignored case \.\.\. ignored/);
  assertMatch(text, /0 passed \(3 steps\) \| 1 failed \(1 step\) \| 0 ignored \(1 step\)/);
  assertEquals(closed(text), ["closed: last opened", "closed: first opened"]);
});

Deno.test("integrationSuite closes what its setup opened when the setup fails", async () => {
  const { code, text } = await runFixture({ FAIL_SETUP: "1" });
  assert(code !== 0, text);
  assertMatch(text, /setup failed/);
  assertEquals(closed(text), ["closed: last opened", "closed: first opened"]);
});

Deno.test("integrationSuite fails a file whose case leaves a resource open", async () => {
  const { code, text } = await runFixture({ LEAK: "1" });
  assert(code !== 0, text);
  assertMatch(text, /Leaks detected:[\s\S]*TCP listener was opened during the test/);
});
