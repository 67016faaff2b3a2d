// A TLS front for a plain HTTP server (the simulator): each connection is taken over TLS, with a
// certificate made for the run (shared/test-cert.ts), and piped as it is to the server. HTTP/1.1 only
// (ALPN), as the bytes are passed on unread. Deno trusts it through DENO_CERT = `caFile`.
import net from "node:net";
import tls from "node:tls";
import { makeTestCert } from "../../shared/test-cert.ts";

export interface TlsFront {
  /** The server's URL over TLS. */
  url: string;
  /** The authority's certificate file: DENO_CERT for the Deno processes that call `url`. */
  caFile: string;
  close(): Promise<void>;
}

export async function tlsFront(plainUrl: string): Promise<TlsFront> {
  const target = new URL(plainUrl);
  const cert = makeTestCert();
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: cert.key, cert: cert.cert, ALPNProtocols: ["http/1.1"] }, (socket) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [socket, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        socket.destroy();
        upstream.destroy();
      });
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    caFile: cert.caFile,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      cert.remove();
    },
  };
}
