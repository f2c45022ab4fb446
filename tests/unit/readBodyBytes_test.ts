import { assert, assertEquals } from "../support/assert.ts";
import { readBodyBytes } from "../../supabase/functions/_shared/http/pipeline.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";

const LIMIT = 64 * 1024;

/** What the handler saw: the body's size, `null` for no body, or the error code it failed with. */
type Seen = number | null | string;

/**
 * A real Deno server whose handler reads the body with `readBodyBytes(LIMIT)`, so requests come
 * in as the runtime builds them (content-length or chunked, as the client sent them).
 */
async function withReader(use: (url: string) => Promise<void>): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      let seen: Seen;
      try {
        const bytes = await readBodyBytes(request, LIMIT);
        seen = bytes === null ? null : bytes.byteLength;
      } catch (error) {
        seen = error instanceof AppError ? error.code : String(error);
      }
      return Response.json({ seen });
    },
  );
  try {
    await use(`http://127.0.0.1:${server.addr.port}/`);
  } finally {
    await server.shutdown();
  }
}

async function post(url: string, body: BodyInit | null): Promise<Seen> {
  const response = await fetch(url, { method: "POST", body });
  return (await response.json()).seen;
}

/** A chunked body of `chunks` chunks of 16 KiB; `pulled` counts how many the reader took. */
function chunkedBody(chunks: number): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === chunks) return controller.close();
      sent++;
      controller.enqueue(new Uint8Array(16 * 1024).fill(120));
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => sent };
}

Deno.test("readBodyBytes reads a declared-length body whole, and refuses one declared too large", async () => {
  await withReader(async (url) => {
    assertEquals(await post(url, "x".repeat(1000)), 1000);
    assertEquals(await post(url, "x".repeat(LIMIT)), LIMIT);
    assertEquals(await post(url, "x".repeat(LIMIT + 1)), "PAYLOAD_TOO_LARGE");
    // No body at all, and an empty one, are both "no body".
    assertEquals(await post(url, null), null);
    assertEquals(await post(url, ""), null);
  });
});

Deno.test("readBodyBytes counts a chunked body as it arrives and stops reading once it is too large", async () => {
  await withReader(async (url) => {
    const small = chunkedBody(3);
    assertEquals(await post(url, small.body), 3 * 16 * 1024);

    const huge = chunkedBody(10_000); // 160 MB offered against a 64 KiB limit
    assertEquals(await post(url, huge.body), "PAYLOAD_TOO_LARGE");
    // The reader gave up after the limit: the client was never asked for most of the body (the
    // socket buffers between the two ends hold a few MB at most).
    assert(huge.pulled() < 1_000, `the client was asked for ${huge.pulled()} chunks`);
  });
});

Deno.test("readBodyBytes reads a chunked body built in the same process (no content-length)", async () => {
  const request = new Request("http://127.0.0.1/", {
    method: "POST",
    body: chunkedBody(2).body,
  });
  assertEquals(request.headers.get("content-length"), null);
  assertEquals((await readBodyBytes(request, LIMIT))?.byteLength, 2 * 16 * 1024);
});
