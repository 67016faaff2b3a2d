// A reservation answered is durable (issue 89, "nothing given up"). google_ai_reserve_call commits the
// booking with synchronous_commit off (its counter row's lock goes without waiting for the disk), then
// commits a WAL record synchronously, whose flush covers the booking, before it answers. On a server
// started as the bench starts it (fsync and synchronous_commit on) with wal_writer_delay = 10s, no
// autovacuum and its WAL writer frozen while the calls run (nothing else flushes: durable-server.ts):
//   - after every CALL, as eve_gateway makes it (service caller, token, WAIT ticket, refusals, a
//     fallback chain, two quota groups; direct and through PgBouncer in transaction mode), the WAL on
//     disk reaches the booking's COMMIT record (pg_walinspect, by the attempt row's xmin);
//   - an immediate stop while 32 connections reserve loses no answered reservation, and after the
//     restart the counter rows equal the attempt rows;
//   - both again for google_ai_reserve_calls, reservations of one caller in batches (its bookings commit
//     in one transaction, their attempt rows' xmins its subtransactions').
// Each check is run too against the procedure less its flushing step (built from the real definition,
// createUnflushedControl), and must catch it: every call unflushed, answered reservations lost.
// An immediate stop loses the WAL still in the server's buffers, not the WAL written to the kernel and
// not yet fsynced (a power cut would): the flush check covers that part.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { hasPgBouncer, type PgBouncer, startPgBouncer } from "../../shared/db/pgbouncer.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { countersAgainstRows } from "../support/counters-vs-rows.ts";
import { createUnflushedControl, type DurableServer, startDurableServer } from "../support/durable-server.ts";
import { type ReserveCallAnswer, type ReserveCallArgs, reserveCall, reserveCalls } from "../support/reserve-call.ts";
import { commitOf, commitRecords, flushLsn, flushWal, insertLsn } from "../support/wal-commits.ts";

const REAL = "google_ai_reserve_call";
const CONTROL = "google_ai_reserve_call_unflushed";
/** The batch's procedure (reservations that met in a worker), and its control. */
const REAL_MANY = "google_ai_reserve_calls";
const CONTROL_MANY = "google_ai_reserve_calls_unflushed";
const HUGE = 2_000_000_000;

let server: DurableServer;
let gatewayUrl: string;
let owner: Sql;
let admin: Sql;

