// createDatabase's failure handling with injected pools (the real outage, a stopped and restarted
// PostgreSQL, is tests/functions/outage*.test.ts): deadline, down state, probe, one retry of a stale
// connection, query errors passed through, settings from the environment.
import { describe, expect, it } from "vitest";
import {
  classifyDbError,
  createDatabase,
  DatabaseUnavailable,
  dbTimeoutsFromEnv,
  DEFAULT_DB_TIMEOUTS,
  type Sql,
} from "./db.ts";

const config = { url: "postgres://u:pw@db:5432/x", prepare: true, max: 5, source: "SUPABASE_DB_URL" as const };
const fail = (code: string) => Object.assign(new Error(`driver says ${code} for postgres://u:pw@db/x`), { code });

/**
 * A stand-in pool: `end` is counted; the work functions decide what a call does, and `probe` what the
 * pool's own statement (the probe's `select 1`) does.
 */
function fakePools() {
  const made: { ended: number; endTimeouts: (number | null | undefined)[]; probes: number }[] = [];
  const state = { probe: (): Promise<unknown> => Promise.resolve([{ "?column?": 1 }]) };
  const createPool = () => {
    const counts = { ended: 0, endTimeouts: [] as (number | null | undefined)[], probes: 0 };
    const pool = Object.assign(() => (counts.probes++, state.probe()), {
      end: (o?: { timeout?: number | null }) => {
        counts.endTimeouts.push(o?.timeout);
        return Promise.resolve(void counts.ended++);
      },
    });
    made.push(counts);
    return pool as unknown as Sql;
  };
  return { made, createPool, state };
}

function setup(timeouts = { ...DEFAULT_DB_TIMEOUTS, deadlineMs: 50, downForMs: 1_000, probeWaitMs: 100 }) {
  let t = 1_000_000;
  const logs: string[] = [];
  const pools = fakePools();
  const db = createDatabase({
    config,
    applicationName: "test",
    timeouts,
    log: (m) => logs.push(m),
    now: () => t,
    createPool: pools.createPool,
  });
  return { db, logs, pools, advance: (ms: number) => void (t += ms) };
}

const unavailable = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as DatabaseUnavailable);

