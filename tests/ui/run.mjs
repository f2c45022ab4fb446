// `npm run test:ui`: the panel's component tests (vitest, jsdom) and its end-to-end tests (node
// --test, headless Chromium), then one plain closing line "N passed, N failed" summing both, which
// scripts/test.sh reads. Exits non-zero when anything failed or a runner reported no counts.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

/** Runs a command with its output shown, and keeps the output for counting. */
function runShown(command, args) {
  return new Promise((resolve) => {
    let output = "";
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (d) => {
      output += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => process.stderr.write(d));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

async function componentTests() {
  const dir = mkdtempSync(join(tmpdir(), "byok-vitest-"));
  const report = join(dir, "report.json");
  try {
    const { code } = await runShown(bin("vitest"), [
      "run",
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${report}`,
    ]);
    const json = JSON.parse(readFileSync(report, "utf8"));
    return { code, passed: json.numPassedTests, failed: json.numFailedTests + (json.numFailedTestSuites ?? 0) };
  } catch {
    return { code: 1, passed: 0, failed: 1 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function browserTests() {
  const files = readdirSync(join(root, "tests", "ui"))
    .filter((name) => name.endsWith(".e2e.mjs"))
    .map((name) => join("tests", "ui", name));
  const { code, output } = await runShown(process.execPath, ["--test", "--test-reporter=spec", ...files]);
  const count = (label) => Number(output.match(new RegExp(`^\\S*\\s*${label} (\\d+)`, "m"))?.[1] ?? NaN);
  const passed = count("pass");
  const failed = count("fail");
  if (Number.isNaN(passed) || Number.isNaN(failed)) return { code: 1, passed: 0, failed: 1 };
  return { code, passed, failed };
}

const results = [await componentTests(), await browserTests()];
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const ok = failed === 0 && results.every((r) => r.code === 0);
console.log(`${passed} passed, ${ok ? failed : Math.max(failed, 1)} failed`);
process.exit(ok ? 0 : 1);
