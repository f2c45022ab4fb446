/**
 * `npm run rotate-key`: re-encrypts every stored credential with the new master key.
 *
 * Reads SUPABASE_DB_URL (or DATABASE_URL), CREDENTIALS_ENCRYPTION_KEY (new),
 * CREDENTIALS_ENCRYPTION_KEY_PREVIOUS (old) and CREDENTIALS_ENCRYPTION_KEY_VERSION (the new
 * version), and ROTATE_BATCH_SIZE (default 500). Exits 0 only when every row of every encrypted
 * table opens with the new key; 4 when it finished but skipped rows that do not open (listed by
 * table and binding). See docs/security.md for the whole procedure.
 */
import { connectPostgres } from "../supabase/functions/_shared/core/db.ts";
import { rotateEncryptionKey, RotationError } from "./rotateKey.ts";

function env(name: string): string {
  return Deno.env.get(name)?.trim() ?? "";
}

async function main(): Promise<number> {
  const dbUrl = env("SUPABASE_DB_URL") || env("DATABASE_URL");
  if (!dbUrl) {
    console.error("rotate-key: set SUPABASE_DB_URL (or DATABASE_URL)");
    return 2;
  }
  const versionText = env("CREDENTIALS_ENCRYPTION_KEY_VERSION");
  if (!versionText) {
    console.error("rotate-key: set CREDENTIALS_ENCRYPTION_KEY_VERSION to the new key's version");
    return 2;
  }

  const controller = new AbortController();
  const stop = () => {
    console.error("rotate-key: stopping after the current batch; run again to resume");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);

  // A batch re-encrypts up to ROTATE_BATCH_SIZE rows in one statement: give it longer than a request.
  const db = connectPostgres(dbUrl, { max: 2, queryTimeoutMs: 120_000 });
  try {
    const report = await rotateEncryptionKey(db, {
      newKey: env("CREDENTIALS_ENCRYPTION_KEY"),
      previousKey: env("CREDENTIALS_ENCRYPTION_KEY_PREVIOUS"),
      newVersion: Number(versionText),
      batchSize: Number(env("ROTATE_BATCH_SIZE") || "500"),
      signal: controller.signal,
      onProgress: (p) =>
        console.log(
          `rotate-key: ${p.table}: ${p.done} / ${p.total} rows (${
            Math.round(p.rowsPerSecond)
          } rows/s)`,
        ),
    });
    console.log(
      `rotate-key: ${report.rotated} of ${report.total} rows re-encrypted in ` +
        `${report.seconds.toFixed(1)} s (${Math.round(report.rowsPerSecond)} rows/s); ` +
        `tables: ${report.tables.join(", ") || "none"}`,
    );
    if (report.interrupted) {
      console.error(
        "rotate-key: interrupted; rows still on the old version keep working. Run again.",
      );
      return 3;
    }
    for (const check of report.checks) {
      console.log(
        `rotate-key: verify ${check.table}: ${check.rows} rows, ${check.undecryptable} do not ` +
          `decrypt with the new key, ${check.stale} not on the new version`,
      );
    }
    for (const row of report.skipped) {
      console.error(
        `rotate-key: skipped ${row.table} row ${row.binding}: it does not open with the ` +
          "previous key (corrupt, or moved from another row); its owner must store the key again",
      );
    }
    if (!report.verified) {
      console.error("rotate-key: verification FAILED; keep the previous key configured");
      return 1;
    }
    if (report.skipped.length > 0) {
      console.error(
        `rotate-key: finished with ${report.skipped.length} row(s) skipped; every other row is ` +
          "verified on the new key",
      );
      return 4;
    }
    console.log("rotate-key: verified; CREDENTIALS_ENCRYPTION_KEY_PREVIOUS can now be removed");
    return 0;
  } catch (error) {
    // Never print the error object: a driver error can carry the statement's parameters.
    const message = error instanceof RotationError
      ? error.message
      : `unexpected ${error instanceof Error ? error.name : "error"}: ${
        error instanceof Error ? error.message : ""
      }`;
    console.error(`rotate-key: ${message}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await db.close();
  }
}

Deno.exit(await main());
