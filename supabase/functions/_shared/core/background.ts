/**
 * Work that goes on after the response. On Supabase, `EdgeRuntime.waitUntil` keeps the isolate
 * alive until it settles (a retired isolate would otherwise drop it); elsewhere (the local stack,
 * tests) the process lives on and the work's own timer or promise is enough.
 */

interface EdgeRuntimeGlobal {
  waitUntil?(work: Promise<unknown>): void;
}

function edgeRuntime(): EdgeRuntimeGlobal | undefined {
  return (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime;
}

/** Keeps the isolate alive until `work` settles, where the platform can; never throws. */
export function keepAliveUntil(work: Promise<unknown>): void {
  edgeRuntime()?.waitUntil?.(work.catch(() => {}));
}

/** Runs `flush` when the platform is about to shut the isolate down (Supabase's `beforeunload`). */
export function onShutdown(flush: () => Promise<unknown>): void {
  if (!edgeRuntime()) return;
  globalThis.addEventListener("beforeunload", () => keepAliveUntil(flush()));
}
