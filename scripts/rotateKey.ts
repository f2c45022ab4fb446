/**
 * Master-key rotation: re-encrypts every stored secret from the previous passphrase to the new
 * one, in small transactions, while the functions keep serving (they read a row with the key its
 * `key_version` names). Safe to interrupt and run again: it only ever touches rows still on an
 * older version. Passphrases reach SQL only as bind parameters.
 */
import type { Database, Queryable } from "../supabase/functions/_shared/db.ts";

export interface RotationOptions {
  /** CREDENTIALS_ENCRYPTION_KEY: the passphrase rows are re-encrypted with. */
  newKey: string;
  /** CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: the passphrase rows on an older version were written with. */
  previousKey: string;
  /** CREDENTIALS_ENCRYPTION_KEY_VERSION: the version stored on re-encrypted rows. */
  newVersion: number;
  /** Rows per transaction. */
  batchSize?: number;
  /** Called after every batch. */
  onProgress?: (progress: RotationProgress) => void;
  /** Stops cleanly between batches (Ctrl-C in the CLI; tests simulate an interruption). */
  signal?: AbortSignal;
}

export interface RotationProgress {
  table: string;
  /** Rows re-encrypted so far in this run, all tables. */
  done: number;
  /** Rows that were on an older version when this run started, all tables. */
  total: number;
  rowsPerSecond: number;
}

export interface TableCheck {
  table: string;
  rows: number;
  /** Rows whose ciphertext does not decrypt with the new key. */
  undecryptable: number;
  /** Rows not on the new version. */
  stale: number;
}

export interface RotationReport {
  tables: string[];
  rotated: number;
  total: number;
  seconds: number;
  rowsPerSecond: number;
  interrupted: boolean;
  checks: TableCheck[];
  /** True when every row of every table decrypts with the new key and carries the new version. */
  verified: boolean;
}

/** A refusal or failure with a message that never contains a passphrase. */
export class RotationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RotationError";
  }
}

const MIN_KEY_LENGTH = 16;

/** Checks the settings before anything touches the database. */
export function checkRotationOptions(options: RotationOptions): void {
  if (!options.newKey) throw new RotationError("CREDENTIALS_ENCRYPTION_KEY is not set");
  if (!options.previousKey) {
    throw new RotationError("CREDENTIALS_ENCRYPTION_KEY_PREVIOUS is not set");
  }
  if (options.newKey.length < MIN_KEY_LENGTH) {
    throw new RotationError(
      `CREDENTIALS_ENCRYPTION_KEY must be at least ${MIN_KEY_LENGTH} characters`,
    );
  }
  if (options.newKey === options.previousKey) {
    throw new RotationError(
      "CREDENTIALS_ENCRYPTION_KEY equals CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: nothing to rotate",
    );
  }
  if (!Number.isInteger(options.newVersion) || options.newVersion <= 0) {
    throw new RotationError("CREDENTIALS_ENCRYPTION_KEY_VERSION must be a positive integer");
  }
  const batch = options.batchSize ?? 500;
  if (!Number.isInteger(batch) || batch <= 0) {
    throw new RotationError("the batch size must be a positive integer");
  }
}

/**
 * Every table in `public` with a `ciphertext bytea` and a `key_version integer` column, so
 * tables added later (shared keys, owner keys) are rotated without changing this script.
 */
export async function encryptedTables(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ table_name: string }>(
    `select table_name
       from information_schema.columns
      where table_schema = 'public'
        and ((column_name = 'ciphertext' and data_type = 'bytea')
          or (column_name = 'key_version' and data_type = 'integer'))
      group by table_name
     having count(*) = 2
      order by table_name`,
    [],
  );
  return rows.map((row) => row.table_name);
}

/** `public."name"`, with quotes doubled: table names come from the catalog, not from a user. */
function qualified(table: string): string {
  return `public."${table.replaceAll('"', '""')}"`;
}

async function staleCount(db: Queryable, table: string, version: number): Promise<number> {
  const [row] = await db.query<{ n: number | string }>(
    `select count(*)::int as n from ${qualified(table)} where key_version <> $1`,
    [version],
  );
  return Number(row.n);
}

