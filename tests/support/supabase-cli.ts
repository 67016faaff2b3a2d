// Supabase's own CLI (npm `supabase`, a devDependency pinned exactly), run as a deploy runs it: its
// `db lint`, `db push`, `migration list` take `--db-url`. Found in this checkout's node_modules/.bin, never
// fetched by npx: a test uses the pinned version or says it is missing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../shared/db/migrate.ts";

/** The CLI's executable in node_modules/.bin, or null when `npm ci` did not install it. */
export function supabaseCli(): string | null {
  const bin = path.join(repoRoot, "node_modules", ".bin", "supabase");
  return existsSync(bin) ? bin : null;
}

/**
 * A `--db-url` for the CLI: the test server speaks no TLS, and the CLI asks for it unless the URL says
 * `sslmode=disable` ("tls error (The server does not support SSL connections)").
 */
export function cliDbUrl(url: string): string {
  const u = new URL(url);
  u.searchParams.set("sslmode", "disable");
  return u.toString();
}

/** Runs the CLI; its exit status and what it printed on each stream. */
export function runSupabase(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const bin = supabaseCli();
  if (bin === null) throw new Error("the Supabase CLI is not installed (node_modules/.bin/supabase): run `npm ci`");
  const r = spawnSync(bin, args, { cwd: repoRoot, encoding: "utf8", timeout: 120_000, env: { ...process.env, DO_NOT_TRACK: "1" } });
  return { status: r.status, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}
