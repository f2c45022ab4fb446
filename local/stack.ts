/**
 * Starts the whole local stack in this process: database (embedded PGlite, or Postgres when
 * SUPABASE_DB_URL is set), migrations, functions and the gateway. `npm start` and the tests use it.
 *
 * Start-up takes the port first and the data directory second, before any database opens: a port
 * in use or a directory another stack holds is refused with a message, and nothing is touched.
 * `close()` stops accepting, ends open streams with a `SERVER_SHUTTING_DOWN` event, flushes usage
 * and closes the database.
 */
import { loadConfig } from "../supabase/functions/_shared/core/config.ts";
import { usageRecorderFor } from "../supabase/functions/_shared/upstream/usageRecorder.ts";
import { type DataDirLock, lockDataDir } from "./dataDirLock.ts";
import { connectPostgres, type Database } from "../supabase/functions/_shared/core/db.ts";
import { createRuntime, type Runtime } from "../supabase/functions/_shared/core/runtime.ts";
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
  /**
   * Stops the stack: no new connections, open streams end with `SERVER_SHUTTING_DOWN`, usage is
   * flushed and the database closed. `onStep` hears each step as it starts.
   */
  close(onStep?: (step: string) => void): Promise<void>;
}

/** The port is taken (by another program, or another stack). */
export class PortInUse extends Error {
  constructor(readonly hostname: string, readonly port: number) {
    super(
      `PORT=${port} is already in use on ${hostname}: another program, or another stack, listens there. Stop it, or start this one with PORT=<another port> (PORT=0 picks a free one).`,
    );
    this.name = "PortInUse";
  }
}

/** How long open connections get to finish once their streams were told to end. */
const DRAIN_MS = 3_000;

/** A request while the stack is still starting: the port is taken before the database opens. */
const starting: (request: Request) => Promise<Response> = () =>
  Promise.resolve(Response.json({ status: "starting" }, { status: 503 }));

export async function startLocalStack(options: StackOptions): Promise<LocalStack> {
  const hostname = options.hostname ?? "127.0.0.1";
  let handle = starting;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { port: options.port, hostname, onListen: () => {} },
      (request) => handle(request),
    );
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) throw new PortInUse(hostname, options.port);
    throw error;
  }
  const url = `http://${hostname}:${server.addr.port}`;
  const ownsDb = !options.db;
  let lock: DataDirLock | null = null;
  let db: Database | null = null;
  try {
    // A stack that opens its own database holds the data directory for as long as it runs.
    if (ownsDb) lock = lockDataDir(options.dataDir, url);
    const secrets = await loadLocalSecrets(options.dataDir);
    db = options.db ??
      (options.dbUrl
        ? connectPostgres(options.dbUrl)
        : await openPglite(`${options.dataDir}/pgdata`));
    await migrate(db);
    return await serveStack(options, { server, url, db, secrets, ownsDb, lock }, (next) => {
      handle = next;
    });
  } catch (error) {
    await server.shutdown();
    if (ownsDb) await db?.close().catch(() => {});
    lock?.release();
    throw error;
  }
}

interface Started {
  server: Deno.HttpServer<Deno.NetAddr>;
  url: string;
  db: Database;
  secrets: { encryptionKey: string; jwtSecret: string };
  ownsDb: boolean;
  lock: DataDirLock | null;
}

async function serveStack(
  options: StackOptions,
  { server, url, db, secrets, ownsDb, lock }: Started,
  setHandler: (handler: (request: Request) => Promise<Response>) => void,
): Promise<LocalStack> {
  const env: Record<string, string | undefined> = {
    // A local model server (Ollama, LM Studio) on this machine, and nothing else private.
    ALLOW_PRIVATE_BASE_URLS: "loopback",
    ...Deno.env.toObject(),
    ...options.env,
    CREDENTIALS_ENCRYPTION_KEY: options.env?.CREDENTIALS_ENCRYPTION_KEY ?? secrets.encryptionKey,
    JWT_SECRET: options.env?.JWT_SECRET ?? secrets.jwtSecret,
  };
  const config = loadConfig(env);
  const stopping = new AbortController();
  const runtime = createRuntime({ config, db, stopping: stopping.signal });
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

  setHandler(createGateway({
    functions,
    db,
    jwtSecret: config.jwt.secret!,
    publicConfig: { supabaseUrl: url, anonKey },
    staticFiles: panelFiles(),
    allowedHosts: [new URL(url).hostname],
  }));

  let closing: Promise<void> | null = null;
  async function close(onStep: (step: string) => void): Promise<void> {
    onStep("no new connections; ending open streams with SERVER_SHUTTING_DOWN");
    stopping.abort();
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      server.shutdown().then(() => true),
      new Promise<false>((resolve) => (drainTimer = setTimeout(() => resolve(false), DRAIN_MS))),
    ]);
    clearTimeout(drainTimer);
    if (!drained) onStep(`connections still open after ${DRAIN_MS / 1000} s; closing them`);
    onStep("flushing usage");
    await usageRecorderFor(db).flush();
    if (ownsDb) {
      onStep("closing the database");
      await db.close();
    }
    lock?.release();
  }

  return {
    url,
    functionsUrl: `${url}/functions/v1`,
    anonKey,
    serviceRoleKey,
    jwtSecret: config.jwt.secret!,
    runtime,
    db,
    close(onStep = () => {}) {
      closing ??= close(onStep);
      return closing;
    },
  };
}
