/**
 * A full garbage collection on demand, without `--expose-gc` on the command line: tests use it to
 * show that nothing a request still needs is held only weakly.
 */
import v8 from "node:v8";
import vm from "node:vm";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Runs a full, synchronous garbage collection. */
export function collectGarbage(): void {
  gc();
}
