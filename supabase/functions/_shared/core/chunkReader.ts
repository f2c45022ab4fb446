/**
 * Reading an upstream body without Deno's per-read allocation: one reused buffer, exact-size
 * copies handed on; each read bounded in time (`readWithin`, the proxy's relay and
 * conversation-run's stream parser), or a whole body bounded in size and time, read straight into
 * one buffer (`readWhole`).
 */

/** How much one read from the upstream may fill. */
const READ_BUFFER_BYTES = 64 * 1024;

/** An upstream body read chunk by chunk; each chunk is the caller's to keep. */
export interface ChunkReader {
  /** The next chunk, or null at the end of the body. */
  read(): Promise<Uint8Array | null>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * Reads `body` into one reused buffer and hands on exact-size copies, since Deno's default reader
 * gives every read a fresh 64 KiB buffer (measured: bench/README.md#hot-path-notes).
 */
export function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    return defaultChunkReader(body);
  }
  let buffer = new Uint8Array(READ_BUFFER_BYTES);
  return {
    async read() {
      while (true) {
        const { done, value } = await reader.read(buffer);
        if (!value) return null;
        buffer = new Uint8Array(value.buffer);
        if (value.byteLength > 0) return value.slice();
        if (done) return null;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

/** A body that is not a byte stream (one built in JS): its chunks are already the caller's. */
function defaultChunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  const reader = body.getReader();
  return {
    async read() {
      while (true) {
        const { done, value } = await reader.read();
        if (done) return null;
        if (value.byteLength > 0) return value;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

export interface ReadLimit {
  /** The read fails with `timeout()` once this many ms pass without a chunk. */
  ms: number;
  timeout(): unknown;
  /** Aborting it fails the read with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The next chunk, unless `limit.ms` pass first or `limit.signal` aborts: then the body is
 * cancelled and the read fails. The reader is cancelled here, not only through the signal given to
 * fetch: Deno's fetch follows that signal through a weak reference, so after a garbage collection
 * an abort no longer reaches a body being read, and a stalled read waited forever.
 */
export async function readWithin(
  reader: ChunkReader,
  limit: ReadLimit,
): Promise<Uint8Array | null> {
  const guard = guardReads(reader, limit);
  try {
    return await Promise.race([reader.read(), guard.stopped]);
  } finally {
    guard.release();
  }
}

/**
 * A promise that fails, and cancels the reader, when `limit.ms` pass or `limit.signal` aborts
 * (already aborted: throws at once); `release()` clears its timer and listener once the reads it
 * guards are done.
 */
function guardReads(
  reader: Pick<ChunkReader, "cancel">,
  limit: ReadLimit,
): { stopped: Promise<never>; release(): void } {
  const { signal } = limit;
  if (signal?.aborted) {
    reader.cancel(signal.reason).catch(() => {});
    throw signal.reason;
  }
  let stop!: (reason: unknown) => void;
  const stopped = new Promise<never>((_, reject) => {
    stop = (reason) => {
      reject(reason);
      reader.cancel(reason).catch(() => {});
    };
  });
  stopped.catch(() => {});
  const onAbort = () => stop(signal!.reason);
  const timer = setTimeout(() => stop(limit.timeout()), limit.ms);
  signal?.addEventListener("abort", onAbort, { once: true });
  return {
    stopped,
    release() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}

/** As `ReadLimit`, but `ms` bounds the whole read, not each chunk. */
export interface WholeReadLimit extends ReadLimit {
  /** The body may hold at most this many bytes; past it the read fails with `overflow()`. */
  maxBytes: number;
  overflow(): unknown;
  /** The length the body declares (`content-length`), when it declares one: the buffer's size. */
  declaredBytes?: number;
}

/** The first buffer of a whole read whose body declares no length; it doubles as it fills. */
const UNDECLARED_START_BYTES = 16 * 1024;

/**
 * A whole body as one byte array, unless it grows past `limit.maxBytes`, `limit.ms` pass first or
 * `limit.signal` aborts: then the body is cancelled (closing its connection) and the read fails.
 * Raced for the same reason as `readWithin`.
 */
export async function readWhole(
  body: ReadableStream<Uint8Array>,
  limit: WholeReadLimit,
): Promise<Uint8Array<ArrayBuffer>> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    return await readWholeChunks(chunkReader(body), limit);
  }
  // Read straight into one buffer of the declared length, plus one byte that shows a body longer
  // than it declared: a 64 KiB buffer and copies per answer cost CPU (bench/README.md#hot-path-notes).
  const declared = limit.declaredBytes ?? NaN;
  let buffer = new Uint8Array(
    Math.min(declared >= 0 ? declared : UNDECLARED_START_BYTES, limit.maxBytes) + 1,
  );
  let filled = 0;
  const guard = guardReads(reader, limit);
  try {
    for (;;) {
      if (filled === buffer.byteLength) {
        if (filled > limit.maxBytes) throw overflowed(reader, limit);
        const grown = new Uint8Array(Math.min(filled * 2, limit.maxBytes + 1));
        grown.set(buffer);
        buffer = grown;
      }
      const { done, value } = await Promise.race([
        reader.read(buffer.subarray(filled)),
        guard.stopped,
      ]);
      if (!value) throw new TypeError("the body was cancelled while being read");
      buffer = new Uint8Array(value.buffer);
      filled += value.byteLength;
      if (done) return buffer.subarray(0, filled);
    }
  } finally {
    guard.release();
  }
}

/** `readWhole` of a body that is not a byte stream (one built in JS), chunk by chunk. */
async function readWholeChunks(
  reader: ChunkReader,
  limit: WholeReadLimit,
): Promise<Uint8Array<ArrayBuffer>> {
  const guard = guardReads(reader, limit);
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const chunk = await Promise.race([reader.read(), guard.stopped]);
      if (chunk === null) return concatChunks(chunks);
      size += chunk.byteLength;
      if (size > limit.maxBytes) throw overflowed(reader, limit);
      chunks.push(chunk);
    }
  } finally {
    guard.release();
  }
}

/** Cancels a body past its byte cap; returns the failure to throw. */
function overflowed(reader: Pick<ChunkReader, "cancel">, limit: WholeReadLimit): unknown {
  const reason = limit.overflow();
  reader.cancel(reason).catch(() => {});
  return reason;
}

/** Joins chunks into one byte array. */
export function concatChunks(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1 && chunks[0].buffer instanceof ArrayBuffer) {
    return chunks[0] as Uint8Array<ArrayBuffer>;
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
