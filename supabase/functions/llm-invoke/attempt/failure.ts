// A failed call, settled: a provider's 404 for the model confirmed (withdrawal.ts) or taken as any other
// 4xx, the attempt's record finalized (awaited: the next reservation must see its cooldown), and then
// either thrown as the caller's answer (a 4xx, the caller gone) or handed back to the attempt loop,
// which decides the next attempt (invoke.ts).
import type { Reservation } from "../contract.ts";
import type { UpstreamError } from "../../_shared/upstream/port.ts";
import { failureRecord } from "./attempt-record.ts";
import type { PreparedCall } from "./call.ts";
import { finalizeReliably } from "./finalize.ts";
import { moneyRested } from "./money-rest.ts";
import type { OperationOutcome } from "./operation.ts";
import { cancelled, rejectedByProvider } from "./refusals.ts";
import type { RequestPlan } from "./request-plan.ts";
import type { WithdrawalCheck } from "./withdrawal.ts";
import type { WorkerParts } from "./worker.ts";

/** A model this request found withdrawn, and its successor (the answer if no call is left). */
export interface Withdrawn {
  model: string;
  successor: string | null;
}

/** What a failure leaves for the next attempt: the error as the caller would be told it, the model withdrawn. */
export interface SettledFailure {
  /** As classified here (a 404 not confirmed is a client error), a money rest's end told as its retry. */
  error: UpstreamError;
  /** Set when the model was confirmed withdrawn: learned once, in the database; the key is not at fault. */
  withdrawn: Withdrawn | null;
}

/** Finalizes a failed call; throws the caller's answer where no attempt may follow. */
export async function settleFailure(
  worker: Pick<WorkerParts, "store" | "clock" | "logError" | "options" | "profiles">,
  stillNotFound: WithdrawalCheck,
  plan: Pick<RequestPlan, "deadline" | "timing" | "size">,
  outcome: Extract<OperationOutcome, { ok: false }>,
  reservation: Reservation,
  call: PreparedCall<unknown>,
): Promise<SettledFailure> {
  const { store, clock, logError, profiles } = worker;
  const { deadline, timing } = plan;
  let error = outcome.error;
  if (error.class === "model_withdrawn" && !(await stillNotFound(call.client, call.apiKey, reservation.model, plan))) {
    // This key sees the model (or the provider could not say): the mark would be wrong for everyone.
    error = { ...error, class: "client_error" };
  }
  const now = clock.now();
  const record = failureRecord({
    reservationId: reservation.reservationId,
    latencyMs: outcome.latencyMs,
    error,
    now,
    dayZone: call.dayZone,
    defaultCooldownMs: worker.options.defaultCooldownMs,
    inputTokens: plan.size.input,
  });
  // Money: the caller is told the rest's end (an hour, or the month's turn where it comes first).
  const told = moneyRested(error, record.cooldownUntil, now);
  await timing.time("finalize", () =>
    finalizeReliably(store, logError, { ...record, serviceTier: call.tier }, { deadline, clock }));
  if (error.class === "client_error") throw rejectedByProvider(error);
  if (error.kind === "aborted") throw cancelled();
  if (error.class !== "model_withdrawn") return { error: told, withdrawn: null };
  const withdrawn = { model: reservation.model, successor: (await profiles(reservation.model))?.successor ?? null };
  profiles.forget(reservation.model);
  return { error: told, withdrawn };
}
