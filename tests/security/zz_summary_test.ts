/**
 * The last file of the security suite (Deno runs test files in name order, hence `zz_`): prints
 * the figures the earlier files recorded and holds the suite to them: no 5xx, no leak, no
 * mix-up, no lost credential, and no attempt of any attack class getting through.
 */
import { assertEquals } from "../support/assert.ts";
import { clearFigures, readFigures, renderFiguresTable } from "./figures.ts";

Deno.test("security figures: no 5xx, no leak, no mix-up, no credential lost, no attack through", () => {
  const figures = readFigures();
  console.log(renderFiguresTable(figures));
  clearFigures();
  const serverErrors = Object.entries(figures.functions).filter(([, f]) => f.serverErrors > 0);
  assertEquals(serverErrors, []);
  assertEquals(figures.leaks, 0);
  assertEquals(figures.mixUps?.wrong ?? 0, 0);
  assertEquals(figures.rotation?.lost ?? 0, 0);
  const through = Object.entries(figures.attacks).filter(([, a]) => a.through > 0);
  assertEquals(through, []);
});
