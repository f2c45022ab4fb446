/**
 * `npm start`: the local stack. Prints where everything is and how to get a token.
 * Settings: PORT (54321), DATA_DIR (.data), SUPABASE_DB_URL (a real Postgres instead of PGlite).
 *
 * Ctrl-C (SIGINT) or SIGTERM stops it within a few seconds, saying what it does: no new
 * connections, open streams end with a `SERVER_SHUTTING_DOWN` event, usage is flushed and the
 * database closed. A second signal exits at once.
 */
import { DataDirInUse } from "./dataDirLock.ts";
import { type LocalStack, PortInUse, startLocalStack } from "./stack.ts";

const port = Number(Deno.env.get("PORT") ?? "54321");
const dataDir = Deno.env.get("DATA_DIR") ?? ".data";
const dbUrl = Deno.env.get("SUPABASE_DB_URL") ?? null;

let stack: LocalStack;
try {
  stack = await startLocalStack({ dataDir, port, dbUrl });
} catch (error) {
  if (error instanceof PortInUse || error instanceof DataDirInUse) {
    console.error(`supabase-byok: not started. ${error.message}`);
    Deno.exit(1);
  }
  throw error;
}

console.log(`
supabase-byok local stack is ready at ${stack.url}
  database:   ${dbUrl ? "PostgreSQL (SUPABASE_DB_URL)" : `embedded PGlite in ${dataDir}/pgdata`}
  functions:  ${stack.functionsUrl}/<name>
  health:     ${stack.url}/health
  panel:      ${stack.url}/  (after npm run build:panel)
  anon key:   ${stack.anonKey}

Get a user token (dev only):
  curl -s -X POST ${stack.url}/auth/v1/dev/token -H 'content-type: application/json' -d '{"email":"alice@example.com"}'
`);

let stopping = false;
async function stop(signal: Deno.Signal): Promise<void> {
  if (stopping) {
    console.log(`supabase-byok: ${signal} again: exiting now`);
    Deno.exit(130);
  }
  stopping = true;
  console.log(`supabase-byok: ${signal}: stopping (send it again to exit at once)`);
  try {
    await stack.close((step) => console.log(`supabase-byok: ${step}`));
    console.log("supabase-byok: stopped");
    Deno.exit(0);
  } catch (error) {
    console.error(`supabase-byok: stopping failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void stop(signal));
}
