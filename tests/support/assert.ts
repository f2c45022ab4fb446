/** Deno std's assertion names over node:assert (JSR is out of reach here). */
export {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
  rejects,
} from "node:assert/strict";