/** Re-encrypts up to `limit` rows of `table` in one transaction; returns how many. */
async function rotateBatch(
  db: Database,
  table: string,
  options: RotationOptions,
  limit: number,
): Promise<number> {
  const name = qualified(table);
  try {
    return await db.transaction(async (tx) => {
      const rows = await tx.query(
        `with batch as (
           select ctid from ${name} where key_version <> $3 limit $4 for update skip locked
         )
         update ${name} as t
            set ciphertext = extensions.pgp_sym_encrypt(
                  extensions.pgp_sym_decrypt(t.ciphertext, $1), $2, 'cipher-algo=aes256'),
                key_version = $3
           from batch
          where t.ctid = batch.ctid
         returning 1 as rotated`,
        [options.previousKey, options.newKey, options.newVersion, limit],
      );
      return rows.length;
    });
  } catch (error) {
    // The database's message ("Wrong key or corrupt data") is safe; the error object itself may
    // carry the statement's parameters, so only the message goes on.
    const reason = error instanceof Error ? error.message : String(error);
    throw new RotationError(
      `re-encrypting ${table} failed, the batch was rolled back and no row changed: ${reason}. ` +
        "Check that CREDENTIALS_ENCRYPTION_KEY_PREVIOUS is the key the rows were written with.",
    );
  }
}

/** Counts, per table, rows that do not decrypt with the new key or are not on the new version. */
export async function verifyRotation(
  db: Database,
  options: Pick<RotationOptions, "newKey" | "newVersion">,
  tables?: string[],
): Promise<TableCheck[]> {
  const names = tables ?? await encryptedTables(db);
  return await db.transaction(async (tx) => {
    // A session-local helper: pgp_sym_decrypt raises on a wrong key, and a count needs a boolean.
    await tx.query(
      `create or replace function pg_temp.decrypts_with(data bytea, passphrase text)
       returns boolean language plpgsql as $fn$
       begin
         perform extensions.pgp_sym_decrypt(data, passphrase);
         return true;
       exception when others then
         return false;
       end
       $fn$`,
      [],
    );
    const checks: TableCheck[] = [];
    for (const table of names) {
      const [row] = await tx.query<{ rows: number; undecryptable: number; stale: number }>(
        `select count(*)::int as rows,
                count(*) filter (where not pg_temp.decrypts_with(ciphertext, $1))::int
                  as undecryptable,
                count(*) filter (where key_version <> $2)::int as stale
           from ${qualified(table)}`,
        [options.newKey, options.newVersion],
      );
      checks.push({
        table,
        rows: Number(row.rows),
        undecryptable: Number(row.undecryptable),
        stale: Number(row.stale),
      });
    }
    return checks;
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Re-encrypts every row on an older key version in every encrypted table, batch by batch, then
 * verifies the result. Throws `RotationError` for bad settings or a batch that fails (nothing
 * of that batch is written). An aborted run returns `interrupted: true`; run it again to resume.
 */
export async function rotateEncryptionKey(
  db: Database,
  options: RotationOptions,
): Promise<RotationReport> {
  checkRotationOptions(options);
  const batchSize = options.batchSize ?? 500;
  const tables = await encryptedTables(db);
  let total = 0;
  for (const table of tables) total += await staleCount(db, table, options.newVersion);

  const started = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - started) / 1000, 1e-3);
  let done = 0;
  let interrupted = false;

  tables: for (const table of tables) {
    let idleRounds = 0;
    while (true) {
      if (options.signal?.aborted) {
        interrupted = true;
        break tables;
      }
      const rotated = await rotateBatch(db, table, options, batchSize);
      if (rotated > 0) {
        idleRounds = 0;
        done += rotated;
        options.onProgress?.({ table, done, total, rowsPerSecond: rate(done) });
        continue;
      }
      // Nothing unlocked was left. Rows another transaction holds are retried for a while; an
      // old writer may also still be adding rows on the previous version.
      if (await staleCount(db, table, options.newVersion) === 0 || ++idleRounds > 50) break;
      await sleep(100);
    }
  }

  const seconds = (performance.now() - started) / 1000;
  const checks = interrupted ? [] : await verifyRotation(db, options, tables);
  return {
    tables,
    rotated: done,
    total,
    seconds,
    rowsPerSecond: rate(done),
    interrupted,
    checks,
    verified: !interrupted && checks.every((c) => c.undecryptable === 0 && c.stale === 0),
  };
}
