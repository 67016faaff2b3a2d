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
