// Which service tier a call to a provider asks for (docs/google-429s.md, "Service tiers"): the operator's
// row for (model, priority class) in google_ai_service_tiers, or the tier the caller asked for (the
// OpenAI surface's service_tier) when its class allows it; no row and nothing asked: standard, and
// nothing is sent. A flex call the provider sheds (a 503) is retried like any 503, at standard when
// the row says so (standard_on_shed).
//
// The rows are read once per worker and refreshed in the background after ttlMs (as the model rows
// are, capabilities.ts): a stale row only changes which tier is asked, never what is admitted. They
// are read, and a caller's own tier checked (checkAskedTier), before the request books anything.
import { GatewayError } from "../../_shared/errors.ts";
import { PRIORITY_CLASSES, type PriorityClass, type ServiceTier, type ServiceTierRow } from "../contract.ts";
import type { Clock } from "../clock.ts";
import { type GatewayStore } from "../store/store.ts";
import { type UpstreamError } from "../../_shared/upstream/port.ts";

const RANK: Record<ServiceTier, number> = { flex: 0, standard: 1, priority: 2 };

export interface TierChoice {
  /** What to send as the body's serviceTier; null: nothing (standard). */
  tier: ServiceTier | null;
  /** Retry a shed flex call at standard. */
  standardOnShed: boolean;
}

/** The rows, cached per worker; [] when the store cannot list them (every call then standard). */
export function cachedServiceTiers(
  store: Pick<GatewayStore, "serviceTiers">,
  clock: Pick<Clock, "now">,
  ttlMs: number,
): () => Promise<readonly ServiceTierRow[]> {
  let rows: readonly ServiceTierRow[] | null = null;
  let at = 0;
  let loading: Promise<readonly ServiceTierRow[]> | null = null;
  const load = () => {
    loading ??= (store.serviceTiers?.() ?? Promise.resolve([])).then(
      (fresh) => {
        rows = fresh;
        at = clock.now();
        loading = null;
        return fresh;
      },
      () => {
        loading = null;
        return rows ?? [];
      },
    );
    return loading;
  };
  return async () => {
    if (rows === null) return await load();
    if (clock.now() - at > ttlMs) void load();
    return rows;
  };
}

/**
 * The tier for a call: the caller's own choice when given (checked against its class's ceiling),
 * else the row's. Throws a 400 when the caller asks for more than its class allows.
 */
export function chooseTier(
  rows: readonly ServiceTierRow[],
  model: string,
  priorityClass: string | undefined,
  asked: ServiceTier | undefined,
): TierChoice {
  const row = rows.find((r) => r.model === model && r.priorityClass === (priorityClass ?? "interactive"));
  // The class's ceiling is its row's tier (a class mapped to flex may not ask for more); no row: standard.
  const ceiling: ServiceTier = row?.serviceTier ?? "standard";
  if (asked !== undefined) {
    if (RANK[asked] > RANK[ceiling]) throw tierNotAllowed(asked, ceiling, model, priorityClass ?? "interactive");
    return { tier: asked === "standard" ? null : asked, standardOnShed: row?.standardOnShed ?? false };
  }
  if (row === undefined || row.serviceTier === "standard") return { tier: null, standardOnShed: false };
  return { tier: row.serviceTier, standardOnShed: row.standardOnShed };
}

/**
 * Before anything is booked: the caller's tier must be allowed, for every model of its chain, in some
 * class the request may be admitted in (`classes`; a token's own class is the database's, so its
 * candidates are every class at or below the one it asks for). Throws the same 400 as chooseTier; a
 * token admitted in a lower class than it could have been is still checked by chooseTier after.
 */
export function checkAskedTier(
  rows: readonly ServiceTierRow[],
  models: readonly string[],
  classes: readonly string[],
  asked: ServiceTier,
): void {
  for (const model of models) {
    const ceilings = classes.map((c) => rows.find((r) => r.model === model && r.priorityClass === c)?.serviceTier ?? "standard");
    const ceiling = ceilings.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), "flex" as ServiceTier);
    if (RANK[asked] > RANK[ceiling]) throw tierNotAllowed(asked, ceiling, model, classes.length === 1 ? classes[0] : undefined);
  }
}

/** The classes a request may be admitted in: a service caller's is known; a token's is at most the one it asks for. */
export function admissibleClasses(callerKind: "service" | "token", asked: PriorityClass | undefined): PriorityClass[] {
  if (callerKind === "service") return [asked ?? PRIORITY_CLASSES[0]!];
  return asked === undefined ? [...PRIORITY_CLASSES] : PRIORITY_CLASSES.slice(PRIORITY_CLASSES.indexOf(asked));
}

/** A flex call the provider shed: its capacity answer (503), not a quota or a request fault. */
export function shedFlex(tier: ServiceTier | null, error: UpstreamError): boolean {
  return tier === "flex" && error.class === "retryable" && error.httpStatus === 503;
}

function tierNotAllowed(asked: ServiceTier, ceiling: ServiceTier, model: string, priorityClass?: string): GatewayError {
  const allowed = (Object.keys(RANK) as ServiceTier[]).filter((t) => RANK[t] <= RANK[ceiling]);
  return new GatewayError(
    "invalid_request",
    `service_tier ${asked} is not allowed for ${model}` +
      `${priorityClass === undefined ? "" : ` in class ${priorityClass}`}: ask for ${allowed.join(" or ")} (or auto).`,
    { details: { field: "service_tier", allowed } },
  );
}
