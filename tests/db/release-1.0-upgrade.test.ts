// What 1.0.0 gives a project deployed before it (CHANGELOG.md, "Upgrading"): it pushes the migrations of
// 1.0.0-rc.1 first (the chain the release squashed, read from git at SQUASHED_FROM), whose two record
// migrations move its rows under the former words to the new ones (20261130215430_former_words_in_rows)
// and its metric totals under the new family names and labels, added to any total already there
// (20261130215500_former_metric_totals_renamed), on a project migrated up to the release's first
// migration, with such rows; then the squashed release's files apply nothing. The squash dropped the two
// (supabase/MIGRATIONS.md): a project built from the release's files has no such rows. And a
// `finalize_lost` line the former functions logged replays once scripts/finalize-lost-before-1.0.jq has
// converted it, where as logged it is refused.
import { spawnSync } from "node:child_process";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, listMigrations, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { BASELINE_LAST, migrationsBeforeSquash } from "../support/squashed-migrations.ts";
import { reservation, type ReserveAnswer } from "../support/reserve-answer.ts";

/** The release's first migration: the ones before it are what a project deployed before 1.0.0 has. */
const RELEASE_FIRST = "20261130215430";
const MODEL = "upgrade-model";

const cleanups: (() => Promise<void>)[] = [];
let sql: Sql;
/** The chain as SQUASHED_FROM had it (1.0.0-rc.1's migrations). */
let rc: string;

