// CacheStore over Postgres (store.ts): each operation one statement calling one RPC. A database
// failure becomes GatewayError("unavailable") through store/pg-store.ts's guardedRun.
import type { Database } from "../../_shared/db.ts";
import { guardedRun, jsonbText } from "../store/pg-store.ts";
import type { CacheStore, LookupAnswer } from "./store.ts";

export function createPgCacheStore(options: {
  database: Pick<Database, "run">;
  logError?: (message: string) => void;
}): CacheStore {
  const logError = options.logError ?? ((m: string) => console.error(`[llm-invoke] ${m}`));

  const run = guardedRun(options.database, logError);

  return {
    cacheLookup: (p) =>
      run("cache lookup", async (sql) => {
        const label = p.caller.kind === "service" ? p.caller.name : null;
        const tokenHash = p.caller.kind === "token" ? p.caller.tokenHash : null;
        const [row] = await sql<{ r: Record<string, unknown> }[]>`
          select public.google_ai_cache_lookup(p_caller => ${label}, p_token_hash => ${tokenHash},
            p_model => ${p.model}, p_key => ${p.key}, p_mode => ${p.mode}, p_ttl_s => ${p.ttlS}::integer,
            p_holder => ${p.holder}::uuid, p_flight_until => ${p.flightUntil.toISOString()}::timestamptz,
            p_request_id => ${p.requestId}) as r`;
        return lookupAnswer(row!.r);
      }),

    cacheKeep: (p) =>
      run("cache store", async (sql) => {
        const [row] = await sql<{ r: boolean }[]>`
          select public.google_ai_cache_store(p_entry => ${p.entry}::bigint, p_holder => ${p.holder}::uuid,
            p_answer => ${jsonbText(p.answer)}::text::jsonb, p_served_model => ${p.servedModel},
            p_provider => ${p.provider}, p_finish => ${p.finish}, p_ttl_s => ${p.ttlS}::integer,
            p_reservation_id => ${p.reservationId}::uuid) as r`;
        return row!.r === true;
      }),

    cacheAbandon: (entry, holder) =>
      run("cache abandon", async (sql) => {
        await sql`select public.google_ai_cache_abandon(p_entry => ${entry}::bigint, p_holder => ${holder}::uuid) as r`;
      }),

    cacheDefaultsExist: () =>
      run("cache defaults", async (sql) => {
        const [row] = await sql<{ r: boolean }[]>`select public.google_ai_cache_defaults_exist() as r`;
        return row!.r === true;
      }),
  };
}

function lookupAnswer(r: Record<string, unknown>): LookupAnswer {
  switch (r.status) {
    case "hit":
      return {
        status: "hit",
        entry: Number(r.entry),
        answer: r.answer as Record<string, unknown>,
        ageMs: Number(r.age_ms),
        costUsd: r.cost_usd === null || r.cost_usd === undefined ? null : Number(r.cost_usd),
      };
    case "miss":
      return { status: "miss", entry: Number(r.entry), ttlS: Number(r.ttl_s) };
    case "wait":
      return { status: "wait" };
    default:
      return { status: "bypass" };
  }
}
