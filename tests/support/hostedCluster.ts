/**
 * A throwaway PostgreSQL 15 cluster shaped like a hosted Supabase database: `supabase_admin` is
 * the superuser, `postgres` is the non-superuser owner users connect as, pgcrypto is installed in
 * `extensions`, and `auth` belongs to the platform (tests/support/hosted_platform.sql). Started
 * from the machine's initdb in a temp dir on a free loopback port; `stop()` removes it all.
 * initdb refuses root, so as root the binaries run as the `postgres` OS user through runuser.
 */
import { connectPostgres } from "../../supabase/functions/_shared/core/db.ts";

const PG_BIN = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
const PLATFORM_SQL = new URL("hosted_platform.sql", import.meta.url);

export interface HostedCluster {
  /** As `postgres`, the non-superuser owner (what SUPABASE_DB_URL names on the platform). */
  postgresUrl: string;
  /** As the platform's superuser, for checks only. */
  adminUrl: string;
  stop(): Promise<void>;
}

const isRoot = () => Deno.uid() === 0;

async function osUserIds(name: string): Promise<{ uid: number; gid: number } | null> {
  const passwd = await Deno.readTextFile("/etc/passwd").catch(() => "");
  const line = passwd.split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) return null;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** Why the cluster cannot start here, or null when it can. */
export async function hostedClusterUnavailable(): Promise<string | null> {
  try {
    await Deno.stat(`${PG_BIN}/initdb`);
  } catch {
    return `no initdb in ${PG_BIN}`;
  }
  if (isRoot() && !(await osUserIds("postgres"))) return "running as root with no postgres user";
  return null;
}

async function run(binary: string, args: string[]): Promise<string> {
  const [command, fullArgs] = isRoot()
    ? ["runuser", ["-u", "postgres", "--", `${PG_BIN}/${binary}`, ...args]]
    : [`${PG_BIN}/${binary}`, args];
  const result = await new Deno.Command(command, {
    args: fullArgs,
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C.UTF-8" },
  }).output();
  const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  if (!result.success) throw new Error(`${binary} failed: ${text}`);
  return text;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

export async function startHostedCluster(): Promise<HostedCluster> {
  const dir = await Deno.makeTempDir({ prefix: "byok-hosted-pg-" });
  const data = `${dir}/data`;
  let started = false;
  const stop = async () => {
    try {
      if (started) await run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  try {
    if (isRoot()) {
      const ids = (await osUserIds("postgres"))!;
      await Deno.chown(dir, ids.uid, ids.gid);
    }
    await run("initdb", [
      "-D",
      data,
      "-U",
      "supabase_admin",
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--no-sync",
      "--no-instructions",
    ]);
    const port = freePort();
    const options = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      `-k ${dir}`,
      "-c fsync=off",
      "-c max_connections=60",
    ].join(" ");
    await run("pg_ctl", ["-D", data, "-l", `${dir}/server.log`, "-o", options, "-w", "start"]);
    started = true;
    const adminUrl = `postgres://supabase_admin@127.0.0.1:${port}/postgres`;
    const admin = connectPostgres(adminUrl, { max: 1 });
    try {
      await admin.query(await Deno.readTextFile(PLATFORM_SQL));
    } finally {
      await admin.close();
    }
    return { postgresUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, adminUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
