// Every function body is checked once the whole schema is loaded (shared/db/function-bodies.ts): the
// schema files are applied with check_function_bodies off, so without this a broken body would pass
// db:diff and the migration tests and fail at the first request ("syntax error at end of input", no
// line). Building from supabase/schemas (what db:diff and tests/db/schemas.test.ts do) now fails,
// naming the function and the line of its body.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applySchemas, schemasDir } from "../../shared/db/migrate.ts";
import { BrokenFunctionBodies, brokenFunctionBodies } from "../../shared/db/function-bodies.ts";
import { diffSchemas, ROWS_AND_SCHEDULE } from "../../shared/db/schema-diff.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { freshDatabase, testServer } from "../support/test-database.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The line of `marker` within the body (dollar quotes) of the function whose header holds `header`. */
function bodyLine(text: string, header: string, marker: string): number {
  const start = text.indexOf("$$", text.indexOf(header)) + 2;
  return text.slice(start, text.indexOf(marker, start)).split("\n").length;
}

/** A copy of supabase/schemas with `from` replaced by `to` in `file` (it must be there once). */
async function brokenCopy(edits: [file: string, from: string, to: string][]): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "eve-broken-schemas-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await cp(schemasDir, dir, { recursive: true });
  for (const [file, from, to] of edits) {
    const text = await readFile(path.join(dir, file), "utf8");
    expect(text.split(from).length, `${file} holds the text the case breaks, once`).toBe(2);
    await writeFile(path.join(dir, file), text.replace(from, () => to));
  }
  return dir;
}

// A syntax error in an ELSIF of a PL/pgSQL function, and a misspelt column in a SQL-language function.
const ELSIF: [string, string, string] = ["25_models.sql", "  elsif p_status = 'invalid' then\n", "  elsif p_status = 'invalid'\n"];
const COLUMN: [string, string, string] = ["10_keys_and_limits.sql", "order by p.name\n$$;", "order by p.nmae\n$$;"];

describe("function bodies", () => {
  it("every body of the schema compiles with the whole schema loaded", async () => {
    const db = await freshDatabase("bodies");
    cleanups.push(() => db.drop());
    expect(await brokenFunctionBodies(db.sql)).toEqual([]);
  });

  it("a broken body stops the build from supabase/schemas, naming the function and its line", async () => {
    const dir = await brokenCopy([ELSIF, COLUMN]);
    const models = await readFile(path.join(schemasDir, ELSIF[0]), "utf8");
    const keys = await readFile(path.join(schemasDir, COLUMN[0]), "utf8");
    const sql = await emptySupabaseDatabase("broken_bodies", cleanups);
    const err = await applySchemas(sql, { dir, migrations: [ROWS_AND_SCHEDULE] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenFunctionBodies);
    const broken = (err as BrokenFunctionBodies).broken;
    expect(broken.map((b) => b.name).sort()).toEqual([
      "public.google_ai_provider_list()",
      expect.stringMatching(/^public\.google_ai_record_key_check\(/),
    ]);
    const byName = (prefix: string) => broken.find((b) => b.name.startsWith(prefix))!;
    // PL/pgSQL names the line where it stopped looking for THEN: the statement after the broken ELSIF.
    expect(byName("public.google_ai_record_key_check").line)
      .toBe(bodyLine(models, "FUNCTION public.google_ai_record_key_check(", ELSIF[1]) + 1);
    expect(byName("public.google_ai_record_key_check").message).toMatch(/missing "THEN"/);
    expect(byName("public.google_ai_provider_list").line)
      .toBe(bodyLine(keys, "FUNCTION public.google_ai_provider_list(", "order by p.name"));
    expect(byName("public.google_ai_provider_list").message).toMatch(/column p\.nmae does not exist/);
    expect((err as Error).message).toMatch(/public\.google_ai_provider_list\(\) line \d+: column p\.nmae does not exist/);
  });

  it("db:diff writes nothing from a schema with a broken body, and names it", async () => {
    const dir = await brokenCopy([COLUMN]);
    const err = await diffSchemas(testServer().serverUrl, { schemas: dir }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenFunctionBodies);
    expect((err as Error).message).toMatch(/public\.google_ai_provider_list\(\) line 2: column p\.nmae does not exist/);
  });
});
