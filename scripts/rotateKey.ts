/**
 * Master-key rotation: re-seals every stored secret from the previous passphrase to the new one,
 * in small transactions, while the functions keep serving (they read a row with the key its
 * `key_version` names). Safe to interrupt and run again: it only ever touches rows still on an
 * older version. It opens and seals through the database's one owner of encryption
 * (`private.open_secret` / `private.seal_secret`), so every re-sealed row is bound to itself,
 * including rows sealed before bindings existed. A row that does not open (garbage, a wrong
 * passphrase, a ciphertext moved from another row) is skipped and reported, never allowed to stop
 * the rotation of the others. Passphrases reach SQL only as bind parameters, in the keyring.
 */
import type { Database, Queryable } from "../supabase/functions/_shared/core/db.ts";
import { keyringParam } from "../supabase/functions/_shared/vault/keyring.ts";

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

/** A row that did not open with the previous key: named by its binding, never by a secret. */
export interface SkippedRow {
  table: string;
  binding: string;
}

export interface RotationReport {
  tables: string[];
  rotated: number;
  /** Rows left as they were because they do not open; the owner must store those keys again. */
  skipped: SkippedRow[];
  total: number;
  seconds: number;
  rowsPerSecond: number;
  interrupted: boolean;
  checks: TableCheck[];
  /**
   * True when every row of every table opens with the new key and carries the new version, apart
   * from the skipped rows (which are reported, not hidden).
   */
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
 * Every table in `public` with a `ciphertext bytea`, a `key_version integer` and a
 * `secret_binding text` column, so tables added later are rotated without changing this script.
 */
export async function encryptedTables(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ table_name: string }>(
    `select table_name
       from information_schema.columns
      where table_schema = 'public'
        and ((column_name = 'ciphertext' and data_type = 'bytea')
          or (column_name = 'key_version' and data_type = 'integer')
          or (column_name = 'secret_binding' and data_type = 'text'))
      group by table_name
     having count(*) = 3
      order by table_name`,
    [],
  );
  return rows.map((row) => row.table_name);
}

/** `public."name"`, with quotes doubled: table names come from the catalog, not from a user. */
function qualified(table: string): string {
  return `public."${table.replaceAll('"', '""')}"`;
}

function rotationKeyring(
  options: Pick<RotationOptions, "newKey" | "newVersion"> & {
    previousKey: string | null;
  },
): string {
  return keyringParam({
    encryptionKey: options.newKey,
    encryptionKeyVersion: options.newVersion,
    previousEncryptionKey: options.previousKey,
  });
}

async function staleCount(
  db: Queryable,
  table: string,
  version: number,
  skipped: string[],
): Promise<number> {
  const [row] = await db.query<{ n: number | string }>(
    `select count(*)::int as n from ${qualified(table)}
      where key_version <> $1 and secret_binding <> all ($2::text::text[])`,
    [version, textArray(skipped)],
  );
  return Number(row.n);
}

/** A text[] literal; bindings hold no quote or backslash, but quote them anyway. */
function textArray(values: string[]): string {
  return `{${
    values.map((v) => `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`).join(",")
  }}`;
}

/**
 * Re-seals up to `limit` rows of `table` in one transaction. Returns how many were re-sealed and
 * the bindings of the rows that did not open (left untouched, and excluded from later batches).
 */
async function rotateBatch(
  db: Database,
  table: string,
  options: RotationOptions,
  limit: number,
  skipped: string[],
): Promise<{ rotated: number; unopened: string[] }> {
  const name = qualified(table);
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx.query<{ rotated: number; unopened: string[] | null }>(
        `with batch as (
           select ctid, secret_binding,
                  private.open_secret(ciphertext, secret_binding, key_version, $1::text::jsonb) as plain
             from ${name}
            where key_version <> $2 and secret_binding <> all ($4::text::text[])
            limit $3
              for update skip locked
         ), resealed as (
           update ${name} as t
              set ciphertext = private.seal_secret(b.plain, t.secret_binding, $1::text::jsonb),
                  key_version = $2
             from batch as b
            where t.ctid = b.ctid and b.plain is not null
           returning 1
         )
         select (select count(*) from resealed)::int as rotated,
                (select array_agg(secret_binding) from batch where plain is null) as unopened`,
        [rotationKeyring(options), options.newVersion, limit, textArray(skipped)],
      );
      return { rotated: Number(row.rotated), unopened: row.unopened ?? [] };
    });
  } catch (error) {
    // The database's message is safe; the error object itself may carry the statement's
    // parameters, so only the message goes on.
    const reason = error instanceof Error ? error.message : String(error);
    throw new RotationError(
      `re-sealing ${table} failed, the batch was rolled back and no row changed: ${reason}`,
    );
  }
}

