// The database's copies of the closed lists (supabase/functions/_shared/vocabulary.ts), read from a
// migrated database itself: what its functions answer, its check constraints (or the function a check
// asks), the lists inside function bodies, its comments and its rows. Each failure names the schema
// file that writes the copy out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMISSION_CAUSES,
  ATTEMPT_STATUSES,
  FINALIZE_OUTCOMES,
  GROUP_CAUSES,
  MODEL_LIMITS,
  MONEY_CAUSES,
  PRIORITY_CLASSES,
  QUEUE_WAIT_TARGETS,
  QUOTA_CAUSES,
  refusalCauseOf,
  SERVICE_TIERS,
  STEP_LIMITS,
  TOKEN_REFUSALS,
  WAITABLE_LIMITS,
} from "../../supabase/functions/_shared/vocabulary.ts";
import { checkValues, difference, same, schemaFileWith, sqlStrings } from "../support/lists.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("vocabulary");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const fn = (name: string) => `${schemaFileWith(`FUNCTION public.${name}(`)} (${name})`;

describe("the database's lists are vocabulary.ts's", () => {
  it("google_ai_quota_causes(): QUOTA_CAUSES, and (true) GROUP_CAUSES", async () => {
    const [row] = await db.sql<{ all: string[]; group: string[] }[]>`
      select public.google_ai_quota_causes() as all, public.google_ai_quota_causes(true) as group`;
    expect(difference(fn("google_ai_quota_causes"), QUOTA_CAUSES, row!.all)).toEqual(same(fn("google_ai_quota_causes")));
    const place = `${fn("google_ai_quota_causes")} with p_rests_group`;
    expect(difference(place, GROUP_CAUSES, row!.group)).toEqual(same(place));
  });

  // The quota causes' checks ask google_ai_is_quota_cause, which reads google_ai_quota_causes() (held
  // to QUOTA_CAUSES above): each accepts every cause and refuses every other word a list here holds.
  it.each(["google_ai_cooldowns_cause_check", "google_ai_attempts_quota_cause_check"])(
    "the check %s accepts google_ai_quota_causes()",
    async (constraint) => {
      const place = `${schemaFileWith(`CONSTRAINT ${constraint}`)} (${constraint})`;
      const [check] = await db.sql<{ def: string }[]>`
        select pg_get_constraintdef(c.oid) as def from pg_constraint c
        where c.conname = ${constraint} and c.connamespace = 'public'::regnamespace`;
      expect(check?.def, `${place} is missing`).toMatch(/^CHECK \((?:public\.)?google_ai_is_quota_cause\([a-z_]+\)\)$/);
      const words = [...new Set([...QUOTA_CAUSES, ...ADMISSION_CAUSES, ...ATTEMPT_STATUSES, ...TOKEN_REFUSALS, "quota"])];
      const rows = await db.sql<{ word: string; accepted: boolean }[]>`
        select w as word, public.google_ai_is_quota_cause(w) as accepted from unnest(${words}::text[]) w`;
      const accepted = rows.filter((r) => r.accepted).map((r) => r.word);
      expect(difference(place, QUOTA_CAUSES, accepted)).toEqual(same(place));
    },
  );

  const CHECKS: [constraint: string, list: readonly string[]][] = [
    ["google_ai_attempts_status_check", ATTEMPT_STATUSES],
    ["google_ai_service_tiers_tier_check", SERVICE_TIERS],
    ["google_ai_credential_refusals_reason_check", TOKEN_REFUSALS],
    ["google_ai_queue_waits_for_check", QUEUE_WAIT_TARGETS],
  ];
  // (A check that asks a function of its column, google_ai_is_attempt_status(status), is held to the
  // list in that function's body.)
  it.each(CHECKS)("the check %s", async (constraint, list) => {
    const rows = await db.sql<{ def: string; body: string | null }[]>`
      select d.def, (select pg_get_functiondef(p.oid) from pg_proc p
                     where p.pronamespace = 'public'::regnamespace and p.proname = substring(d.def
                       from '^CHECK [(](?:public[.])?(google_ai_[a-z_]+)[(][a-z_]+[)][)]$')) as body
      from pg_constraint c cross join lateral (select pg_get_constraintdef(c.oid) as def) d
      where c.conname = ${constraint} and c.connamespace = 'public'::regnamespace`;
    const place = `${schemaFileWith(`CONSTRAINT ${constraint}`)} (${constraint})`;
    expect(rows.length, `${place} is missing`).toBe(1);
    expect(difference(place, list, checkValues(rows[0]!.body ?? rows[0]!.def))).toEqual(same(place));
  });

  it("google_ai_waits_alike: a ticket waiting for each QUEUE_WAIT_TARGETS value counts for its own caller", async () => {
    const rows = await db.sql<{ target: string; alike: boolean | null }[]>`
      select t as target, public.google_ai_waits_alike(t, 'batch', 'nb', 'batch', 'nb') as alike
      from unnest(${QUEUE_WAIT_TARGETS as unknown as string[]}::text[]) t`;
    expect(rows.filter((r) => r.alike !== true).map((r) => r.target), fn("google_ai_waits_alike")).toEqual([]);
  });

  it("a value outside a check's list is refused by the table", async () => {
    await expect(db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, cause)
                        values ('proj-default', 'gemma-3-27b-it', now(), 'quota')`).rejects.toThrow(/cause_check/);
    await expect(db.sql`insert into public.google_ai_attempts (status, caller, model)
                        values ('lost', 'vocabulary', 'gemma-3-27b-it')`).rejects.toThrow(/status_check/);
  });

  it("google_ai_refusal_cause(limit): each limit's cause as refusalCauseOf says", async () => {
    const rows = await db.sql<{ limit: string; cause: string }[]>`
      select l as limit, public.google_ai_refusal_cause(l) as cause from unnest(${STEP_LIMITS as unknown as string[]}::text[]) l`;
    const place = fn("google_ai_refusal_cause");
    const disagree = rows
      .map((r) => ({ limit: r.limit, database: r.cause, vocabulary: refusalCauseOf(r.limit as (typeof STEP_LIMITS)[number]) }))
      .filter((r) => r.database !== r.vocabulary);
    expect({ place, disagree }).toEqual({ place, disagree: [] });
    // Every admission cause that stands for a limit in vocabulary.ts is that limit's in the database;
    // the others (share_kept, spread, queue_turn) the booking names itself.
    const mapped = new Set(rows.map((r) => r.cause));
    const bookingOwn = ADMISSION_CAUSES.filter((c) => STEP_LIMITS.every((l) => refusalCauseOf(l) !== c));
    expect({ place, unmapped: ADMISSION_CAUSES.filter((c) => !mapped.has(c)) }).toEqual({ place, unmapped: bookingOwn });
    expect(bookingOwn).toEqual(expect.arrayContaining(["share_kept", "spread", "queue_turn"]));
  });

  it("google_ai_queue_turns(limit): a ticket and a turn for each of WAITABLE_LIMITS, none for any other limit", async () => {
    const rows = await db.sql<{ limit: string; turns: string | null }[]>`
      select l as limit, public.google_ai_queue_turns(l) as turns from unnest(${STEP_LIMITS as unknown as string[]}::text[]) l`;
    const place = fn("google_ai_queue_turns");
    const waited = rows.filter((r) => r.turns !== null).map((r) => r.limit);
    expect(difference(place, WAITABLE_LIMITS, waited)).toEqual(same(place));
    // Every waited limit's turn is one the queue knows: counted in the windows' slots, or head first.
    expect({ place, turns: rows.filter((r) => r.turns !== null && !["slots", "head"].includes(r.turns)) })
      .toEqual({ place, turns: [] });
  });

  // Lists a function's body writes out: [function, what the list is, how to find it, the list].
  const BODIES: [name: string, what: string, pattern: RegExp, list: readonly string[]][] = [
    // (With the waitable limits, which google_ai_queue_turns names: the case below.)
    ["google_ai_fall_back_at", "c_model_limits", /c_model_limits constant text\[\] := array\[([^\]]*)\]/,
      MODEL_LIMITS.filter((l) => !(WAITABLE_LIMITS as readonly string[]).includes(l))],
    ["google_ai_metric_samples", "the statuses of eve_gateway_upstream_calls_total",
      /'eve_gateway_upstream_calls_total'[\s\S]*?g\.status in \(([^)]*)\)/, FINALIZE_OUTCOMES],
  ];
  it.each(BODIES)("%s: %s", async (name, what, pattern, list) => {
    const [row] = await db.sql<{ src: string }[]>`
      select p.prosrc as src from pg_proc p where p.proname = ${name} and p.pronamespace = 'public'::regnamespace`;
    const place = `${fn(name)}: ${what}`;
    const found = row === undefined ? null : pattern.exec(row.src);
    expect(found, `${place} is not found by ${pattern}`).not.toBeNull();
    expect(difference(place, list, sqlStrings(found![1]!))).toEqual(same(place));
  });

  it("the comments that name a list name all of it, or point at it", async () => {
    const rows = await db.sql<{ what: string; comment: string }[]>`
      select 'refusal_cause' as what, col_description('public.google_ai_attempts'::regclass,
               (select attnum from pg_attribute where attrelid = 'public.google_ai_attempts'::regclass
                and attname = 'refusal_cause')) as comment
      union all
      select 'cause', col_description('public.google_ai_cooldowns'::regclass,
               (select attnum from pg_attribute where attrelid = 'public.google_ai_cooldowns'::regclass
                and attname = 'cause'))`;
    const words = (text: string) => text.match(/[a-z_]+/g) ?? [];
    const comment = (what: string) => rows.find((r) => r.what === what)!.comment;
    // The refusal causes' comment points at the list instead of naming it (a new cause leaves it alone).
    const refusal = `${schemaFileWith("COMMENT ON COLUMN public.google_ai_attempts.refusal_cause")} (google_ai_attempts.refusal_cause)`;
    const named = words(comment("refusal_cause")).filter((w) => (ADMISSION_CAUSES as readonly string[]).includes(w));
    expect({ refusal, named, points: comment("refusal_cause").includes("ADMISSION_CAUSES") })
      .toEqual({ refusal, named: [], points: true });
    const cooldown = `${schemaFileWith("COMMENT ON COLUMN public.google_ai_cooldowns.cause")} (google_ai_cooldowns.cause)`;
    expect(difference(cooldown, MONEY_CAUSES, words(comment("cause")).filter((w) =>
      (MONEY_CAUSES as readonly string[]).includes(w)
    ))).toEqual(same(cooldown));
  });

  it("the priority classes' rows: PRIORITY_CLASSES, highest rank first", async () => {
    const rows = await db.sql<{ name: string }[]>`select name from public.google_ai_priority_classes order by rank`;
    const place = "supabase/migrations/20261122000200_rows_and_schedule.sql (google_ai_priority_classes)";
    expect({ place, classes: rows.map((r) => r.name) }).toEqual({ place, classes: [...PRIORITY_CLASSES] });
  });
});
