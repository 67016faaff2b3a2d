// A success finalized is durable once its CALL answers (issue 89, "nothing given up"), as a reservation
// is (reserve-call-durability.test.ts, whose server and method this shares). google_ai_finalize_call
// commits google_ai_finalize_calls with synchronous_commit off (the counter row's lock goes without
// waiting for the disk), then commits a WAL record synchronously, whose flush covers the finalize, before
// it answers. On a server started as the bench starts it, with wal_writer_delay = 10s, no autovacuum and
// its WAL writer frozen while the calls run (durable-server.ts), reservations made first through
// google_ai_reserve_call, the finalizes as eve_gateway makes them (single successes, one carrying the
// provider's room, and batches of one counter row's; a service caller and a token, two quota groups):
//   - after every CALL the WAL on disk reaches the finalize's COMMIT record (pg_walinspect, by the
//     attempt row's new xmin);
//   - an immediate stop while 32 connections finalize loses no answered finalize (succeeded, its token
//     counts), and after the restart the counter rows equal the attempt rows.
// Each check is run too against the procedure less its flushing step (createUnflushedControl) and must
// catch it: every finalize unflushed, answered finalizes lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { countersAgainstRows } from "../support/counters-vs-rows.ts";
import { createUnflushedControl, type DurableServer, startDurableServer } from "../support/durable-server.ts";
import { finalizeCall, type FinalizeSuccess } from "../support/finalize-call.ts";
import { reserveCall, type ReserveCallArgs } from "../support/reserve-call.ts";
import { commitOf, commitRecords, flushLsn, flushWal, insertLsn } from "../support/wal-commits.ts";

const REAL = "google_ai_finalize_call";
const CONTROL = `${REAL}_unflushed`; // createUnflushedControl
const HUGE = 2_000_000_000;

let server: DurableServer;
let gatewayUrl: string;
let owner: Sql;
let admin: Sql;

