// Supabase's own CLI (npm `supabase`, pinned in package.json; its binary comes from the optional
// platform package @supabase/cli-<os>-<arch>). Without Docker it runs what reaches a database by URL:
// `db push`, `migration list`, `migration repair`, `db lint`, `inspect db`. The local stack's database
// and the deploy test are built with its `db push`, as a real project is (migrate.ts says where the
// project's own runner stays, and why).
import { spawn } from "node:child_process";
import path from "node:path";
import { repoRoot } from "./migrate.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI's launcher in node_modules/.bin, as `npx supabase` finds it. */
export const SUPABASE_CLI = path.join(repoRoot, "node_modules", ".bin", "supabase");

/** Runs `supabase <args>` in the project (its supabase/ folder is the CLI's), never prompting. */
export function supabase(args: string[], { cwd = repoRoot, env = {} }: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    // No telemetry, no update check: CI and the tests reach no network but the local one.
    const child = spawn(SUPABASE_CLI, args, {
      cwd,
      env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", SUPABASE_NO_UPDATE_NOTIFIER: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("error", (err) => resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` }));
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** `url` as the CLI's --db-url: the local servers speak no TLS, which the CLI otherwise asks for first. */
export function cliDbUrl(url: string): string {
  const u = new URL(url);
  if (["127.0.0.1", "localhost", "::1", "[::1]"].includes(u.hostname) && !u.searchParams.has("sslmode")) {
    u.searchParams.set("sslmode", "disable");
  }
  return u.toString();
}

/**
 * `supabase db push --db-url <url> --yes [--include-seed]`: the migrations not yet recorded, then (with
 * includeSeed) supabase/seed.sql unless its hash is recorded. Returns the migrations applied now
 * ("<version>_<name>"); throws with the CLI's words when it fails.
 */
export async function dbPush(url: string, { includeSeed = false }: { includeSeed?: boolean } = {}): Promise<string[]> {
  const run = await supabase(["db", "push", "--db-url", cliDbUrl(url), "--yes", ...(includeSeed ? ["--include-seed"] : [])]);
  if (run.code !== 0) throw new Error(`supabase db push failed (exit ${run.code}):\n${(run.stderr + run.stdout).trim()}`);
  return [...(run.stdout + run.stderr).matchAll(/Applying migration (\d{14}_\S+)\.sql\.\.\./g)].map((m) => m[1]!);
}

/**
 * `supabase migration list --db-url <url>`: each row's local and remote version, as the CLI prints them
 * (a version only one side has leaves the other undefined). Throws with the CLI's words when it fails.
 */
export async function migrationList(url: string): Promise<[local: string | undefined, remote: string | undefined][]> {
  const run = await supabase(["migration", "list", "--db-url", cliDbUrl(url)]);
  if (run.code !== 0) throw new Error(`supabase migration list failed (exit ${run.code}):\n${(run.stderr + run.stdout).trim()}`);
  // One line per row, "` local ` | ` remote ` | time": [ \t] keeps a match on its own line.
  const row = /^[ \t]*`?(\d{14})?[ \t]*`?[ \t]*\|[ \t]*`?(\d{14})?[ \t]*`?[ \t]*\|/;
  return run.stdout.split("\n").flatMap((line) => {
    const m = row.exec(line);
    return m && (m[1] || m[2]) ? [[m[1], m[2]] as [string | undefined, string | undefined]] : [];
  });
}
