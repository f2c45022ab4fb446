/**
 * The security suite's figures: cases tried per function, 5xx answers, leaks found, mix-ups and
 * credentials lost. Deno runs each test file in its own worker, so the counters live in the test
 * process's environment; `zz_summary_test.ts`, the last file by name, prints them.
 */

export interface FunctionFigures {
  cases: number;
  serverErrors: number;
}

export interface Figures {
  functions: Record<string, FunctionFigures>;
  /** Log lines and response bodies the leak scanner read. */
  scanned: number;
  leaks: number;
  /** Upstream requests checked for the right tenant's key, and how many carried another's. */
  mixUps: { checked: number; wrong: number } | null;
  rotation: { rows: number; lost: number; rowsPerSecond: number; database: string } | null;
  /** Attacks tried per class (ciphertext writes, SSRF forms, ...) and how many got through. */
  attacks: Record<string, { refused: number; through: number }>;
}

/** The attack classes the table always lists, so a class nobody ran shows as 0 of 0. */
export const ATTACK_CLASSES = [
  "ciphertext writes",
  "SSRF forms",
  "traversal",
  "replay",
  "amplification",
  "poisoned usage",
  "NUL and surrogates",
  "echoed keys",
  "sequence writes",
] as const;
export type AttackClass = (typeof ATTACK_CLASSES)[number];

/**
 * Where the figures live between test files: a variable in this test process's environment, which
 * every test file's worker shares and which ends with the process. (A file in the temp directory
 * was left behind by every run that did not reach the summary.)
 */
const VARIABLE = "SUPABASE_BYOK_SECURITY_FIGURES";

const empty = (): Figures => ({
  functions: {},
  scanned: 0,
  leaks: 0,
  mixUps: null,
  rotation: null,
  attacks: {},
});

/** The figures recorded so far by this test process. */
export function readFigures(): Figures {
  try {
    return { ...empty(), ...JSON.parse(Deno.env.get(VARIABLE) ?? "{}") };
  } catch {
    return empty();
  }
}

function update(change: (figures: Figures) => void): void {
  const figures = readFigures();
  change(figures);
  Deno.env.set(VARIABLE, JSON.stringify(figures));
}

/** Adds `cases` requests sent to `fn`, of which `serverErrors` were answered with a 5xx. */
export function recordCases(fn: string, cases: number, serverErrors: number): void {
  update((figures) => {
    const entry = figures.functions[fn] ??= { cases: 0, serverErrors: 0 };
    entry.cases += cases;
    entry.serverErrors += serverErrors;
  });
}

/** Adds what one leak scan read and found. */
export function recordLeakScan(scanned: number, leaks: number): void {
  update((figures) => {
    figures.scanned += scanned;
    figures.leaks += leaks;
  });
}

/** Adds upstream requests checked for tenant isolation and how many carried the wrong key. */
export function recordMixUps(checked: number, wrong: number): void {
  update((figures) => {
    const previous = figures.mixUps ?? { checked: 0, wrong: 0 };
    figures.mixUps = { checked: previous.checked + checked, wrong: previous.wrong + wrong };
  });
}

/** Records a rotation run: rows re-encrypted, rows no longer readable, and speed. */
export function recordRotation(rotation: NonNullable<Figures["rotation"]>): void {
  update((figures) => {
    figures.rotation = rotation;
  });
}

/**
 * Adds attempts of one attack class: `through` of them got past the defence (the test fails on
 * any), the rest were refused.
 */
export function recordAttacks(kind: AttackClass, attempts: number, through = 0): void {
  update((figures) => {
    const entry = figures.attacks[kind] ??= { refused: 0, through: 0 };
    entry.refused += attempts - through;
    entry.through += through;
  });
}

/** Drops the figures (after printing). */
export function clearFigures(): void {
  Deno.env.delete(VARIABLE);
}

const ATTACK_WIDTH = Math.max(...ATTACK_CLASSES.map((kind) => kind.length));
const attackLine = (a: string, b: string, c: string) =>
  `| ${a.padEnd(ATTACK_WIDTH)} | ${b.padStart(8)} | ${c.padStart(8)} |`;

/** The table printed at the end of the security run. */
export function renderFiguresTable(figures: Figures): string {
  const rows: [string, string, string][] = Object.entries(figures.functions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([fn, f]) => [fn, String(f.cases), String(f.serverErrors)]);
  const totalCases = rows.reduce((sum, r) => sum + Number(r[1]), 0);
  const total5xx = rows.reduce((sum, r) => sum + Number(r[2]), 0);
  rows.push(["all functions", String(totalCases), String(total5xx)]);
  const width = Math.max(13, ...rows.map((r) => r[0].length));
  const line = (a: string, b: string, c: string) =>
    `| ${a.padEnd(width)} | ${b.padStart(10)} | ${c.padStart(6)} |`;
  const rotation = figures.rotation
    ? `${figures.rotation.lost} lost of ${figures.rotation.rows} rows rotated on ` +
      `${figures.rotation.database} (${Math.round(figures.rotation.rowsPerSecond)} rows/s)`
    : "n/a (run tests/security/rotation_test.ts)";
  return [
    "",
    "Security figures",
    line("function", "cases", "5xx"),
    `|${"-".repeat(width + 2)}|${"-".repeat(12)}|${"-".repeat(8)}|`,
    ...rows.map((r) => line(...r)),
    "",
    `leaks found:        ${figures.leaks} (in ${figures.scanned} log lines and response bodies)`,
    `mix-ups:            ${
      figures.mixUps
        ? `${figures.mixUps.wrong} (in ${figures.mixUps.checked} upstream requests checked)`
        : "n/a"
    }`,
    `lost credentials:   ${rotation}`,
    "",
    attackLine("attack class", "refused", "through"),
    `|${"-".repeat(ATTACK_WIDTH + 2)}|${"-".repeat(10)}|${"-".repeat(10)}|`,
    ...ATTACK_CLASSES.map((kind) => {
      const entry = figures.attacks[kind] ?? { refused: 0, through: 0 };
      return attackLine(kind, String(entry.refused), String(entry.through));
    }),
    "",
  ].join("\n");
}
