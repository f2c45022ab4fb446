/** Signing in on the local stack through its dev-only token endpoint, as the panel does. */

export interface DevUser {
  id: string;
  email: string;
  token: string;
}

/** Creates (or reuses) the user with `email` and returns its id and access token. */
export async function signInDevUser(
  stackUrl: string,
  email = `${crypto.randomUUID()}@dev.test`,
): Promise<DevUser> {
  const response = await fetch(`${stackUrl}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
  if (response.status !== 200) throw new Error(`dev sign-in answered ${response.status}`);
  const body = await response.json();
  return { id: body.user.id, email: body.user.email, token: body.access_token };
}