/** Counts, per table, rows that do not open with the new key or are not on the new version. */
export async function verifyRotation(
  db: Database,
  options: Pick<RotationOptions, "newKey" | "newVersion">,
  tables?: string[],
): Promise<TableCheck[]> {
  const names = tables ?? await encryptedTables(db);
  const keyring = rotationKeyring({ ...options, previousKey: null });
  const checks: TableCheck[] = [];
  for (const table of names) {
    const [row] = await db.query<{ rows: number; undecryptable: number; stale: number }>(
      `select count(*)::int as rows,
              count(*) filter (
                where private.open_secret(ciphertext, secret_binding, key_version, $1::text::jsonb) is null
              )::int as undecryptable,
              count(*) filter (where key_version <> $2)::int as stale
         from ${qualified(table)}`,
      [keyring, options.newVersion],
    );
    checks.push({
      table,
      rows: Number(row.rows),
      undecryptable: Number(row.undecryptable),
      stale: Number(row.stale),
    });
  }
  return checks;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Re-seals every row on an older key version in every encrypted table, batch by batch, then
 * verifies the result. Rows that do not open are skipped and listed in `skipped`. Throws
 * `RotationError` for bad settings or a batch that fails (nothing of that batch is written). An
 * aborted run returns `interrupted: true`; run it again to resume.
 */
export async function rotateEncryptionKey(
  db: Database,
  options: RotationOptions,
): Promise<RotationReport> {
  checkRotationOptions(options);
  const batchSize = options.batchSize ?? 500;
  const tables = await encryptedTables(db);
  let total = 0;
  for (const table of tables) total += await staleCount(db, table, options.newVersion, []);
  const skipped: SkippedRow[] = [];

  const started = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - started) / 1000, 1e-3);
  let done = 0;
  let interrupted = false;

  tables: for (const table of tables) {
    let idleRounds = 0;
    const unopened: string[] = [];
    while (true) {
      if (options.signal?.aborted) {
        interrupted = true;
        break tables;
      }
      const batch = await rotateBatch(db, table, options, batchSize, unopened);
      unopened.push(...batch.unopened);
      skipped.push(...batch.unopened.map((binding) => ({ table, binding })));
      if (batch.rotated > 0 || batch.unopened.length > 0) {
        idleRounds = 0;
        done += batch.rotated;
        options.onProgress?.({ table, done, total, rowsPerSecond: rate(done) });
        continue;
      }
      // Nothing unlocked was left. Rows another transaction holds are retried for a while; an
      // old writer may also still be adding rows on the previous version.
      if (
        await staleCount(db, table, options.newVersion, unopened) === 0 || ++idleRounds > 50
      ) break;
      await sleep(100);
    }
  }

  if (!interrupted && done === 0 && total > 0 && skipped.length >= total) {
    throw new RotationError(
      `none of the ${total} rows on an older version opens with ` +
        "CREDENTIALS_ENCRYPTION_KEY_PREVIOUS, so no row changed. Check that " +
        "CREDENTIALS_ENCRYPTION_KEY_PREVIOUS is the key the rows were written with.",
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const checks = interrupted ? [] : await verifyRotation(db, options, tables);
  return {
    tables,
    rotated: done,
    skipped,
    total,
    seconds,
    rowsPerSecond: rate(done),
    interrupted,
    checks,
    verified: !interrupted && checks.every((c) => {
      const left = skipped.filter((row) => row.table === c.table).length;
      return c.undecryptable === left && c.stale === left;
    }),
  };
}
