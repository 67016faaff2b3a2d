// @portkey-ai/gateway (the open-source Portkey AI Gateway, from npm) as a gateway-overhead peer.
// It can be pointed at our simulator: its request handler builds the upstream URL as
// `customHost || provider.getBaseURL()` + the provider's endpoint (for `google`:
// `/v1beta/models/<model>:generateContent?key=<api key>`), `customHost` comes from the
// `x-portkey-custom-host` header, and its SSRF guard trusts localhost/127.0.0.1 by default
// (TRUSTED_CUSTOM_HOSTS). Callers speak OpenAI's chat-completions format to it; it translates.
import { createRequire } from "node:module";
import path from "node:path";
import { freePort } from "../../shared/free-port.ts";
import { startServerProcess, type ServerProcess } from "./server-process.ts";

export type Portkey = ServerProcess & { version: string };

export async function startPortkey(): Promise<Portkey> {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("@portkey-ai/gateway/package.json");
  const { version } = require(pkgJson) as { version: string };
  const entry = path.join(path.dirname(pkgJson), "build", "start-server.js");
  const port = await freePort();
  const args = [entry, `--port=${port}`, "--headless"];
  const env = { ...process.env, NODE_ENV: "production" };
  return { ...(await startServerProcess({ name: "portkey gateway", command: process.execPath, args, port, env })), version };
}
