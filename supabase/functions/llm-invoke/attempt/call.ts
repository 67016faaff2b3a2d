// One call to a provider: made ready from a reservation (the model booked, its provider's client, the
// key's secret, the tier to ask for, the request as that model takes it), then made whole or opened as
// a stream. A call that throws instead of answering gives its booking back.
import type { Reservation, ServiceTierRow } from "../contract.ts";
import type { Provider } from "../../_shared/providers/registry.ts";
import type { KeyRefusal } from "../../_shared/providers/key-reader.ts";
import { sanitizeError } from "../../_shared/sanitize.ts";
import type { StreamOutcome, UpstreamClient } from "../../_shared/upstream/port.ts";
import { type ChainLink, linkFor } from "../model/model-chain.ts";
import type { Operation, OperationOutcome } from "./operation.ts";
import type { RequestPlan } from "./request-plan.ts";
import { chooseTier, type TierChoice } from "./service-tiers.ts";
import { providerOf, type WorkerParts } from "./worker.ts";

/** One call made ready (prepareCall): who is called, with which key, tier and request. */
export interface PreparedCall<S> {
  provider: Provider;
  /** The provider's name, for messages. */
  who: string;
  /** The zone its day and month turn in (its row's day_zone). */
  dayZone: string;
  client: UpstreamClient;
  apiKey: string;
  tier: TierChoice["tier"];
  /** The request as the provider port takes it (a generation's: the hub's, and the inner dialect's own body). */
  sent: S;
}

/** A reservation whose key's secret could not be read: released, and why (for the caller, if no key is left). */
export interface UnreadKey {
  unread: KeyRefusal | "no_row";
}

/**
 * A reservation made ready to call: the model it booked (normally a link of the chain; another
 * model when the caller's name now resolves to it, an alias repointed since this worker cached its
 * row), its provider's client and the key's secret (read by that provider's names: the database
 * booked a key of the model's provider), the tier to ask for (`flexShed`: the provider shed a flex
 * call of this request, so standard where the row says so), the request as that model takes it.
 * UnreadKey when the key's secret is not set: the reservation is released (the caller leaves the key out).
 */
export async function prepareCall(
  worker: Pick<WorkerParts, "store" | "profiles" | "upstreamServing" | "logError">,
  serviceTiers: () => Promise<readonly ServiceTierRow[]>,
  plan: Pick<RequestPlan, "chain" | "operation" | "request" | "answerTokens">,
  reservation: Reservation,
  flexShed: boolean,
): Promise<PreparedCall<{ model: string }> | UnreadKey> {
  const { chain, operation, request } = plan;
  let link: ChainLink<{ model: string }>;
  try {
    link = await linkFor(worker.profiles, chain, reservation.model, (row) => operation.fit(row));
  } catch (error) {
    await worker.store.release(reservation.reservationId, "the reserved model cannot take the request");
    throw error;
  }
  const provider = providerOf(link.profile);
  // A provider whose row is not usable here (its message is logged when the rows are read) has no key.
  const upstream = await worker.upstreamServing(link.profile);
  const apiKey = upstream?.key(reservation.envVarName);
  if (upstream === undefined || apiKey === undefined || apiKey === "") {
    const why = upstream === undefined
      ? `provider ${provider} has no usable row`
      : upstream.key.refusal(reservation.envVarName);
    const unread = upstream === undefined ? "no_row" : upstream.key.refusalKind(reservation.envVarName) ?? "unset";
    worker.logError(`key ${reservation.keyAlias} (secret ${reservation.envVarName}) not used: ${why}`);
    await worker.store.release(reservation.reservationId, "key secret not set");
    return { unread };
  }
  let choice: TierChoice;
  try {
    choice = chooseTier(
      await serviceTiers(),
      reservation.model,
      reservation.priority ?? request.priority,
      request.serviceTier,
    );
  } catch (error) {
    await worker.store.release(reservation.reservationId, "service tier not allowed for the class");
    throw error;
  }
  const tier = flexShed && choice.standardOnShed ? null : choice.tier;
  // (A model outside the chain is the first one's name resolved anew: it was booked as the first.)
  const at = Math.max(0, chain.findIndex((l) => l.model === reservation.model));
  const sent = operation.prepared(link.request, { reservation, answer: plan.answerTokens, index: at, tier });
  return { provider, who: upstream.who, dayZone: upstream.row.day_zone, client: upstream.client, apiKey, tier, sent };
}

/** The whole call, timed as `upstream`. */
export async function callProvider(
  worker: Pick<WorkerParts, "store" | "options" | "clock">,
  plan: Pick<RequestPlan, "operation" | "deadline" | "signal" | "timing">,
  call: PreparedCall<{ model: string }>,
  reservation: Reservation,
): Promise<OperationOutcome> {
  const { operation, deadline, signal } = plan;
  const timeoutMs = Math.max(1, Math.min(worker.options.attemptTimeoutMs, deadline - worker.clock.now()));
  try {
    const asked = { apiKey: call.apiKey, request: call.sent, timeoutMs, signal };
    return await plan.timing.time("upstream", () => operation.call(call.client, asked, call.who));
  } catch (error) {
    // A client does not throw for failed calls; if it does anyway, give the booking back.
    await worker.store.release(reservation.reservationId, sanitizeError(error, { secrets: [call.apiKey] }));
    throw error;
  }
}

/** Opens the provider's stream and waits for its first chunk (what fails before it is an attempt like any other). */
export async function openProviderStream(
  worker: Pick<WorkerParts, "store" | "options" | "clock">,
  plan: Pick<RequestPlan, "deadline" | "signal" | "timing">,
  call: PreparedCall<{ model: string }>,
  reservation: Reservation,
  stream: NonNullable<Operation["stream"]>,
): Promise<StreamOutcome> {
  const { deadline, signal } = plan;
  const timeoutMs = Math.max(1, Math.min(worker.options.attemptTimeoutMs, deadline - worker.clock.now()));
  const streamTimeoutMs = Math.max(1, deadline - worker.clock.now());
  try {
    return await plan.timing.time("upstream", () =>
      stream(call.client, call.who, {
        apiKey: call.apiKey,
        request: call.sent,
        timeoutMs,
        streamTimeoutMs,
        signal,
      }));
  } catch (error) {
    await worker.store.release(reservation.reservationId, sanitizeError(error, { secrets: [call.apiKey] }));
    throw error;
  }
}
