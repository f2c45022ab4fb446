/**
 * Starts the whole local stack in this process: database (embedded PGlite, or Postgres when
 * SUPABASE_DB_URL is set), migrations, functions and the gateway. `npm start` and the tests use it.
 */
import { loadConfig } from "../supabase/functions/_shared/config.ts";
import { connectPostgres, type Database } from "../supabase/functions/_shared/db.ts";
import { createRuntime, type Runtime } from "../supabase/functions/_shared/runtime.ts";
import { mountFunctions } from "./functionRegistry.ts";
import { createGateway } from "./gateway.ts";
import { migrate } from "./migrate.ts";
import { openPglite } from "./pgliteDatabase.ts";
import { loadLocalSecrets, signProjectJwt } from "./secrets.ts";
import { panelFiles } from "./staticFiles.ts";

export interface StackOptions {
  dataDir: string;
  port: number;
  hostname?: string;
  /** Real Postgres; embedded PGlite in `dataDir` when absent. */
  dbUrl?: string | null;
  /** Extra settings on top of the environment (tests point upstreams at fakes this way). */
  env?: Record<string, string>;
  /** Use this database instead of opening one (tests share one PGlite). */
  db?: Database;
}

export interface LocalStack {
  url: string;
  functionsUrl: string;
  anonKey: string;
  serviceRoleKey: string;
  jwtSecret: string;
  runtime: Runtime;
  db: Database;
  close(): Promise<void>;
}

export async function startLocalStack(options: StackOptions): Promise<LocalStack> {
  const secrets = await loadLocalSecrets(options.dataDir);
  const ownsDb = !options.db;
  const db = options.db ??
    (options.dbUrl
      ? connectPostgres(options.dbUrl)
      : await openPglite(`${options.dataDir}/pgdata`));
  await migrate(db);

  const env: Record<string, string | undefined> = {
    // A local model server (Ollama, LM Studio) on this machine, and nothing else private.
    ALLOW_PRIVATE_BASE_URLS: "loopback",
    ...Deno.env.toObject(),
    ...options.env,
    CREDENTIALS_ENCRYPTION_KEY: options.env?.CREDENTIALS_ENCRYPTION_KEY ?? secrets.encryptionKey,
    JWT_SECRET: options.env?.JWT_SECRET ?? secrets.jwtSecret,
  };
  const config = loadConfig(env);
  const runtime = createRuntime({ config, db });
  const functions = await mountFunctions(runtime);

  const anonKey = await signProjectJwt(secrets.jwtSecret, {
    role: "anon",
    iss: "supabase-byok-local",
  }, "10y");
  const serviceRoleKey = await signProjectJwt(
    secrets.jwtSecret,
    { role: "service_role", iss: "supabase-byok-local" },
    "10y",
  );

  const hostname = options.hostname ?? "127.0.0.1";
  let url = "";
  const gateway = createGateway({
    functions,
    db,
    jwtSecret: config.jwt.secret!,
    publicConfig: {
      get supabaseUrl() {
        return url;
      },
      anonKey,
    },
    staticFiles: panelFiles(),
    allowedHosts: [hostname],
  });
  const server = Deno.serve({ port: options.port, hostname, onListen: () => {} }, gateway);
  url = `http://${hostname}:${server.addr.port}`;

  return {
    url,
    functionsUrl: `${url}/functions/v1`,
    anonKey,
    serviceRoleKey,
    jwtSecret: config.jwt.secret!,
    runtime,
    db,
    async close() {
      await server.shutdown();
      if (ownsDb) await db.close();
    },
  };
}
