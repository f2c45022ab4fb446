/**
 * People by email, resolved on the server, so no client can list other users' emails. Two
 * directions only: an owner turns emails they already know into user ids (for an allow-list),
 * and the server adds the email to ids the owner already sees (their allow-list, who used their
 * shared key, who acted on their keys). There is no search and no listing.
 */
import type { Queryable } from "../core/db.ts";
import { fail } from "../http/pipeline.ts";

/** The user id of each email (case-insensitive); an email without an account is a 400. */
export async function idsForEmails(db: Queryable, emails: readonly string[]): Promise<string[]> {
  if (emails.length === 0) return [];
  const wanted = [...new Set(emails.map((email) => email.trim().toLowerCase()))];
  const rows = await db.query<{ id: string; email: string }>(
    "select id::text as id, lower(email) as email from auth.users where lower(email) = any($1::text[])",
    [wanted],
  );
  const found = new Map(rows.map((row) => [row.email, row.id]));
  const missing = wanted.find((email) => !found.has(email));
  if (missing) fail("INVALID_REQUEST", `No account uses ${missing}. Ask them to sign up first.`);
  return wanted.map((email) => found.get(email)!);
}

/** The email of each user id that has one. */
export async function emailsOf(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await db.query<{ id: string; email: string | null }>(
    "select id::text as id, email from auth.users where id = any($1::uuid[])",
    [unique],
  );
  return new Map(rows.filter((row) => row.email).map((row) => [row.id, row.email!]));
}

/** Adds `allowed_users: [{id, email}]` to shared keys, in their allow-list's order. */
export async function withAllowedUsers<T extends { allowed_user_ids: string[] }>(
  db: Queryable,
  keys: T[],
): Promise<(T & { allowed_users: { id: string; email: string | null }[] })[]> {
  const emails = await emailsOf(db, keys.flatMap((key) => key.allowed_user_ids));
  return keys.map((key) => ({
    ...key,
    allowed_users: key.allowed_user_ids.map((id) => ({ id, email: emails.get(id) ?? null })),
  }));
}
