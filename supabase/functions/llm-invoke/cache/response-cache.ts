// The response cache on the attempt loop's path (attempt/cache-first.ts calls `start` once the request's
// chain is resolved, before anything is booked):
//   hit     the stored answer, in the caller's dialect whole or streamed (the route writes it from the
//           hub's answer, as a replay): no provider called, nothing of the provider's limits, the
//           caller's budgets or money booked; one round trip (google_ai_cache_lookup, which writes
//           the hit's audit row in the same statement)
//   flight  this request calls the provider for the entry; `keep` stores its answer if it is whole
//           (storable.ts), else (and `drop`) ends the flight without one: the next waiter takes it over
//   off     the cache is not used: not asked, no-store, or a caller the database does not let read
//           (an invalid token: the reservation refuses it as usual)
// Single flight: a request identical to one in flight (google_ai_cache_lookup answers `wait`) asks
// again every POLL_MS until that answer lands (a hit), the flight is freed (it takes it over) or its
// own max-wait passes (it calls the provider itself and stores nothing). NO_WAIT does not wait.
import type { Clock } from "../clock.ts";
import type { ReserveCaller } from "../contract.ts";
import type { HubAnswer } from "../../_shared/upstream/hub.ts";
import type { CacheAsk, CacheReport } from "./ask.ts";
import { cacheKey } from "./key.ts";
import { storableFinish } from "./storable.ts";
import type { CacheStore } from "./store.ts";

/**
 * What a hit says of itself in every answer (the native body's `cached`; `eve_cache` inside each
 * dialect's usage): it was a hit, which entry, how old, and what the stored answer cost when it was
 * called (null: its provider's price was not known).
 */
export interface CacheMark {
  hit: true;
  entry: number;
  age_s: number;
  cost_usd: number | null;
}

/** How often a request waiting for an identical one's answer looks again. */
export const POLL_MS = 100;

export interface CacheRequest {
  ask: CacheAsk;
  caller: ReserveCaller;
  requestId: string;
  /** The first model of the chain, canonical, and its provider: what the key names beside the body. */
  model: string;
  provider: string;
  /** The wire body the provider would be sent (UpstreamClient.wireBody); throws where it cannot be written. */
  body: () => unknown;
  /** The invocation's end (epoch ms): its flight is held until then. */
  deadline: number;
  /** How long it may wait for an identical request's answer (its max_wait_ms; 0: NO_WAIT). */
  maxWaitMs: number;
  signal: AbortSignal;
  /** Times each look-up (Server-Timing: it stands where the reservation would). */
  timed?: <T>(work: () => Promise<T>) => Promise<T>;
}

/** What the cache reads of an answer (attempt/context.ts's InvokeResult): the rest is kept as it is. */
export interface CacheableAnswer {
  hub?: HubAnswer;
  model: string;
  provider?: string;
  attempts: number;
  waited_ms: number;
}

export interface CacheFlight {
  kind: "flight";
  /** Whether `keep` would store the answer (it is whole: storable.ts). */
  storable(result: CacheableAnswer): boolean;
  /**
   * Stores the answer if it is whole, else ends the flight; after its attempt's finalize (the entry's
   * tokens and cost are read from the attempt row). Never throws: a failure is logged.
   */
  keep(result: CacheableAnswer, reservationId: string): Promise<void>;
  /** Ends the flight without an answer: the next waiter to look takes it over. */
  drop(): Promise<void>;
}

export type CacheStart =
  | {
    kind: "hit";
    /** The stored answer as kept (an InvokeResult), with no call made and no wait; which entry, how old. */
    answer: Record<string, unknown>;
    cached: CacheMark;
    report: CacheReport;
  }
  | CacheFlight
  | { kind: "off"; report: CacheReport };

export interface ResponseCache {
  start(request: CacheRequest): Promise<CacheStart>;
}

const OFF: CacheStart = { kind: "off", report: { status: "bypass" } };

