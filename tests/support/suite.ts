/**
 * One integration test file is one Deno.test. Its setup opens the file's resources (database,
 * fakes, servers) and registers how to close each; the file's cases run as steps of that test;
 * the registered closers run in `finally`, last opened first, even when the setup or a case
 * fails. Deno's op and resource sanitizers are on for that test unless the file turns one off
 * (with a comment saying why): the whole lifecycle is inside it, so nothing may outlive it.
 */

/** Closes one resource the setup opened. */
export type Closer = () => unknown;

export interface SuiteOptions {
  /** Opens the file's resources; calls `onTeardown` with a closer right after each opens. */
  setup(onTeardown: (close: Closer) => void): Promise<void> | void;
  /** Reports the whole file as ignored (setup does not run) where it cannot run in this mode. */
  ignore?: boolean;
  sanitizeOps?: boolean;
  sanitizeResources?: boolean;
}

export interface CaseOptions {
  /** Reports the case as ignored (a step can be ignored like a test). */
  ignore?: boolean;
}

export interface Suite {
  /** Adds a case: a step of the file's test, named as the test it used to be. */
  test(name: string, fn: () => unknown, options?: CaseOptions): void;
}

interface Case extends CaseOptions {
  name: string;
  fn: () => unknown;
}

/** Registers the file's one Deno.test; cases added with `test` run in the order added. */
export function integrationSuite(name: string, options: SuiteOptions): Suite {
  const cases: Case[] = [];
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    sanitizeOps: options.sanitizeOps ?? true,
    sanitizeResources: options.sanitizeResources ?? true,
    async fn(t) {
      const closers: Closer[] = [];
      try {
        await options.setup((close) => closers.push(close));
        for (const { name, fn, ignore } of cases) {
          await t.step({ name, ignore: ignore ?? false, fn: async () => void await fn() });
        }
      } finally {
        await closeAll(name, closers);
      }
    },
  });
  return { test: (name, fn, caseOptions = {}) => void cases.push({ name, fn, ...caseOptions }) };
}

/** Runs every closer, last registered first; one failing does not stop the others. */
async function closeAll(name: string, closers: Closer[]): Promise<void> {
  const errors: unknown[] = [];
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `${name}: teardown failed`);
}
