// Where the Deno binary is. The npm package `deno` cannot be locked here (the registry this project
// installs from does not serve its other platforms' packages, so `npm ci` rejects the lock file), so
// the project depends on the Linux x64 build directly, as an optional dependency that other
// platforms skip. Order: DENO_BIN, that package, `deno` on PATH.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export function denoBin(): string {
  if (process.env.DENO_BIN) return process.env.DENO_BIN;
  try {
    const pkg = createRequire(import.meta.url).resolve("@deno/linux-x64-glibc/package.json");
    const bin = path.join(path.dirname(pkg), "deno");
    if (existsSync(bin)) return bin;
  } catch {
    // not installed on this platform
  }
  if (spawnSync("deno", ["--version"], { stdio: "ignore" }).status === 0) return "deno";
  throw new Error("Deno 2.x not found: on Linux x64 run `npm ci`; elsewhere install Deno 2 (https://deno.com) or set DENO_BIN");
}
