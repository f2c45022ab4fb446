/**
 * A TCP forwarder on 127.0.0.1 in front of a real server (Postgres in the fault tests) that a
 * test can pause (bytes are held, the database "hangs"), slow down, kill (every connection
 * dropped, the port closed) and bring back on the same port.
 */

export interface TcpForwarder {
  port: number;
  /** Holds every byte in both directions until `resume`. */
  pause(): void;
  /** Delays every chunk by `ms` (0 for none). */
  delay(ms: number): void;
  resume(): void;
  /** Drops every connection and stops listening. */
  kill(): void;
  /** Listens again on the same port. */
  restart(): void;
  close(): void;
}

export function startTcpForwarder(target: { hostname: string; port: number }): TcpForwarder {
  let listener: Deno.Listener | null = null;
  let port = 0;
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  let latency = 0;
  const connections = new Set<Deno.Conn>();

  async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const read = await from.read(buffer);
        if (read === null) break;
        const chunk = buffer.slice(0, read);
        await gate;
        if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
        let written = 0;
        while (written < chunk.length) written += await to.write(chunk.subarray(written));
      }
    } catch {
      // A killed or reset connection ends the pipe.
    } finally {
      for (const conn of [from, to]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
        connections.delete(conn);
      }
    }
  }

  async function serve(current: Deno.Listener): Promise<void> {
    try {
      for await (const client of current) {
        connections.add(client);
        try {
          const server = await Deno.connect(target);
          connections.add(server);
          pipe(client, server);
          pipe(server, client);
        } catch {
          client.close();
          connections.delete(client);
        }
      }
    } catch {
      // The listener was closed.
    }
  }

  function listen(): void {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    serve(listener);
  }

  function dropAll(): void {
    listener?.close();
    listener = null;
    for (const conn of connections) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    connections.clear();
  }

  listen();
  return {
    get port() {
      return port;
    },
    pause() {
      gate = new Promise((resolve) => (open = resolve));
    },
    delay(ms) {
      latency = ms;
    },
    resume() {
      open();
      gate = Promise.resolve();
      latency = 0;
    },
    kill: dropAll,
    restart: listen,
    close() {
      open();
      dropAll();
    },
  };
}