beforeAll(async () => {
  sql = await emptySupabaseDatabase("release_upgrade", cleanups);
  rc = await migrationsBeforeSquash(cleanups);
  const before = await mkdtemp(path.join(tmpdir(), "eve-before-1.0-"));
  cleanups.push(() => rm(before, { recursive: true, force: true }));
  for (const m of (await listMigrations(rc)).filter((m) => m.version < RELEASE_FIRST)) {
    await copyFile(m.file, path.join(before, path.basename(m.file)));
  }
  await applyMigrations(sql, { dir: before });
  // Rows the former functions wrote.
  await sql`insert into public.google_ai_attempts (status, caller, model, error_code, refusal_cause) values
    ('google_error', 'bot', ${MODEL}, null, null), ('cut', 'bot', ${MODEL}, 'stream_cut_by_google', null),
    ('refused', 'bot', ${MODEL}, null, 'google_cooldown'), ('succeeded', 'bot', ${MODEL}, null, null)`;
  await sql`insert into public.google_ai_metric_totals (family, suffix, labels, le, value) values
    ('eve_gateway_attempts_total', '', 'model="m",status="google_error"', 'NaN', 4),
    ('eve_gateway_attempts_total', '', 'model="m",status="upstream_error"', 'NaN', 5),
    ('eve_gateway_refusals_total', '', 'model="m",cause="google_cooldown"', 'NaN', 2),
    ('eve_gateway_google_429_total', '', 'model="m",cause="day"', 'NaN', 3),
    ('eve_gateway_google_calls_total', '', 'model="m",status="google_error"', 'NaN', 6),
    ('eve_gateway_google_latency_seconds', '_bucket', 'model="m"', 0.5, 7)`;
  const applied = await applyMigrations(sql, { dir: rc });
  expect(applied.slice(0, 2)).toEqual([`${RELEASE_FIRST}_former_words_in_rows`, "20261130215433_former_names_dropped"]);
  // The squashed release's own files: recorded already (their versions are kept), so nothing to apply
  // but what came after the squash.
  expect((await applyMigrations(sql)).filter((m) => m.slice(0, 14) <= BASELINE_LAST)).toEqual([]);
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("a project deployed before 1.0.0, after db push", () => {
  it("its attempt rows say the new words", async () => {
    const rows = await sql`select status, error_code, refusal_cause from public.google_ai_attempts order by id`;
    expect(rows).toEqual([
      { status: "upstream_error", error_code: null, refusal_cause: null },
      { status: "cut", error_code: "stream_cut_by_upstream", refusal_cause: null },
      { status: "refused", error_code: null, refusal_cause: "upstream_cooldown" },
      { status: "succeeded", error_code: null, refusal_cause: null },
    ]);
  });

  it("its metric totals go on under the new names, added to the totals already there", async () => {
    const rows = await sql<{ family: string; suffix: string; labels: string; le: string; value: string }[]>`
      select family, suffix, labels, le::text, value::text from public.google_ai_metric_totals order by 1, 2, 3, 4`;
    expect(rows).toEqual([
      { family: "eve_gateway_attempts_total", suffix: "", labels: 'model="m",status="upstream_error"', le: "NaN", value: "9" },
      { family: "eve_gateway_refusals_total", suffix: "", labels: 'model="m",cause="upstream_cooldown"', le: "NaN", value: "2" },
      { family: "eve_gateway_upstream_429_total", suffix: "", labels: 'model="m",cause="day"', le: "NaN", value: "3" },
      { family: "eve_gateway_upstream_calls_total", suffix: "", labels: 'model="m",status="upstream_error"', le: "NaN", value: "6" },
      { family: "eve_gateway_upstream_latency_seconds", suffix: "_bucket", labels: 'model="m"', le: "0.5", value: "7" },
    ]);
  });

  it("the same migrations again change nothing", async () => {
    const read = () => Promise.all([sql`select * from public.google_ai_metric_totals order by 1, 2, 3, 4`,
      sql`select * from public.google_ai_attempts order by id`]);
    const before = await read();
    const rowMigrations = ["former_words_in_rows", "former_metric_totals_renamed"];
    for (const m of (await listMigrations(rc)).filter((m) => rowMigrations.includes(m.name))) {
      await sql.begin(async (tx) => void (await tx.file(m.file)));
    }
    expect(await read()).toEqual(before);
  });
});

describe("a project built from 1.0.0's files alone (the squash dropped the two record migrations)", () => {
  it("holds no former word, and its status check refuses one", async () => {
    const fresh = await emptySupabaseDatabase("release_fresh", cleanups);
    await applyMigrations(fresh);
    const [{ n }] = await fresh<{ n: number }[]>`select ((select count(*) from public.google_ai_attempts)
      + (select count(*) from public.google_ai_metric_totals where family like 'eve\\_gateway\\_google\\_%'))::int as n`;
    expect(n).toBe(0);
    await expect(fresh`insert into public.google_ai_attempts (status, caller, model) values ('google_error', 'bot', ${MODEL})`)
      .rejects.toMatchObject({ code: "23514" });
  });
});

describe("a finalize_lost line logged before 1.0.0", () => {
  async function admit(): Promise<string> {
    const [row] = await sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(now(),
      jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [MODEL], estimated_tokens: 50,
        caller: "upgrade" })}::text::jsonb)) as r`;
    expect(row!.r.ok, JSON.stringify(row!.r)).toBe(true);
    return row!.r.reservation_id!;
  }
  const replay = async (line: object) => {
    const [row] = await sql<{ r: Record<string, unknown>[] }[]>`select public.google_ai_finalize_calls(
      jsonb_build_array(${JSON.stringify(line)}::text::jsonb)) as r`;
    return row!.r[0]!;
  };
  /** The lines through the jq program the changelog gives, one JSON object a line. */
  const converted = (lines: object[]): object[] => {
    const jq = spawnSync("jq", ["-c", "-f", path.join(repoRoot, "scripts", "finalize-lost-before-1.0.jq")], {
      input: lines.map((l) => JSON.stringify(l)).join("\n"),
      encoding: "utf8",
    });
    expect(jq.error, "jq must be installed (.ci/run installs it)").toBeUndefined();
    expect(jq.stderr).toBe("");
    return jq.stdout.trim().split("\n").map((l) => JSON.parse(l) as object);
  };

  beforeAll(async () => {
    await sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id)
              values ('upgrade-key', 'openai', 'UPGRADE_KEY', 'org-upgrade')`;
    await sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, provider_limits)
              values (${MODEL}, 'openai', 1000, 1000000, 'keep')`;
  });

  it("in the former flat shape and words: refused as logged, written once converted", async () => {
    const [success, failure, cut] = [await admit(), await admit(), await admit()];
    const lines = [
      { reservation_id: success, outcome: "succeeded", input_tokens: 377, output_tokens: 96, http_status: 200,
        latency_ms: 845, cooldown_until_pacific_midnight: false, replay_answer_lost: true, tries: 9, last_error: "x" },
      { reservation_id: failure, outcome: "google_error", http_status: 500, error_code: "INTERNAL", latency_ms: 50,
        cooldown_until_pacific_midnight: false, tries: 3, last_error: "x" },
      { reservation_id: cut, outcome: { kind: "cut", cut_by: "google", input_tokens: 30, output_tokens: 5 }, tries: 1 },
    ];
    for (const line of lines) await expect(replay(line)).rejects.toMatchObject({ code: "22023" });
    const answers = [];
    for (const line of converted(lines)) answers.push(await replay(line));
    expect(answers.map((a) => a.status)).toEqual(["succeeded", "upstream_error", "cut"]);
    const rows = await sql`select status, input_tokens, error_code from public.google_ai_attempts
      where reservation_id in (${success}::uuid, ${failure}::uuid, ${cut}::uuid)
      order by array_position(array[${success}::uuid, ${failure}::uuid, ${cut}::uuid], reservation_id)`;
    expect(rows).toEqual([
      { status: "succeeded", input_tokens: 377, error_code: null },
      { status: "upstream_error", input_tokens: null, error_code: "INTERNAL" },
      { status: "cut", input_tokens: 30, error_code: "stream_cut_by_upstream" },
    ]);
  });

  it("in 1.0.0's shape: unchanged by the program", () => {
    const line = { reservation_id: "r", outcome: { kind: "succeeded", input_tokens: 1 }, tries: 1 };
    expect(converted([line])).toEqual([line]);
  });
});
