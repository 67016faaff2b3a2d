// llm-invoke served through a transaction-mode pooler (PgBouncer standing in for Supavisor, port 6543
// on Supabase): the functions' GATEWAY_DB_URL points at it, so prepared statements are off. Each of a
// request's statements is still one network round trip, counted at a proxy in front of the pooler.
// Without PgBouncer the file is skipped locally and fails in CI (CI installs it).
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { dbConfigFromEnv, poolOptions } from "../../supabase/functions/_shared/db.ts";
import { type FlightCounter, hasPgBouncer, type PgBouncer, startFlightCounter, startPgBouncer } from "../../shared/db/pgbouncer.ts";
import { type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

const GEMMA = "gemma-3-27b-it";
const REQUESTS = 5;
const run = hasPgBouncer() || process.env.CI ? describe : describe.skip;

let s: InvokeStack | undefined;
let pooler: PgBouncer | undefined;
/** The round-trip counter between the function and the pooler. */
let bouncer: FlightCounter | undefined;

run("llm-invoke through PgBouncer in transaction mode", () => {
  beforeAll(async () => {
    s = await startInvokeStack("llm_invoke_pooler", {
      keys: [
        { alias: "pooler-key", project: "proj-pooler", priority: 1, simKey: "sim-key-pooler" },
        { alias: "pooler-openai", provider: "openai", project: "org-pooler", priority: 1, simKey: "sk-sim-pooler" },
      ],
      dbEnv: async (db) => {
        pooler = await startPgBouncer(await gatewayRoleUrl(db.url));
        bouncer = await startFlightCounter(pooler.url);
        return { GATEWAY_DB_URL: bouncer.url };
      },
    });
  });
  afterAll(async () => {
    await s?.close();
    await bouncer?.close();
    await pooler?.close();
  });

  /** Flights per statement, named by the gateway function it calls. */
  function flightsByFunction(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [text, n] of bouncer!.flights.byStatement) {
      const name = /public\.(google_ai_\w+)\s*\(/.exec(text)?.[1] ?? text.slice(0, 40);
      out[name] = (out[name] ?? 0) + n;
    }
    return out;
  }

  async function sequential(prefix: string, auth?: string) {
    for (let i = 0; i < REQUESTS; i++) {
      const res = await s!.call({ model: GEMMA, prompt: "one round trip", request_id: `${prefix}-${i}` }, auth === undefined ? {} : { auth });
      expect(res.status, res.text).toBe(200);
    }
  }

  it("the counter sees a parameterized statement without prepared statements as two round trips (postgres.js describes it first)", async () => {
    const config = dbConfigFromEnv((n) => (n === "GATEWAY_DB_URL" ? bouncer!.url : undefined))!;
    expect(config.prepare).toBe(false);
    const raw = postgres(config.url, { ...poolOptions(config, "pooler-control"), max: 1 });
    try {
      await raw`select 1 as warm`;
      bouncer!.resetFlights();
      await raw`select public.google_ai_model_traits(p_model => ${GEMMA}) as r`;
      expect(flightsByFunction()).toEqual({ google_ai_model_traits: 2 });
    } finally {
      await raw.end();
    }
  });

  it("serves with the service key: reservation and finalize one round trip each, per request", async () => {
    await sequential("warm"); // the worker's connections and per-worker caches
    bouncer!.resetFlights();
    await sequential("service");
    const flights = flightsByFunction();
    expect(flights.google_ai_reserve_call).toBe(REQUESTS); // the CALL path (85_reserve_call.sql), one round trip
    expect(flights.google_ai_finalize_call).toBe(REQUESTS); // after the answer, one CALL (86_finalize_call.sql)
    expect(bouncer!.flights.total).toBe(2 * REQUESTS);
    const [row] = await s!.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where request_id like 'service-%' and status = 'succeeded'`;
    expect(row!.n).toBe(REQUESTS);
  });

  it("a success near the end of the provider's room: its finalize one CALL through the pooler, committed inside it, then answered", async () => {
    // OpenAI's organization has 100 requests a minute; after a first call (the worker's caches) 96 are
    // spent outside the gateway: the answer says 2 are left, at or below the margin (attempt/room.ts), so
    // its finalize is written before the answer.
    const org = s!.openaiSim.organizations();
    s!.openaiSim.setOrganizations({ ...org, "sim-org-pooler": { ...org["sim-org-pooler"]!, limits: { "gpt-4o-mini": { rpm: 100, tpm: 10_000_000 } } } });
    await s!.setLimit({ model: "gpt-4o-mini", rpm: 10_000, tpm: 100_000_000, rpd: null });
    expect((await s!.call({ model: "gpt-4o-mini", prompt: "warm", request_id: "room-warm" })).status).toBe(200);
    expect(s!.openaiSim.spend({ organization: "sim-org-pooler", model: "gpt-4o-mini", requests: 96 })).toEqual({ admitted: 96, refused: 0 });
    bouncer!.resetFlights();
    const res = await s!.call({ model: "gpt-4o-mini", prompt: "near the end", request_id: "room-near-end" });
    expect(res.status, res.text).toBe(200);
    expect(flightsByFunction()).toEqual({ google_ai_reserve_call: 1, google_ai_finalize_call: 1 });
    expect(bouncer!.flights.total).toBe(2);
    const [row] = await s!.sql`select status from public.google_ai_attempts where request_id = 'room-near-end'`;
    expect(row).toEqual({ status: "succeeded" });
  });

  it("serves with a scoped token: its check is cached, so the same one round trip per statement", async () => {
    const { token } = await mintToken(s!.sql, "pooler-notebook", { models: [GEMMA] });
    await sequential("token-warm", token);
    bouncer!.resetFlights();
    await sequential("token", token);
    const flights = flightsByFunction();
    expect(flights.google_ai_reserve_call).toBe(REQUESTS); // the CALL path (85_reserve_call.sql), one round trip
    expect(flights.google_ai_finalize_call).toBe(REQUESTS); // after the answer, one CALL (86_finalize_call.sql)
    expect(bouncer!.flights.total).toBe(2 * REQUESTS);
  });
});
