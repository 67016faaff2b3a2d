// The migrations the last release squashed (supabase/MIGRATIONS.md, "A release squashes"), as a project
// that pushed them before the squash has them: read from git at SQUASHED_FROM. tests/db/migrations.test.ts
// ("the squashed baseline") replays them with the project's runner, tests/deploy/migration-repair.test.ts
// with Supabase's CLI and its `migration repair`, tests/db/release-1.0-upgrade.test.ts up to the release.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { listMigrations, repoRoot } from "../../shared/db/migrate.ts";

/** The commit whose migrations the baseline squashed: the last one before the squash. */
export const SQUASHED_FROM = "a35c248b";
/** The last version of the baseline (the adoption, the squashed schema, the rows): later files are changes. */
export const BASELINE_LAST = "20261122000200";

function git(...args: string[]): string {
  return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 64 << 20 });
}

/**
 * supabase/migrations as SQUASHED_FROM had them, in a temporary folder (removed by the cleanup it
 * registers): what a project may have applied before the squash.
 */
export async function migrationsBeforeSquash(cleanups: (() => Promise<void>)[]): Promise<string> {
  try {
    git("cat-file", "-e", `${SQUASHED_FROM}^{commit}`);
  } catch {
    throw new Error(`the replay of the squashed migrations needs commit ${SQUASHED_FROM} (a clone with its history)`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), "eve-migrations-before-squash-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  for (const file of git("ls-tree", "--name-only", `${SQUASHED_FROM}:supabase/migrations`).split("\n").filter((f) => f.endsWith(".sql"))) {
    await writeFile(path.join(dir, file), git("show", `${SQUASHED_FROM}:supabase/migrations/${file}`));
  }
  return dir;
}

/** The versions SQUASHED_FROM had that supabase/migrations no longer has: what a project repairs as reverted. */
export async function squashedVersions(before: string): Promise<string[]> {
  const kept = new Set((await listMigrations()).map((m) => m.version));
  return (await listMigrations(before)).map((m) => m.version).filter((v) => !kept.has(v));
}