export function createResponseCache(deps: {
  store: CacheStore;
  clock: Clock;
  /** How long a worker trusts its answer to whether the owner set any default (as it trusts model rows). */
  defaultsTtlMs: number;
  logError: (message: string) => void;
}): ResponseCache {
  const { store, clock, logError } = deps;
  // Whether the owner set any default: read on a worker's first request that says nothing of the
  // cache, then again in the background once older than defaultsTtlMs (no request waits for that;
  // a failed read keeps the last answer).
  let defaults: { at: number; exist: Promise<boolean>; refreshing: boolean } | null = null;
  const defaultsExist = (): Promise<boolean> => {
    if (defaults === null) {
      const exist = store.cacheDefaultsExist().catch((error) => {
        defaults = null;
        throw error;
      });
      defaults = { at: clock.now(), exist, refreshing: false };
    } else if (!defaults.refreshing && clock.now() - defaults.at > deps.defaultsTtlMs) {
      const entry = defaults;
      entry.refreshing = true;
      store.cacheDefaultsExist().then(
        (exist) => Object.assign(entry, { at: clock.now(), exist: Promise.resolve(exist), refreshing: false }),
        () => Object.assign(entry, { at: clock.now(), refreshing: false }),
      );
    }
    return defaults.exist;
  };

  return {
    async start(request) {
      const { ask } = request;
      if (ask.mode === "no-store") return OFF;
      const mode = ask.mode;
      if (ask.mode === "default" && !(await defaultsExist())) return OFF;
      let body: unknown;
      try {
        body = request.body();
      } catch {
        return OFF; // the provider could not be sent it either: the attempt says why
      }
      const key = await cacheKey(request.provider, request.model, body);
      const holder = crypto.randomUUID();
      const waitUntil = clock.now() + request.maxWaitMs;
      const timed = request.timed ?? ((work) => work());
      for (;;) {
        const found = await timed(() => store.cacheLookup({
          caller: request.caller,
          model: request.model,
          key,
          mode,
          ttlS: ask.ttlS ?? null,
          holder,
          flightUntil: new Date(request.deadline),
          requestId: request.requestId,
        }));
        if (found.status === "bypass") return OFF;
        if (found.status === "hit") {
          const ageS = Math.floor(found.ageMs / 1000);
          return {
            kind: "hit",
            answer: { ...found.answer, attempts: 0, waited_ms: 0 },
            cached: { hit: true, entry: found.entry, age_s: ageS, cost_usd: found.costUsd },
            report: { status: "hit", ageS },
          };
        }
        if (found.status === "miss") return flight(found.entry, holder, found.ttlS);
        const left = waitUntil - clock.now();
        if (left <= 0) return { kind: "off", report: { status: "miss" } };
        try {
          await clock.sleep(Math.min(POLL_MS, left), request.signal);
        } catch {
          return { kind: "off", report: { status: "miss" } }; // the caller went away: the loop says so
        }
      }
    },
  };

  function flight(entry: number, holder: string, ttlS: number): CacheFlight {
    let ended = false;
    const drop = async () => {
      if (ended) return;
      ended = true;
      await store.cacheAbandon(entry, holder).catch((e) => logError(`cache abandon failed: ${String(e)}`));
    };
    return {
      kind: "flight",
      storable: (result) => storableFinish(result.hub) !== null,
      async keep(result, reservationId) {
        const finish = storableFinish(result.hub);
        if (finish === null || ended) return drop();
        ended = true;
        await store.cacheKeep({
          entry,
          holder,
          answer: storedAnswer(result),
          servedModel: result.model,
          provider: result.provider ?? null,
          finish,
          ttlS,
          reservationId,
        }).catch((e) => logError(`cache store failed: ${String(e)}`));
      },
      drop,
    };
  }
}

/** What an entry keeps of an answer: the answer, not this request's own figures (its replay, its hit, its calls). */
function storedAnswer(result: CacheableAnswer): CacheableAnswer {
  const { replayed: _replayed, cached: _cached, ...answer } = result as CacheableAnswer & {
    replayed?: boolean;
    cached?: unknown;
  };
  return { ...answer, attempts: 0, waited_ms: 0 };
}
