/**
 * The local stack (`npm start`'s server) for an integration suite, on the suite's database. Its
 * data directory (where it writes the JWT secret and the passphrase) is a fresh temporary one,
 * removed after the stack has closed.
 */
import { type LocalStack, type StackOptions, startLocalStack } from "../../local/stack.ts";
import type { Closer } from "./suite.ts";

export async function openLocalStack(
  onTeardown: (close: Closer) => void,
  options: Omit<StackOptions, "dataDir" | "port">,
): Promise<LocalStack> {
  const dataDir = await Deno.makeTempDir({ prefix: "byok-test-stack-" });
  onTeardown(() => Deno.remove(dataDir, { recursive: true }));
  const stack = await startLocalStack({ ...options, dataDir, port: 0 });
  onTeardown(() => stack.close());
  return stack;
}