beforeAll(async () => {
  server = await startDurableServer("reserve_durability");
  gatewayUrl = await gatewayRoleUrl(server.url);
  owner = connect(server.url, { max: 2 });
  admin = connect(server.adminUrl, { max: 1 });
  await admin`create extension if not exists pg_walinspect`;
  await owner`delete from public.google_ai_api_keys`;
  await owner`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values
    ('dur-a1', 'KEY_DUR_A1', 'proj-dur-a', 1), ('dur-a2', 'KEY_DUR_A2', 'proj-dur-a', 1), ('dur-b1', 'KEY_DUR_B1', null, 1)`;
  await owner`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await createUnflushedControl(owner, REAL);
  await createUnflushedControl(owner, REAL_MANY);
}, 180_000);

afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await admin?.end({ timeout: 5 });
  await server?.close();
});

/** A model of these limits (per quota group), served by both groups. */
async function model(name: string, limits: { rpm?: number; rpd?: number }) {
  await owner`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
              values (${name}, ${limits.rpm ?? HUGE}, null, ${limits.rpd ?? HUGE})`;
}

/** The calls of one run, on its own models: every kind of caller and answer the gateway makes. */
async function mixedCalls(prefix: string): Promise<ReserveCallArgs[]> {
  await model(`${prefix}-open`, {});
  await model(`${prefix}-tight`, { rpm: 2 }); // 2 per group: 4 admitted, then refusals
  await model(`${prefix}-closed`, { rpd: 0 }); // a chain's first step, passed over
  const { token } = await mintToken(owner, `${prefix}-notebook`, { models: [`${prefix}-open`] });
  const tokenHash = sha256(token);
  const calls: ReserveCallArgs[] = [];
  for (let i = 0; i < 6; i++) {
    const id = (what: string) => `${prefix}-${what}-${i}`;
    calls.push(
      { models: [`${prefix}-open`], estimatedTokens: 10 + i, caller: "bot", requestId: id("service") },
      { models: [`${prefix}-open`], estimatedTokens: 20, tokenHash, requestId: id("token") },
      { models: [`${prefix}-tight`], estimatedTokens: 5, caller: "bot", requestId: id("tight") },
      { models: [`${prefix}-tight`], estimatedTokens: 5, caller: "notebook", priority: "batch", waitLeftMs: 600_000, requestId: id("wait") },
      { models: [`${prefix}-closed`, `${prefix}-open`], estimatedTokens: 5, caller: "bot", requestId: id("chain") },
    );
  }
  return calls;
}

interface Measured {
  args: ReserveCallArgs;
  answer: ReserveCallAnswer;
  /** The call's own WAL lies between these insert positions (nothing else writes meanwhile). */
  before: bigint;
  after: bigint;
  /** How far the WAL was on disk when the call answered. */
  flushedAtAnswer: bigint;
}

/**
 * Each call in turn (or, with `batch`, that many calls at a time in one CALL of the batch's procedure),
 * the WAL on disk read as soon as it answers (the WAL writer frozen meanwhile).
 */
async function measure(sql: Sql, procedure: string, calls: ReserveCallArgs[], batch = 0): Promise<Measured[]> {
  const measured: Measured[] = [];
  await server.freezeWalWriter();
  try {
    for (const some of batch > 0 ? batchesOfOneCaller(calls, batch) : calls.map((c) => [c])) {
      const before = await insertLsn(admin);
      const answers = batch > 0 ? await reserveCalls(sql, some, procedure) : [await reserveCall(sql, some[0]!, procedure)];
      const flushedAtAnswer = await flushLsn(admin);
      const after = await insertLsn(admin);
      answers.forEach((answer, k) => {
        if ("alone" in answer) throw new Error(`${some[k]!.requestId}: answered alone with nothing else running`);
        measured.push({ args: some[k]!, answer, before, flushedAtAnswer, after });
      });
    }
  } finally {
    server.thawWalWriter();
  }
  return measured;
}

/** The calls in batches of at most `size`, each of one caller (as the worker batches them), in the calls' order. */
function batchesOfOneCaller(calls: ReserveCallArgs[], size: number): ReserveCallArgs[][] {
  const byCaller = new Map<string, ReserveCallArgs[]>();
  for (const c of calls) {
    const key = `${c.caller ?? ""}/${c.tokenHash ?? ""}`;
    byCaller.set(key, [...byCaller.get(key) ?? [], c]);
  }
  return [...byCaller.values()].flatMap((own) =>
    Array.from({ length: Math.ceil(own.length / size) }, (_, k) => own.slice(k * size, (k + 1) * size)));
}

/**
 * Per call, whether the WAL on disk reached its booking's commit when it answered: every COMMIT record
 * in the call's own WAL (the booking's, and the flush's that follows it). Its attempt row's xmin
 * commits there (a WAIT ticket's refusal writes its ticket, no attempt row).
 */
async function bookingsFlushed(measured: Measured[]): Promise<{ requestId: string; flushed: boolean }[]> {
  await flushWal(admin); // pg_walinspect reads only WAL on disk: the control's bookings too
  const commits = await commitRecords(admin, measured[0]!.before);
  const rows = await owner<{ request_id: string; xmin: string }[]>`
    select request_id, xmin::text as xmin from public.google_ai_attempts
    where request_id = any(${measured.map((m) => m.args.requestId)}::text[])`;
  return measured.map((m) => {
    const own = commits.filter((c) => c.end > m.before && c.end <= m.after);
    expect(own.length, `${m.args.requestId}: its commits`).toBeGreaterThan(0);
    for (const row of rows.filter((r) => r.request_id === m.args.requestId)) {
      expect(own, `${m.args.requestId}: the COMMIT of its attempt row's xid ${row.xmin}`).toContain(commitOf(commits, row.xmin));
    }
    if (!m.answer.o_reservation.queue) expect(rows.some((r) => r.request_id === m.args.requestId)).toBe(true);
    return { requestId: m.args.requestId, flushed: own.every((c) => m.flushedAtAnswer >= c.end) };
  });
}

/** The answers of a run, told apart: admitted, refused with a WAIT ticket, refused, served by a fallback. */
function kinds(measured: Measured[]) {
  const r = measured.map((m) => m.answer.o_reservation);
  return {
    admitted: r.filter((a) => a.ok).length,
    queued: r.filter((a) => !a.ok && a.queue?.ticket).length,
    refused: r.filter((a) => !a.ok && !a.queue).length,
    fallback: r.filter((a) => a.ok && Array.isArray(a.fallback_from)).length,
    groups: new Set(r.filter((a) => a.ok).map((a) => a.quota_group)).size,
  };
}

