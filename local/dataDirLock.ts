/**
 * One stack per data directory. Two stacks on one embedded database each keep their own copy of
 * it in memory and write it back in turn, so one loses the other's writes: a key stored through
 * the first was gone after both stopped. The lock is a file naming the holder's process and URL;
 * a lock left by a process that no longer runs (killed, crashed) is taken over.
 */

export class DataDirInUse extends Error {
  constructor(readonly dataDir: string, readonly holder: LockHolder) {
    super(
      `DATA_DIR ${dataDir} is in use by the stack at ${holder.url} (PORT=${
        new URL(holder.url).port
      }, pid ${holder.pid}). Stop that stack first, or set DATA_DIR= to another directory.`,
    );
    this.name = "DataDirInUse";
  }
}

export interface LockHolder {
  pid: number;
  url: string;
}

export interface DataDirLock {
  release(): void;
}

const LOCK_FILE = "stack.lock";

/** Whether a process runs: Linux and macOS answer through `kill -0`'s equivalent. */
function isRunning(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    // Signal 0 is not in Deno's list; SIGCONT is harmless to a running process.
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (error) {
    // No such process; a process of another user (EPERM) is running.
    return error instanceof Deno.errors.PermissionDenied;
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const holder = JSON.parse(Deno.readTextFileSync(path));
    return typeof holder?.pid === "number" && typeof holder?.url === "string" ? holder : null;
  } catch {
    return null;
  }
}

/** Takes `dataDir` for the stack at `url`, or throws `DataDirInUse` naming the running stack. */
export function lockDataDir(dataDir: string, url: string): DataDirLock {
  Deno.mkdirSync(dataDir, { recursive: true });
  const path = `${dataDir}/${LOCK_FILE}`;
  const mine = JSON.stringify({ pid: Deno.pid, url } satisfies LockHolder);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      Deno.writeTextFileSync(path, mine, { createNew: true, mode: 0o600 });
      return {
        release() {
          if (readHolder(path)?.pid === Deno.pid) Deno.removeSync(path);
        },
      };
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const holder = readHolder(path);
    if (holder && isRunning(holder.pid)) throw new DataDirInUse(dataDir, holder);
    // Left by a stack that is gone: take it over.
    Deno.removeSync(path);
  }
  throw new Error(`could not lock DATA_DIR ${dataDir}`);
}
