/**
 * The one place the encryption passphrases leave the configuration. They travel as one opaque
 * keyring (bound as jsonb) to the SQL pair that owns encryption, `private.seal_secret` and
 * `private.open_secret` (supabase/migrations/20261201100000_custody.sql); every other SQL function
 * only passes the keyring on. Rotation builds the same keyring from its own settings.
 */
import type { Config } from "../core/config.ts";

export type KeyringConfig = Pick<
  Config,
  "encryptionKey" | "encryptionKeyVersion" | "previousEncryptionKey"
>;

/** The bind parameter for a `$n::text::jsonb` keyring argument. Never log it. */
export function keyringParam(config: KeyringConfig): string {
  return JSON.stringify({
    version: config.encryptionKeyVersion,
    current: config.encryptionKey,
    previous: config.previousEncryptionKey,
  });
}
