// `npm run db -- clean`: the local databases under the server home whose checkout is gone are removed;
// one whose checkout is there, one that names no checkout and one whose server runs are kept.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanLocalDatabases, recordCheckout } from "../../scripts/local-db.ts";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

describe("npm run db -- clean", () => {
  it("removes the databases of checkouts that are gone, and only those", () => {
    const home = tmp("eve-home-");
    const here = tmp("eve-checkout-");
    writeFileSync(path.join(here, "package.json"), "{}");
    const database = (id: string, checkout: string | null, pid?: number) => {
      const dir = path.join(home, "checkouts", id);
      mkdirSync(path.join(dir, "postgres", "data"), { recursive: true });
      if (checkout !== null) recordCheckout(dir, checkout);
      if (pid !== undefined) writeFileSync(path.join(dir, "postgres", "data", "postmaster.pid"), `${pid}\n`);
      return dir;
    };
    const kept = database("here-1", here);
    const gone = database("gone-2", path.join(here, "deleted-worktree"));
    const unknown = database("old-3", null);
    const running = database("running-4", path.join(here, "deleted-too"), process.pid);

    expect(cleanLocalDatabases(home, true).find((c) => c.dir === gone)?.outcome).toBe("removed");
    expect(existsSync(gone)).toBe(true);

    const cleaned = cleanLocalDatabases(home);
    expect(Object.fromEntries(cleaned.map((c) => [path.basename(c.dir), c.outcome]))).toEqual({
      "here-1": "kept: its checkout is there",
      "gone-2": "removed",
      "old-3": "kept: no record of its checkout",
      "running-4": "kept: its server is running",
    });
    expect([kept, gone, unknown, running].map(existsSync)).toEqual([true, false, true, true]);
    expect(cleanLocalDatabases(path.join(home, "none"))).toEqual([]);
  });
});
