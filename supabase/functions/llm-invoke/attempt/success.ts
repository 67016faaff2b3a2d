// A success, whole or streamed: its finalize (with the request's times, the tier asked for and the one
// served, the provider's room) and its answer, kept in the response cache's flight when it is whole.
// Off the response path where the runtime allows it; before the answer where little is left at the
// provider (room.ts).
import type { FinalizeParams, Reservation } from "../contract.ts";
import type { ProviderRoom, StreamOutcome } from "../../_shared/upstream/port.ts";
import type { CacheFlight } from "../cache/response-cache.ts";
import { answerOf, headOf } from "./answer.ts";
import { answerTimes, successRecord, usageCounts } from "./attempt-record.ts";
import type { PreparedCall } from "./call.ts";
import type { InvokeAnswer, InvokeResult } from "./context.ts";
import { finalizeReliably, landsWithin, WRITTEN_FIRST_WAIT_MS } from "./finalize.ts";
import type { OperationOutcome } from "./operation.ts";
import type { RequestPlan } from "./request-plan.ts";
import { roomUntil, writeBeforeAnswer } from "./room.ts";
import { relayStream } from "./stream.ts";
import type { WorkerParts } from "./worker.ts";

type SuccessDeps = Pick<WorkerParts, "store" | "clock" | "logError">;

/** The call that succeeded: its reservation, the calls this request made, the time it waited for its turn. */
export interface Served<S = unknown> {
  call: PreparedCall<S>;
  reservation: Reservation;
  attempts: number;
  waitedMs: number;
}

/**
 * A success's finalize, streamed or whole: the record with the request's times (read when the
 * answer's first byte leaves), the tier asked for and the one served, the provider's room (less the
 * caller's next call when the answer leaves first: room.ts). `writtenFirst`: the answer waits for it
 * (the room at or below the margin); else it goes with the others.
 */
function finalizeSuccess(
  deps: SuccessDeps,
  plan: Pick<RequestPlan, "deadline" | "size">,
  record: FinalizeParams,
  { call, reservation }: Served,
  served: { servedTier?: string | null; room?: ProviderRoom | null },
  times: ReturnType<typeof answerTimes>,
  order: { writtenFirst: boolean; answeredFirst: boolean },
): Promise<boolean> {
  const { store, logError, clock } = deps;
  const { writtenFirst, answeredFirst } = order;
  return finalizeReliably(store, logError, {
    ...record,
    ...times,
    booked: { quotaGroup: reservation.quotaGroup, model: reservation.model },
    ...(writtenFirst ? { beforeAnswer: true } : {}),
    serviceTier: call.tier,
    servedTier: served.servedTier ?? null,
    room: roomUntil(served.room, clock.now(), answeredFirst ? { bookedTokens: plan.size.tokens } : undefined),
    statedLimits: served.room?.limits ?? null,
  }, { deadline: plan.deadline, clock });
}

/** The first chunk is here: the stream is the caller's, finalized when it ends. */
export function answerStreamed(
  deps: SuccessDeps,
  plan: RequestPlan,
  flight: CacheFlight | null,
  served: Served,
  opened: Extract<StreamOutcome, { ok: true }>,
): InvokeAnswer {
  const { call, reservation } = served;
  const { size, timing } = plan;
  const times = answerTimes(timing);
  // Little left at the provider: the finalize lands before the stream's last event (room.ts).
  const writeFirst = writeBeforeAnswer(opened.room, size.tokens, reservation.quota);
  return relayStream(opened, {
    head: { ...headOf(plan.chain[0]!.model, reservation, served.attempts, call.provider), waited_ms: served.waitedMs },
    reservationId: reservation.reservationId,
    upstream: call.who,
    estimatedInputTokens: size.input,
    idempotent: plan.idempotent,
    finalize: (record) =>
      finalizeSuccess(deps, plan, record, served, opened, times, { writtenFirst: writeFirst, answeredFirst: !writeFirst }),
    writeFirst,
    ...(flight === null ? {} : {
      settled: (whole: InvokeResult | null) =>
        whole === null ? flight.drop() : flight.keep(whole, reservation.reservationId),
    }),
    endRequest: () => deps.store.endRequest(reservation.reservationId),
    afterAnswer: plan.afterAnswer,
    clock: deps.clock,
    logError: deps.logError,
    signal: plan.signal,
  });
}

/**
 * The whole answer: finalized (off the response path where the runtime allows it; before the answer
 * where little is left at the provider: room.ts), then answered.
 */
export async function answerWhole(
  deps: SuccessDeps,
  plan: RequestPlan,
  flight: CacheFlight | null,
  served: Served,
  outcome: Extract<OperationOutcome, { ok: true }>,
): Promise<InvokeResult> {
  const { call, reservation } = served;
  const { size, timing } = plan;
  // Where the provider counted nothing, what the operation books instead (null: the estimate stands).
  const usage = outcome.usage ?? plan.operation.unsaidUsage(size.input);
  const head = headOf(plan.chain[0]!.model, reservation, served.attempts, call.provider);
  const result = answerOf(outcome.answer, usage, head, size.input, served.waitedMs);
  const record = successRecord({
    reservationId: reservation.reservationId,
    latencyMs: outcome.latencyMs,
    ...usageCounts(usage),
    response: plan.idempotent ? result : null,
  });
  if (flight !== null) plan.onCache?.({ status: flight.storable(result) ? "stored" : "miss" });
  const first = writeBeforeAnswer(outcome.room, size.tokens, reservation.quota);
  const answeredFirst = !first && plan.answersFirst;
  const finalized = finalizeSuccess(deps, plan, record, served, outcome, answerTimes(timing), {
    writtenFirst: first,
    answeredFirst,
  });
  // Little left at the provider (room.ts): the answer waits for its finalize, a moment at most.
  const landed = first && await timing.time("finalize", () => landsWithin(finalized, WRITTEN_FIRST_WAIT_MS));
  if (landed && flight === null) return result;
  await plan.afterAnswer(flight === null ? finalized : finalized.then(() => flight.keep(result, reservation.reservationId)));
  return result;
}
