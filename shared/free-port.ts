// A TCP port nobody listens on right now, for servers started by tests, benchmarks and the local
// stack (the kernel picks it: listen on port 0, read the port, close).
import net from "node:net";

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What a server says when its port is taken: PostgreSQL, PgBouncer, Prometheus and Node each word it so. */
const ADDRESS_IN_USE = /address already in use/i;

export interface OnFreePortOptions {
  /** Starts in all, at least 1. */
  tries?: number;
  /** Told each port found taken before the next start. */
  onTaken?: (port: number) => void;
  /** Where ports come from (a test may hand out one it holds). */
  pick?: () => Promise<number>;
}

/**
 * `start` on a port freePort picked, and again on another when that port was taken before the server
 * bound it (freePort closes the port it found, and another process may bind it first). `start` throws
 * when the server does not start, its error's message carrying what the server said; a port taken is
 * told by those words. Any other failure, or the last try's, is thrown as it is.
 */
export async function startOnFreePort<T>(start: (port: number) => Promise<T>, options: OnFreePortOptions = {}): Promise<T> {
  const tries = Math.max(1, options.tries ?? 3);
  for (let attempt = 1; ; attempt++) {
    const port = await (options.pick ?? freePort)();
    try {
      return await start(port);
    } catch (error) {
      if (attempt >= tries || !ADDRESS_IN_USE.test(error instanceof Error ? error.message : String(error))) throw error;
      options.onTaken?.(port);
    }
  }
}
