// @portkey-ai/gateway (the open-source Portkey AI Gateway, from npm) as a gateway-overhead peer.
// It can be pointed at our simulator: its request handler builds the upstream URL as
// `customHost || provider.getBaseURL()` + the provider's endpoint (for `google`:
// `/v1beta/models/<model>:generateContent?key=<api key>`), `customHost` comes from the
// `x-portkey-custom-host` header, and its SSRF guard trusts localhost/127.0.0.1 by default
// (TRUSTED_CUSTOM_HOSTS). Callers speak OpenAI's chat-completions format to it; it translates.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { freePort } from "../../shared/free-port.ts";
import { sleep } from "./clock.ts";
import { stopChild } from "./deno-server.ts";

export interface Portkey {
  url: string;
  version: string;
  close(): Promise<void>;
}

export async function startPortkey(): Promise<Portkey> {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("@portkey-ai/gateway/package.json");
  const { version } = require(pkgJson) as { version: string };
  const entry = path.join(path.dirname(pkgJson), "build", "start-server.js");
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [entry, `--port=${port}`, "--headless"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_ENV: "production" },
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portkey gateway exited (${child.exitCode}): ${output}`);
    try {
      const res = await fetch(`${url}/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`portkey gateway did not start within 30 s: ${output}`);
    }
    await sleep(200);
  }
  return {
    url,
    version,
    close: () => stopChild(child, 5000),
  };
}
