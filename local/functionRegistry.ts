/**
 * Finds the functions declared in supabase/config.toml and loads each one's handler module, the
 * way `supabase functions serve` would, honouring `verify_jwt`.
 */
import { parse } from "smol-toml";
import type { Handler } from "../supabase/functions/_shared/http/pipeline.ts";
import type { RuntimeSource } from "../supabase/functions/_shared/core/runtime.ts";

const ROOT = new URL("../", import.meta.url);

export interface MountedFunction {
  name: string;
  verifyJwt: boolean;
  handler: Handler;
}

interface HandlerModule {
  createHandler(runtime: RuntimeSource): Handler;
}

/** Reads `[functions.<name>]` tables from config.toml. */
export async function declaredFunctions(): Promise<{ name: string; verifyJwt: boolean }[]> {
  const config = parse(await Deno.readTextFile(new URL("supabase/config.toml", ROOT))) as {
    functions?: Record<string, { verify_jwt?: boolean }>;
  };
  return Object.entries(config.functions ?? {}).map(([name, settings]) => ({
    name,
    verifyJwt: settings.verify_jwt ?? true,
  }));
}

/** Imports every declared function's handler.ts and builds it against `runtime`. */
export async function mountFunctions(
  runtime: RuntimeSource,
): Promise<Map<string, MountedFunction>> {
  const mounted = new Map<string, MountedFunction>();
  for (const { name, verifyJwt } of await declaredFunctions()) {
    const module: HandlerModule = await import(
      new URL(`supabase/functions/${name}/handler.ts`, ROOT).href
    );
    mounted.set(name, { name, verifyJwt, handler: module.createHandler(runtime) });
  }
  return mounted;
}