beforeAll(async () => {
  server = await startDurableServer("finalize_durability");
  gatewayUrl = await gatewayRoleUrl(server.url);
  owner = connect(server.url, { max: 2 });
  admin = connect(server.adminUrl, { max: 1 });
  await admin`create extension if not exists pg_walinspect`;
  await owner`delete from public.google_ai_api_keys`;
  await owner`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values
    ('fin-a1', 'KEY_FIN_A1', 'proj-fin-a', 1), ('fin-b1', 'KEY_FIN_B1', null, 1)`;
  await owner`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await createUnflushedControl(owner, REAL);
}, 180_000);

afterAll(async () => {
  await owner?.end({ timeout: 5 });
  await admin?.end({ timeout: 5 });
  await server?.close();
});

interface Booked {
  reservationId: string;
  requestId: string;
  quotaGroup: string;
}

/**
 * A model of its own (no limit near) and `count` reservations on it through google_ai_reserve_call, by
 * `connections` gateway connections at once: a service caller and a token in turn. Answers each
 * connection's bookings.
 */
async function reserveAhead(prefix: string, connections: Sql[], count: number): Promise<Booked[][]> {
  await owner`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${prefix}, ${HUGE}, null, ${HUGE})`;
  const tokenHash = sha256((await mintToken(owner, `${prefix}-notebook`, { models: [prefix] })).token);
  return Promise.all(connections.map(async (c, i) => {
    const booked: Booked[] = [];
    for (let n = i; n < count; n += connections.length) {
      const args: ReserveCallArgs = n % 2 === 0
        ? { models: [prefix], estimatedTokens: 40, caller: "bot", requestId: `${prefix}-${n}` }
        : { models: [prefix], estimatedTokens: 40, tokenHash, requestId: `${prefix}-${n}` };
      const { o_reservation: r } = await reserveCall(c, args);
      if (!r.ok || !r.reservation_id || !r.quota_group) throw new Error(`${args.requestId} not admitted: ${JSON.stringify(r)}`);
      booked.push({ reservationId: r.reservation_id, requestId: args.requestId, quotaGroup: r.quota_group });
    }
    return booked;
  }));
}

/** A success of `b`, its counts told apart by `n`. */
function success(b: Booked, n: number): FinalizeSuccess {
  return { reservation_id: b.reservationId, kind: "succeeded", input_tokens: 30 + (n % 13), output_tokens: 5 + (n % 7), http_status: 200, latency_ms: 50 };
}

/** The bookings as the gateway's finalize queue writes them: per counter row (quota group), in CALLs of `sizes` in turn. */
function batches(booked: Booked[], sizes: number[]): FinalizeSuccess[][] {
  const out: FinalizeSuccess[][] = [];
  const groups = [...new Set(booked.map((b) => b.quotaGroup))];
  for (const group of groups) {
    const own = booked.filter((b) => b.quotaGroup === group);
    for (let at = 0, k = 0; at < own.length; at += sizes[k % sizes.length]!, k++) {
      out.push(own.slice(at, at + sizes[k % sizes.length]!).map((b) => success(b, booked.indexOf(b))));
    }
  }
  return out;
}

interface Measured {
  calls: FinalizeSuccess[];
  /** The CALL's own WAL lies between these insert positions (nothing else writes meanwhile). */
  before: bigint;
  after: bigint;
  /** How far the WAL was on disk when the CALL answered. */
  flushedAtAnswer: bigint;
}

/** Each CALL in turn, the WAL on disk read as soon as it answers (the WAL writer frozen meanwhile). */
async function measure(sql: Sql, procedure: string, calls: FinalizeSuccess[][]): Promise<Measured[]> {
  const measured: Measured[] = [];
  await server.freezeWalWriter();
  try {
    for (const batch of calls) {
      const before = await insertLsn(admin);
      const answers = await finalizeCall(sql, batch, procedure);
      const flushedAtAnswer = await flushLsn(admin);
      expect(answers.map((a) => a.ok)).toEqual(batch.map(() => true));
      measured.push({ calls: batch, before, flushedAtAnswer, after: await insertLsn(admin) });
    }
  } finally {
    server.thawWalWriter();
  }
  return measured;
}

/**
 * Per CALL, whether the WAL on disk reached its finalize's commit when it answered: every COMMIT record
 * in the CALL's own WAL (the finalize's, and the flush's that follows it). Each of its attempt rows
 * (succeeded, its counts) has its new xmin commit there.
 */
async function finalizesFlushed(measured: Measured[]): Promise<{ size: number; flushed: boolean }[]> {
  await flushWal(admin); // pg_walinspect reads only WAL on disk: the control's finalizes too
  const commits = await commitRecords(admin, measured[0]!.before);
  const rows = await owner<{ reservation_id: string; xmin: string; status: string; input_tokens: number; output_tokens: number }[]>`
    select reservation_id::text as reservation_id, xmin::text as xmin, status, input_tokens, output_tokens
    from public.google_ai_attempts
    where reservation_id = any(${measured.flatMap((m) => m.calls.map((c) => c.reservation_id))}::uuid[])`;
  return measured.map((m) => {
    const own = commits.filter((c) => c.end > m.before && c.end <= m.after);
    expect(own.length, "the CALL's commits").toBeGreaterThan(0);
    for (const call of m.calls) {
      const row = rows.find((r) => r.reservation_id === call.reservation_id);
      expect(row, call.reservation_id).toMatchObject({ status: "succeeded", input_tokens: call.input_tokens, output_tokens: call.output_tokens });
      expect(own, `${call.reservation_id}: the COMMIT of its attempt row's xid ${row!.xmin}`).toContain(commitOf(commits, row!.xmin));
    }
    return { size: m.calls.length, flushed: own.every((c) => m.flushedAtAnswer >= c.end) };
  });
}

/** 16 successes on two counter rows: singles (one with the provider's room) and batches of 2 and 4. */
async function mixedFinalizes(prefix: string): Promise<FinalizeSuccess[][]> {
  const gateway = connect(gatewayUrl, { max: 1 });
  try {
    const [booked] = await reserveAhead(prefix, [gateway], 16);
    const calls = batches(booked!, [1, 2, 4, 1]);
    const until = new Date(Date.now() + 60_000).toISOString();
    calls[0] = calls[0]!.map((c) => ({ ...c, room_requests: 1_000, room_tokens: 1_000_000, room_until: until }));
    expect(new Set(booked!.map((b) => b.quotaGroup)).size).toBe(2);
    return calls;
  } finally {
    await gateway.end();
  }
}

describe("after every finalize CALL the WAL on disk reaches its commit", () => {
  it("google_ai_finalize_call: every finalize flushed when the CALL answers", async () => {
    const calls = await mixedFinalizes("fin-real");
    const gateway = connect(gatewayUrl, { max: 1 });
    try {
      const flushed = await finalizesFlushed(await measure(gateway, REAL, calls));
      expect(flushed.filter((f) => f.size > 1).length).toBeGreaterThanOrEqual(4);
      expect(flushed.filter((f) => !f.flushed)).toEqual([]);
    } finally {
      await gateway.end();
    }
  });

  it("the control (the same procedure less its flushing step): the check catches every CALL", async () => {
    const calls = await mixedFinalizes("fin-control");
    const gateway = connect(gatewayUrl, { max: 1 });
    try {
      const flushed = await finalizesFlushed(await measure(gateway, CONTROL, calls));
      console.log(`finalize control: ${flushed.filter((f) => !f.flushed).length} of ${flushed.length} CALLs unflushed at their answer`);
      expect(flushed.filter((f) => f.flushed)).toEqual([]);
    } finally {
      await gateway.end();
    }
  });
});

