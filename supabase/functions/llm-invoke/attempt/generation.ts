// A generation, the operation the attempt loop runs unless its context names another (operation.ts):
// the request as each model takes it (model/adapt.ts), its input estimated from its turns and images
// (model/tokens.ts), the answer booked for each model (answer-size.ts) and sent as the cap where a
// budget in money booked it, the tier asked for, the provider's whole answer or its stream.
import { hubText } from "../../_shared/upstream/hub.ts";
import type { UpstreamClient } from "../../_shared/upstream/port.ts";
import type { ModelRequest, NormalizedRequest } from "../contract.ts";
import { keyedRequest } from "../cache/key.ts";
import { adaptToModel } from "../model/adapt.ts";
import { estimateRequestTokens } from "../model/tokens.ts";
import { answerSize, bookedPerAnswer, withBookedCap } from "./answer-size.ts";
import type { Operation, OperationCall, OperationOutcome } from "./operation.ts";
import { openStream } from "./stream.ts";

export function generation(request: NormalizedRequest): Operation<ModelRequest> {
  return {
    fit: (profile) => adaptToModel(profile, request),
    estimate: (chain) => request.imageTokens + Math.max(...chain.map((l) => estimateRequestTokens(l.request))),
    imageTokens: request.imageTokens,
    answerSize: (chain) => answerSize(chain, request),
    requests: () => 1,
    counted: (sent) => sent,
    cacheBody(client, first, answer) {
      // The tier left out (the gateway's, not the caller's), the answer it would book for it in.
      const booked = bookedPerAnswer(answer, 0, first.options.outputCount);
      const sent: ModelRequest = { ...keyedRequest(first), ...(booked === null ? {} : { bookedOutputTokens: booked }) };
      return client.wireBody?.(sent) ?? sent;
    },
    prepared(fitted, { reservation, answer, index, tier }) {
      const booked = withBookedCap(fitted, reservation, answer, index);
      // The answer booked for this model, for a provider that requires a cap where the caller named none.
      const cap = bookedPerAnswer(answer, index, booked.options.outputCount);
      return {
        ...booked,
        ...(tier === null ? {} : { serviceTier: tier }),
        ...(cap === null ? {} : { bookedOutputTokens: cap }),
      };
    },
    call: (client, call) => generate(client, call),
    unsaidUsage: () => null,
    ...(request.stream ? { stream: openStream } : {}),
  };
}

/** One whole generation, its answer as the loop reads it. */
async function generate(client: UpstreamClient, call: OperationCall<ModelRequest>): Promise<OperationOutcome> {
  const outcome = await client.generate(call);
  if (!outcome.ok) return outcome;
  const { answer, dialectAnswer } = outcome;
  return {
    ok: true,
    latencyMs: outcome.latencyMs,
    usage: answer.usage,
    answer: { text: hubText(answer), hub: answer, ...(dialectAnswer === undefined ? {} : { dialectAnswer }) },
    ...(outcome.servedTier === undefined ? {} : { servedTier: outcome.servedTier }),
    ...(outcome.room === undefined ? {} : { room: outcome.room }),
  };
}
