/**
 * `npm start`: the local stack. Prints where everything is and how to get a token.
 * Settings: PORT (54321), DATA_DIR (.data), SUPABASE_DB_URL (a real Postgres instead of PGlite).
 */
import { startLocalStack } from "./stack.ts";

const port = Number(Deno.env.get("PORT") ?? "54321");
const dataDir = Deno.env.get("DATA_DIR") ?? ".data";
const dbUrl = Deno.env.get("SUPABASE_DB_URL") ?? null;

const stack = await startLocalStack({ dataDir, port, dbUrl });

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

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    await stack.close();
    Deno.exit(0);
  });
}
