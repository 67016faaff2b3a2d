// `npm run check`: TypeScript for the Node side, `deno check` and `deno lint` for the functions.
import { spawnSync } from "node:child_process";
import { repoRoot } from "../shared/db/migrate.ts";
import { denoBin } from "../shared/deno-bin.ts";

const steps: [string, string, string[]][] = [
  ["tsc", "npx", ["--no-install", "tsc", "-p", "tsconfig.json"]],
  // every module under supabase/functions, tests included: they run under vitest but are Deno code
  ["deno check", denoBin(), ["check", "supabase/functions"]],
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