describe("after every CALL the WAL on disk reaches its booking's commit", () => {
  it("google_ai_reserve_call: every booking flushed when the call answers", async () => {
    const gateway = connect(gatewayUrl, { max: 1 });
    try {
      const measured = await measure(gateway, REAL, await mixedCalls("dur-real"));
      const k = kinds(measured);
      expect(k).toEqual({ admitted: 22, queued: k.queued, refused: 8 - k.queued, fallback: 6, groups: 2 });
      expect(k.queued).toBeGreaterThan(0);
      const unflushed = (await bookingsFlushed(measured)).filter((b) => !b.flushed);
      expect(unflushed).toEqual([]);
    } finally {
      await gateway.end();
    }
  });

  it("the control (the same procedure less its flushing step): the check catches every call", async () => {
    const gateway = connect(gatewayUrl, { max: 1 });
    try {
      const measured = await measure(gateway, CONTROL, await mixedCalls("dur-control"));
      expect(kinds(measured).admitted).toBe(22);
      const flushed = (await bookingsFlushed(measured)).filter((b) => b.flushed);
      expect(flushed).toEqual([]);
    } finally {
      await gateway.end();
    }
  });

  it("google_ai_reserve_calls (batches of up to 5 calls of one caller): every booking flushed when the batch answers", async () => {
    const gateway = connect(gatewayUrl, { max: 1 });
    try {
      const measured = await measure(gateway, REAL_MANY, await mixedCalls("dur-many"), 5);
      const k = kinds(measured);
      expect(k).toEqual({ admitted: 22, queued: k.queued, refused: 8 - k.queued, fallback: 6, groups: 2 });
      expect((await bookingsFlushed(measured)).filter((b) => !b.flushed)).toEqual([]);
      const control = await measure(gateway, CONTROL_MANY, await mixedCalls("dur-many-control"), 5);
      expect(kinds(control).admitted).toBe(22);
      expect((await bookingsFlushed(control)).filter((b) => b.flushed)).toEqual([]);
    } finally {
      await gateway.end();
    }
  });

  const withPooler = hasPgBouncer() || process.env.CI ? it : it.skip;
  withPooler("through PgBouncer in transaction mode: the CALL answers, its booking flushed; the control caught", async () => {
    let pooler: PgBouncer | undefined;
    let pooled: Sql | undefined;
    try {
      pooler = await startPgBouncer(gatewayUrl);
      pooled = connect(pooler.url, { max: 2, prepare: false });
      const real = await measure(pooled, REAL, await mixedCalls("dur-pool"));
      expect(kinds(real).admitted).toBe(22);
      expect((await bookingsFlushed(real)).filter((b) => !b.flushed)).toEqual([]);
      const control = await measure(pooled, CONTROL, await mixedCalls("dur-pool-control"));
      expect((await bookingsFlushed(control)).filter((b) => b.flushed)).toEqual([]);
    } finally {
      await pooled?.end();
      await pooler?.close();
    }
  });
});

const CRASH_CONNECTIONS = 32;
/** Answers before the stop; the connections keep calling until it cuts them. */
const ANSWERS_BEFORE_STOP = 120;

interface Answered {
  requestId: string;
  ok: boolean;
  reservationId?: string;
}

/** One connection's calls, in turn: a service caller and a token on a model that admits all, a service caller on a tight one. */
function crashCall(prefix: string, tokenHash: string, i: number, n: number, kind = (i + n) % 3): ReserveCallArgs {
  const requestId = `${prefix}-${i}-${n}`;
  return kind === 0
    ? { models: [`${prefix}-open`], estimatedTokens: 10 + (n % 7), caller: "bot", requestId }
    : kind === 1
    ? { models: [`${prefix}-open`], estimatedTokens: 25, tokenHash, requestId }
    : { models: [`${prefix}-tight`], estimatedTokens: 5, caller: "bot", requestId };
}

/**
 * CRASH_CONNECTIONS gateway connections reserve in a loop (crashCall; the tight model admits 10 a
 * minute per group and refuses the rest; with `batch`, that many calls at a time in one CALL of the
 * batch's procedure) until the server is stopped under them, after ANSWERS_BEFORE_STOP answers; then
 * the server starts again. `cut`: the CALLs the stop cut.
 */
async function crashWhileReserving(procedure: string, prefix: string, batch = 0) {
  await model(`${prefix}-open`, {});
  await model(`${prefix}-tight`, { rpm: 10 });
  const tokenHash = sha256((await mintToken(owner, `${prefix}-notebook`, { models: [`${prefix}-open`] })).token);
  await admin`checkpoint`; // no timed checkpoint (whose buffer writes flush the WAL) during the run
  const clients = Array.from({ length: CRASH_CONNECTIONS }, () => connect(gatewayUrl, { max: 1, idle_timeout: 0 }));
  await Promise.all(clients.map((c) => c`select 1`));
  const answered: Answered[] = [];
  const failedBeforeStop: unknown[] = [];
  let cut = 0;
  let stopping: Promise<void> | undefined;
  await server.freezeWalWriter();
  await Promise.all(clients.map(async (c, i) => {
    for (let n = 0; ; n += Math.max(1, batch)) {
      // A batch's calls share one caller, as the worker batches them.
      const calls = Array.from({ length: Math.max(1, batch) }, (_, k) => crashCall(prefix, tokenHash, i, n + k, (i + n) % 3));
      try {
        const answers = batch > 0 ? await reserveCalls(c, calls, procedure) : [await reserveCall(c, calls[0]!, procedure)];
        answers.forEach((a, k) => {
          if ("alone" in a) return; // not answered: the worker would make it again by itself
          const r = a.o_reservation;
          answered.push({ requestId: calls[k]!.requestId, ok: r.ok, ...(r.ok ? { reservationId: r.reservation_id } : {}) });
        });
      } catch (error) {
        if (stopping) cut++; // in flight when the server went (or sent after): not answered
        else failedBeforeStop.push(error);
        return;
      }
      if (answered.length >= ANSWERS_BEFORE_STOP) stopping ??= server.crash();
    }
  }));
  await stopping;
  await Promise.all(clients.map((c) => c.end({ timeout: 0 }).catch(() => {})));
  await server.restart();
  return { answered, cut, failedBeforeStop, models: [`${prefix}-open`, `${prefix}-tight`] };
}

