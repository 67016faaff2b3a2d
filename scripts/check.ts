// `npm run check`: TypeScript for the Node side, `deno check` and `deno lint` for the functions.
import { spawnSync } from "node:child_process";
import { readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../shared/db/migrate.ts";
import { denoBin } from "../shared/deno-bin.ts";

const functionsDir = path.join(repoRoot, "supabase", "functions");
const entrypoints = readdirSync(functionsDir)
  .filter((f) => !f.startsWith("_") && existsSync(path.join(functionsDir, f, "index.ts")))
  .map((f) => path.join("supabase", "functions", f, "index.ts"));

const steps: [string, string, string[]][] = [
  ["tsc", "npx", ["--no-install", "tsc", "-p", "tsconfig.json"]],
  ["deno check", denoBin(), ["check", ...entrypoints]],
  ["deno lint", denoBin(), ["lint"]],
];
for (const [name, cmd, args] of steps) {
  console.log(`> ${name}`);
  const r = spawnSync(cmd, args, { cwd: repoRoot, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`${name} failed`);
    process.exit(r.status ?? 1);
  }
}
