// A Deno HTTP server started for a benchmark part from an entry script of its own, the way the local
// functions server starts a function (scripts/serve-functions.ts): the same Deno binary, permissions
// and flags, the function's deno.json, the repository root as working directory, and the same
// environment (the parent's, then supabase/functions/.env, then `env`, plus PORT). The port is also
// given as DENO_SERVE_ADDRESS, for entries whose Deno.serve takes no port (the Edge Runtime's way).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_FUNCTIONS_DIR, DENO_FLAGS, DENO_PERMISSIONS, parseDotenv } from "../../scripts/serve-functions.ts";
import { denoBin } from "../../shared/deno-bin.ts";
import { freePort } from "../../shared/free-port.ts";
import { startServerProcess, type ServerProcess } from "./server-process.ts";

const REPO_ROOT = path.resolve(DEFAULT_FUNCTIONS_DIR, "..", "..");

export async function startDenoServer(opts: {
  /** The entry script. */
  script: string;
  /** The deno.json its imports resolve by. */
  config: string;
  env: Record<string, string>;
  /** Each output line, as it comes. */
  log?: (line: string) => void;
}): Promise<ServerProcess> {
  const port = await freePort();
  const envFile = path.join(DEFAULT_FUNCTIONS_DIR, ".env");
  const env = {
    NO_COLOR: "1",
    ...process.env,
    ...(existsSync(envFile) ? parseDotenv(readFileSync(envFile, "utf8")) : {}),
    ...opts.env,
    PORT: String(port),
    DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
  };
  const args = ["run", ...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt", "--config", opts.config, opts.script];
  return startServerProcess({ name: path.basename(opts.script), command: denoBin(), args, port, env, cwd: REPO_ROOT, log: opts.log });
}