/** The answered calls whose attempt row is not there (an admission: 'reserved' with its id; a refusal: 'refused'). */
async function lost(answered: Answered[]): Promise<Answered[]> {
  const rows = await owner<{ request_id: string; status: string; reservation_id: string }[]>`
    select request_id, status, reservation_id::text as reservation_id from public.google_ai_attempts
    where request_id = any(${answered.map((a) => a.requestId)}::text[])`;
  const found = new Map(rows.map((r) => [r.request_id, r]));
  return answered.filter((a) => {
    const row = found.get(a.requestId);
    return !row || row.status !== (a.ok ? "reserved" : "refused") || (a.ok && row.reservation_id !== a.reservationId);
  });
}

/** Each counter row equals its attempt rows, and every booked attempt row is counted by one; answers the rows booked. */
async function expectCountersEqualRows(models: string[]): Promise<number> {
  const counters = await countersAgainstRows(owner, models);
  for (const c of counters) {
    expect(c.span_s).toBeLessThan(60); // the window holds every booking of the run
    expect(c.counted, `${c.quota_group} ${c.model}`).toEqual(c.logged);
  }
  const [{ booked }] = await owner<{ booked: number }[]>`
    select coalesce(sum(requests), 0)::int as booked from public.google_ai_attempts
    where model = any(${models}::text[]) and status not in ('released', 'refused')`;
  expect(counters.reduce((n, c) => n + c.logged.window, 0)).toBe(booked);
  return booked;
}

describe(`an immediate stop while ${CRASH_CONNECTIONS} connections reserve, then a restart on the same data`, () => {
  it("google_ai_reserve_call: every answered reservation is there after the restart, counters equal to rows", async () => {
    const run = await crashWhileReserving(REAL, "crash-real");
    expect(run.failedBeforeStop).toEqual([]);
    expect(run.answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_STOP);
    expect(run.answered.filter((a) => a.ok).length).toBeGreaterThan(0);
    expect(run.answered.filter((a) => !a.ok).length).toBeGreaterThan(0);
    expect(run.cut).toBeGreaterThan(0); // reservations were in flight
    expect(await lost(run.answered)).toEqual([]);
    expect(await expectCountersEqualRows(run.models)).toBeGreaterThanOrEqual(run.answered.filter((a) => a.ok).length);
  }, 120_000);

  it("the control (less its flushing step): answered reservations are lost, counters still equal to rows", async () => {
    const run = await crashWhileReserving(CONTROL, "crash-control");
    expect(run.failedBeforeStop).toEqual([]);
    expect(run.answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_STOP);
    expect(run.cut).toBeGreaterThan(0);
    const gone = await lost(run.answered);
    console.log(`control: ${gone.length} of ${run.answered.length} answered reservations lost (${gone.filter((a) => a.ok).length} admissions)`);
    expect(gone.filter((a) => a.ok).length).toBeGreaterThan(0);
    await expectCountersEqualRows(run.models);
  }, 120_000);

  it("google_ai_reserve_calls (batches of 4): every answered reservation is there after the restart; its control loses some", async () => {
    const run = await crashWhileReserving(REAL_MANY, "crash-many", 4);
    expect(run.failedBeforeStop).toEqual([]);
    expect(run.answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_STOP);
    expect(run.answered.filter((a) => a.ok).length).toBeGreaterThan(0);
    expect(run.cut).toBeGreaterThan(0);
    expect(await lost(run.answered)).toEqual([]);
    expect(await expectCountersEqualRows(run.models)).toBeGreaterThanOrEqual(run.answered.filter((a) => a.ok).length);
    const control = await crashWhileReserving(CONTROL_MANY, "crash-many-control", 4);
    expect(control.failedBeforeStop).toEqual([]);
    expect((await lost(control.answered)).filter((a) => a.ok).length).toBeGreaterThan(0);
    await expectCountersEqualRows(control.models);
  }, 180_000);
});
