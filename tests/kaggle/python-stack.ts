// Starts the gateway for the Python client's tests (clients/python/test_eve_gateway.py) and prints
// one JSON line on stdout when it is ready:
//   {"url", "service_key", "control_url", "simulator_url"}
// then serves until stdin closes or it gets SIGTERM/SIGINT, and cleans up (stack, database, server).
//
// The database: a clone of EVE_TEST_TEMPLATE on EVE_TEST_PG_URL (as `npm test` provides), else a
// PostgreSQL started here with the migrated template. The control server lets the Python tests,
// which have no PostgreSQL driver, run SQL and read the captured log lines:
//   POST /sql  {"query": "...", "params": [...]}  -> {"rows": [...]}
//   GET  /logs                                      -> {"lines": [...]}
//
//   npx tsx tests/kaggle/python-stack.ts
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { cloneDatabase, connect, dropDatabase } from "../../shared/db/migrate.ts";
import { type PostgresServer, startPostgres } from "../../shared/db/postgres-server.ts";
import { createTemplateDatabase } from "../support/template.ts";
import { startKaggleStack } from "./stack.ts";

const verbose = process.env.EVE_STACK_VERBOSE === "1";
const note = (line: string) => process.stderr.write(`[python-stack] ${line}\n`);

let server: PostgresServer | undefined;
let serverUrl = process.env.EVE_TEST_PG_URL;
let template = process.env.EVE_TEST_TEMPLATE;
if (!serverUrl || !template) {
  server = await startPostgres();
  serverUrl = server.url;
  template = await createTemplateDatabase(serverUrl);
}
const dbName = `python_client_${randomBytes(4).toString("hex")}`;
const databaseUrl = await cloneDatabase(serverUrl, template, dbName);
const sql = connect(databaseUrl, { max: 4 });
const stack = await startKaggleStack({ databaseUrl, echo: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });

const control = http.createServer((req, res) => {
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (req.method === "GET" && req.url === "/logs") return send(200, { lines: stack.logs });
  if (req.method !== "POST" || req.url !== "/sql") return send(404, { error: "no such route" });
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (text += chunk));
  req.on("end", async () => {
    try {
      const { query, params } = JSON.parse(text) as { query: string; params?: unknown[] };
      const rows = await sql.unsafe(query, (params ?? []) as never[]);
      send(200, { rows: [...rows] });
    } catch (error) {
      send(400, { error: (error as Error).message });
    }
  });
});
await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));

let stopping = false;
async function stop(code = 0): Promise<never> {
  if (!stopping) {
    stopping = true;
    control.close();
    await stack.close().catch((e) => note(`closing the stack: ${e}`));
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropDatabase(serverUrl!, dbName).catch((e) => note(`dropping ${dbName}: ${e}`));
    await server?.stop();
  }
  process.exit(code);
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.on("close", () => void stop());
process.stdin.resume();

process.stdout.write(`${JSON.stringify({
  url: stack.url,
  service_key: stack.serviceKey,
  control_url: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
  simulator_url: stack.simulator.url,
})}\n`);