const CRASH_CONNECTIONS = 32;
const RESERVED_EACH = 8;
/** Finalizes answered before the stop; the connections keep finalizing until it cuts them. */
const ANSWERS_BEFORE_STOP = 100;

/**
 * CRASH_CONNECTIONS gateway connections, each with RESERVED_EACH reservations made first, finalize them
 * (per counter row, in CALLs of 1, 2 and 3) until the server is stopped under them, after
 * ANSWERS_BEFORE_STOP finalizes answered; then the server starts again. `cut`: the CALLs the stop cut.
 */
async function crashWhileFinalizing(procedure: string, prefix: string) {
  const clients = Array.from({ length: CRASH_CONNECTIONS }, () => connect(gatewayUrl, { max: 1, idle_timeout: 0 }));
  const booked = await reserveAhead(prefix, clients, CRASH_CONNECTIONS * RESERVED_EACH);
  await admin`checkpoint`; // no timed checkpoint (whose buffer writes flush the WAL) during the run
  const answered: FinalizeSuccess[] = [];
  const failedBeforeStop: unknown[] = [];
  let cut = 0;
  let stopping: Promise<void> | undefined;
  await server.freezeWalWriter();
  await Promise.all(clients.map(async (c, i) => {
    for (const batch of batches(booked[i]!, [1, 2, 3])) {
      try {
        const answers = await finalizeCall(c, batch, procedure);
        if (answers.some((a) => !a.ok)) throw new Error(`not finalized: ${JSON.stringify(answers)}`);
        answered.push(...batch);
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
  return { answered, cut, failedBeforeStop, model: prefix };
}

/** The answered finalizes whose attempt row is not succeeded with their counts after the restart. */
async function lost(answered: FinalizeSuccess[]): Promise<FinalizeSuccess[]> {
  const rows = await owner<{ reservation_id: string; status: string; input_tokens: number | null; output_tokens: number | null }[]>`
    select reservation_id::text as reservation_id, status, input_tokens, output_tokens from public.google_ai_attempts
    where reservation_id = any(${answered.map((a) => a.reservation_id)}::uuid[])`;
  const found = new Map(rows.map((r) => [r.reservation_id, r]));
  return answered.filter((a) => {
    const row = found.get(a.reservation_id);
    return !row || row.status !== "succeeded" || row.input_tokens !== a.input_tokens || row.output_tokens !== a.output_tokens;
  });
}

/** Each counter row of `model` equals its attempt rows (requests and tokens). */
async function expectCountersEqualRows(model: string): Promise<void> {
  const counters = await countersAgainstRows(owner, [model]);
  expect(counters.length).toBe(2);
  for (const c of counters) {
    expect(c.span_s).toBeLessThan(60); // the window holds every booking of the run
    expect(c.counted, `${c.quota_group} ${c.model}`).toEqual(c.logged);
  }
}

describe(`an immediate stop while ${CRASH_CONNECTIONS} connections finalize, then a restart on the same data`, () => {
  it("google_ai_finalize_call: every answered finalize is there after the restart, counters equal to rows", async () => {
    const run = await crashWhileFinalizing(REAL, "fin-crash-real");
    expect(run.failedBeforeStop).toEqual([]);
    expect(run.answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_STOP);
    expect(run.cut).toBeGreaterThan(0); // finalizes were in flight
    expect(await lost(run.answered)).toEqual([]);
    await expectCountersEqualRows(run.model);
  }, 120_000);

  it("the control (less its flushing step): answered finalizes are lost, counters still equal to rows", async () => {
    const run = await crashWhileFinalizing(CONTROL, "fin-crash-control");
    expect(run.failedBeforeStop).toEqual([]);
    expect(run.answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_STOP);
    expect(run.cut).toBeGreaterThan(0);
    const gone = await lost(run.answered);
    console.log(`finalize control: ${gone.length} of ${run.answered.length} answered finalizes lost`);
    expect(gone.length).toBeGreaterThan(0);
    await expectCountersEqualRows(run.model);
  }, 120_000);
});
