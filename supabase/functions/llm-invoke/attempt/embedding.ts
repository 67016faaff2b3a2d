// An embedding batch for a provider that counts each input as a request of its own (Google's
// batchEmbedContents: 100 inputs are 100 requests of the model's RPM): each input is run as a request
// of its own, in order, each reserved, called, logged and priced like any attempt, so the minute's
// count is the provider's. The answer is the whole batch: the vectors in order, the usage summed. An
// input refused (a 429 when the minute is full and the caller will not wait) fails the whole request:
// the batch is not all-or-nothing, as the kernel reserves one request at a time. The inputs before it
// were served, and are in the books (each its attempt, priced), their vectors not returned; the
// refusal says how many (details.served_inputs of details.inputs), so a caller resends the rest.
import { GatewayError } from "../../_shared/errors.ts";
import type { HubAnswer, HubUsage } from "../../_shared/upstream/hub.ts";
import { type InvokeAnswer, type InvokeContext, type InvokeResult, isStream } from "./context.ts";

export async function embedEachInput(
  run: (context: InvokeContext) => Promise<InvokeAnswer>,
  context: InvokeContext,
): Promise<InvokeResult> {
  const { request } = context;
  const inputs = request.embed!.inputs;
  const results: InvokeResult[] = [];
  for (const [i, input] of inputs.entries()) {
    const text = typeof input === "string" ? input : "";
    const answer = await run({
      ...context,
      requestId: `${context.requestId}.${i}`,
      request: {
        ...request,
        ...(request.requestId === undefined ? {} : { requestId: `${request.requestId}.${i}` }),
        messages: [{ role: "user", parts: [{ type: "text", text }] }],
        embed: { ...request.embed!, inputs: [input] },
      },
    }).catch((error: unknown) => {
      throw i === 0 || !(error instanceof GatewayError) ? error : partly(error, i, inputs.length);
    });
    if (isStream(answer)) throw new GatewayError("internal_error", "an embedding was answered as a stream");
    results.push(answer);
  }
  return merged(results);
}

/** A refusal of input `served` of a batch of `inputs`, the ones before it served: said in its message and details. */
function partly(error: GatewayError, served: number, inputs: number): GatewayError {
  return new GatewayError(
    error.code,
    `${error.message} (Input ${served} of this batch of ${inputs} was refused: the ${served} before it were ` +
      `served and are billed, their vectors not returned; resend the batch from input ${served}.)`,
    {
      details: { ...error.details, served_inputs: served, inputs },
      ...(error.extra === undefined ? {} : { extra: error.extra }),
      ...(error.headers === undefined ? {} : { headers: error.headers }),
    },
  );
}

function merged(results: InvokeResult[]): InvokeResult {
  const last = results.at(-1)!;
  const sum = (f: (r: InvokeResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const input = sum((r) => r.usage.prompt_tokens);
  const usage: HubUsage = { inputTokens: input, outputTokens: 0, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: input };
  const hub: HubAnswer = {
    outputs: [],
    usage,
    modelVersion: last.hub?.modelVersion ?? null,
    id: null,
    embeddings: results.flatMap((r) => r.hub?.embeddings ?? []),
  };
  return {
    ...last,
    text: "",
    usage: { prompt_tokens: input, completion_tokens: 0, total_tokens: input },
    attempts: sum((r) => r.attempts),
    waited_ms: sum((r) => r.waited_ms),
    hub,
  };
}