describe("createDatabase", () => {
  it("maps a refused connection to DatabaseUnavailable, then fails fast without touching the pool", async () => {
    const { db, logs, pools, advance } = setup();
    let calls = 0;
    const refused = () => {
      calls++;
      return Promise.reject(fail("ECONNREFUSED"));
    };
    const first = await unavailable(db.run("reserve", refused));
    expect(first).toBeInstanceOf(DatabaseUnavailable);
    expect(first!.reason).toBe("connection");
    expect(first!.retryAfterMs).toBe(1_000);
    expect(pools.made[0]!.ended).toBe(1); // the failed pool is thrown away
    expect(db.state()).toBe("down");

    const results = await Promise.all(Array.from({ length: 20 }, () => unavailable(db.run("reserve", refused))));
    expect(results.every((e) => e instanceof DatabaseUnavailable && e.reason === "down")).toBe(true);
    expect(calls).toBe(1);
    expect(logs.join("\n")).toMatch(/database down \(calls refused for 1000 ms, then probed\): reserve: .*ECONNREFUSED/);
    expect(logs.join("\n")).not.toContain("pw@");

    advance(400);
    expect((await unavailable(db.run("reserve", refused)))!.retryAfterMs).toBe(1_000); // at least 1 s
    advance(700);
    expect(await db.run("reserve", () => Promise.resolve("up again"))).toBe("up again");
    expect(pools.made.length).toBe(2); // a fresh pool after the outage
    expect(pools.made[1]!.probes).toBe(1); // probed first
    expect(db.state()).toBe("up");
  });

  it("serves the burst that comes after the down period: one probe, every call waits for it and goes on", async () => {
    const { db, pools, advance } = setup();
    await unavailable(db.run("a", () => Promise.reject(fail("CONNECT_TIMEOUT"))));
    advance(1_001);
    let answerProbe!: (v: unknown) => void;
    pools.state.probe = () => new Promise((r) => (answerProbe = r));
    let served = 0;
    const burst = Array.from({ length: 12 }, () => db.run("reserve", () => Promise.resolve(++served)));
    await Promise.resolve();
    expect(db.state()).toBe("probing");
    expect(served).toBe(0); // nobody goes before the probe's outcome
    answerProbe([]);
    expect((await Promise.all(burst)).length).toBe(12);
    expect(served).toBe(12);
    expect(pools.made[1]!.probes).toBe(1);
    expect(db.state()).toBe("up");
  });

  it("refuses the waiting burst at once when the probe finds the database still down, and waits again", async () => {
    const { db, pools, advance } = setup();
    await unavailable(db.run("a", () => Promise.reject(fail("ECONNREFUSED"))));
    advance(1_001);
    pools.state.probe = () => Promise.reject(fail("ECONNREFUSED"));
    let served = 0;
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => unavailable(db.run("reserve", () => Promise.resolve(++served)))),
    );
    expect(burst.map((e) => e?.reason)).toEqual(Array(12).fill("down"));
    expect(served).toBe(0);
    expect(pools.made[1]!.probes).toBe(1);
    expect(pools.made[1]!.ended).toBe(1); // the probe's pool is thrown away too
    // A new down interval: no probe until it ends.
    expect((await unavailable(db.run("reserve", () => Promise.resolve(1))))!.reason).toBe("down");
    expect(pools.made.length).toBe(2);
    advance(1_001);
    pools.state.probe = () => Promise.resolve([]);
    expect(await db.run("reserve", () => Promise.resolve("served"))).toBe("served");
  });

  it("waits for a probe that does not answer only until probeWaitMs after its start, then refuses at once", async () => {
    const { db, pools, advance } = setup({ ...DEFAULT_DB_TIMEOUTS, deadlineMs: 2_000, downForMs: 1_000, probeWaitMs: 100 });
    await unavailable(db.run("a", () => Promise.reject(fail("CONNECT_TIMEOUT"))));
    advance(1_001);
    pools.state.probe = () => new Promise(() => {}); // a frozen server: the probe's connect hangs
    const waited = await unavailable(db.run("reserve", () => Promise.resolve(1)));
    expect(waited!.reason).toBe("down"); // after probeWaitMs (100 ms) of waiting
    advance(100); // the probe is that old now: later callers do not wait on it
    let timedOut = false;
    const refused = unavailable(db.run("reserve", () => Promise.resolve(1)));
    const guard = new Promise<null>((r) => setTimeout(() => ((timedOut = true), r(null)), 50));
    expect((await Promise.race([refused, guard]))?.reason).toBe("down");
    expect(timedOut).toBe(false);
    expect(db.state()).toBe("probing");
    expect(pools.made[1]!.probes).toBe(1);
  });

  it("does not call a slow new connection an outage while the server answers other calls", async () => {
    const { db, logs, advance } = setup();
    let connect!: (e: Error) => void;
    const slow = unavailable(db.run("reserve", () => new Promise<never>((_, reject) => (connect = reject))));
    expect(await db.run("other", () => Promise.resolve("answered"))).toBe("answered");
    connect(fail("CONNECT_TIMEOUT"));
    expect((await slow)!.reason).toBe("timeout");
    expect(db.state()).toBe("up");
    expect(await db.run("next", () => Promise.resolve("served"))).toBe("served");
    expect(logs.join("\n")).toMatch(/not an outage/);
    // With no answer from anyone meanwhile, the same failure is an outage.
    advance(1);
    const alone = await unavailable(db.run("reserve", () => Promise.reject(fail("CONNECT_TIMEOUT"))));
    expect(alone!.reason).toBe("connection");
    expect(db.state()).toBe("down");
  });

  it("gives up at the client deadline when the server does not answer, and marks the database down", async () => {
    const { db, pools } = setup();
    const frozen = () => new Promise<never>(() => {});
    const error = await unavailable(db.run("finalize", frozen));
    expect(error).toBeInstanceOf(DatabaseUnavailable);
    expect(error!.reason).toBe("timeout");
    expect(pools.made[0]!.ended).toBe(1);
    expect(db.state()).toBe("down");
  });

  it("lets the statements in flight on a pool it gives up keep their own deadline, and answers them", async () => {
    const { db, pools } = setup({ ...DEFAULT_DB_TIMEOUTS, deadlineMs: 200, downForMs: 1_000 });
    let answer: (v: string) => void = () => {};
    const inFlight = db.run("reserve", () => new Promise<string>((r) => (answer = r)));
    // Another call finds the database down meanwhile: the pool is let go, not cut.
    const refused = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    expect((await unavailable(db.run("finalize", () => Promise.reject(refused))))!.reason).toBe("connection");
    expect(pools.made[0]!.endTimeouts).toEqual([0.2]); // seconds: one deadline to answer what was sent
    answer("booked");
    expect(await inFlight).toBe("booked");
  });

  it("does not extend the down state for a statement of a pool already given up", async () => {
    const { db, advance } = setup();
    const stale = db.run("reserve", () => new Promise<never>(() => {}));
    const refused = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    await unavailable(db.run("finalize", () => Promise.reject(refused)));
    advance(1_001); // the down period is over
    expect((await unavailable(stale))!.reason).toBe("timeout");
    // Not extended: the next call probes now (and goes on) instead of being refused.
    expect(await db.run("next", () => Promise.resolve("served"))).toBe("served");
    expect(db.state()).toBe("up");
  });

  it("retries once a call whose pooled connection was lost, and succeeds on the fresh one", async () => {
    const { db, logs } = setup();
    let calls = 0;
    const result = await db.run(
      "reserve",
      () => (++calls === 1 ? Promise.reject(fail("CONNECTION_CLOSED")) : Promise.resolve("booked")),
    );
    expect(result).toBe("booked");
    expect(calls).toBe(2);
    expect(logs.join("\n")).toMatch(/reserve: connection lost .*retrying once/);
    expect(db.state()).toBe("up");
  });

  it("does not retry twice: a second lost connection is an outage", async () => {
    const { db } = setup();
    let calls = 0;
    const error = await unavailable(db.run("reserve", () => (calls++, Promise.reject(fail("ECONNRESET")))));
    expect(error!.reason).toBe("connection");
    expect(calls).toBe(2);
  });

  it("passes the server's answer to a bad statement through, and keeps the database up", async () => {
    const { db } = setup();
    const sqlError = fail("P0001");
    await expect(db.run("reserve", () => Promise.reject(sqlError))).rejects.toBe(sqlError);
    expect(db.state()).toBe("up");
  });

  it("answers a server-side statement timeout with DatabaseUnavailable, without the down state", async () => {
    const { db } = setup();
    const error = await unavailable(db.run("reserve", () => Promise.reject(fail("57014"))));
    expect(error!.reason).toBe("timeout");
    expect(db.state()).toBe("up");
  });

  it("answers DatabaseUnavailable when no database is configured", async () => {
    const db = createDatabase({ config: null, applicationName: "t", log: () => {} });
    const error = await unavailable(db.run("mint", () => Promise.resolve(1)));
    expect(error!.reason).toBe("not_configured");
    expect(error!.retryAfterMs).toBe(30_000);
  });
});

