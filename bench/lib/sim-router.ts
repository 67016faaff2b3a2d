// One Google base URL in front of several simulators: llm-invoke has a single GOOGLE_AI_BASE_URL,
// and the fidelity part needs one simulator per counting mode. Requests are routed by the model in
// the path (/v1beta/models/<model>:<verb>) and piped through unchanged; the extra loopback hop
// (well under a millisecond) sits inside the simulated network delay.
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

const MODEL_IN_PATH = /^\/v1(?:beta)?\/models\/([^/:?]+)/;

export async function startSimRouter(routes: ReadonlyMap<string, string>) {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const server = createServer((req, res) => {
    const model = MODEL_IN_PATH.exec(req.url ?? "")?.[1];
    const target = model === undefined ? undefined : routes.get(decodeURIComponent(model));
    if (target === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`sim-router: no simulator for ${req.url}`);
      return;
    }
    const to = new URL(target);
    const upstream = request(
      { agent, host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`sim-router: ${error.message}`);
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy(); // the caller gave up: so does the hop
    });
    req.pipe(upstream);
  });
  server.maxConnections = Infinity;
  await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 2048 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