describe("dbTimeoutsFromEnv", () => {
  it("reads each variable, ignores nonsense, and keeps the deadline above the statement timeout", () => {
    const env: Record<string, string> = {
      GATEWAY_DB_CONNECT_TIMEOUT_MS: "1500",
      GATEWAY_DB_STATEMENT_TIMEOUT_MS: "8000",
      GATEWAY_DB_DOWN_MS: "-3",
      GATEWAY_DB_DEADLINE_MS: "2.5",
      GATEWAY_DB_PROBE_WAIT_MS: "250",
    };
    expect(dbTimeoutsFromEnv((n) => env[n])).toEqual({
      connectTimeoutMs: 1500,
      statementTimeoutMs: 8000,
      deadlineMs: 9000,
      downForMs: DEFAULT_DB_TIMEOUTS.downForMs,
      probeWaitMs: 250,
    });
    expect(dbTimeoutsFromEnv(() => undefined)).toEqual(DEFAULT_DB_TIMEOUTS);
  });
});

describe("classifyDbError", () => {
  it("tells connection failures, lost connections, a busy server and query errors apart", () => {
    expect(classifyDbError(fail("ECONNREFUSED"))).toBe("connect");
    expect(classifyDbError(fail("CONNECTION_ENDED"))).toBe("lost");
    expect(classifyDbError(fail("57P01"))).toBe("lost");
    expect(classifyDbError(fail("57014"))).toBe("busy");
    expect(classifyDbError(fail("23505"))).toBe("query");
    expect(classifyDbError(new Error("no code"))).toBe("query");
  });
});
