// An embeddings body (POST /v1/embeddings, OpenAI's shape) → the gateway's one request: `input` a
// string, an array of strings, an array of token ids or of token-id arrays; `dimensions`;
// `encoding_format` (float or base64, which the answer is said in); `user` accepted. Its input is
// estimated and booked like any request's (token ids count one each); no output is booked, no fallback
// is taken: a model whose vectors differ never stands in for another.
import { z } from "zod";
import { GatewayError } from "../../../../_shared/errors.ts";
import { isObject } from "../../../../_shared/json.ts";
import { invalidRequest } from "../../../../_shared/validation.ts";
import type { EmbeddingRequest } from "../../../contract.ts";
import { callOptionsFromHeaders } from "../../shared/call-options.ts";
import type { ParseInput } from "../../shared/surface.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** The route's most inputs in one request, OpenAI's (its API reference: "2048 dimensions or less"); a
 * provider's own batch maximum is another figure (Google's: GOOGLE_EMBED_BATCH). */
export const MAX_INPUTS = 2048;

const tokenIds = z.array(z.number().int().min(0)).min(1);
const embeddingsSchema = z.strictObject({
  model: z.string().transform((m) => m.replace(/^models\//, "")).pipe(
    z.string().regex(MODEL_NAME, "must be a model id such as text-embedding-3-small"),
  ),
  input: z.union([
    z.string().min(1, "an input may not be empty"),
    z.array(z.string().min(1, "an input may not be empty")).min(1).max(MAX_INPUTS),
    tokenIds,
    z.array(tokenIds).min(1).max(MAX_INPUTS),
  ]),
  dimensions: z.number().int().min(1).max(65536).optional(),
  encoding_format: z.enum(["float", "base64"]).optional(),
  user: z.string().optional(),
});

export interface EmbeddingsRequest extends EmbeddingRequest {
  encoding: "float" | "base64";
}

/** An input list that is empty or longer than the route takes, refused by name before the schema (whose
 * union would only say "Invalid input"): "empty input", or the limit and the count sent. */
function checkInputCount(input: unknown): void {
  if (!Array.isArray(input)) return;
  if (input.length === 0) {
    throw new GatewayError("empty_input", "input: empty input: give a string or an array of at least one input.", {
      details: { field: "input", inputs: 0 },
    });
  }
  // An array of token ids is one input; an array of strings or of token-id arrays is one input each.
  if (typeof input[0] !== "number" && input.length > MAX_INPUTS) {
    throw new GatewayError(
      "invalid_request",
      `input: ${input.length} inputs sent; at most ${MAX_INPUTS} inputs can be in one request.`,
      { details: { field: "input", inputs: input.length, max_inputs: MAX_INPUTS } },
    );
  }
}

export function parseEmbeddings(input: ParseInput): EmbeddingsRequest {
  if (!isObject(input.body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  checkInputCount(input.body.input);
  const parsed = embeddingsSchema.safeParse(input.body);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const req = parsed.data;
  const inputs: Array<string | number[]> = typeof req.input === "string"
    ? [req.input]
    : typeof req.input[0] === "number"
    ? [req.input as number[]]
    : req.input as Array<string | number[]>;
  const options = callOptionsFromHeaders(input.headers, input.limits);
  const tokenCount = inputs.reduce((n, i) => n + (typeof i === "string" ? 0 : i.length), 0);
  return {
    model: req.model,
    ...options,
    // Vectors of one model are not another's: no fallback, whatever the row's chain.
    fallbackModels: [],
    // Token ids are counted as given, one each, beside the texts' estimate.
    tokenIds: tokenCount,
    metadata: {},
    embed: { inputs, ...(req.dimensions === undefined ? {} : { dimensions: req.dimensions }) },
    // Token ids are read by OpenAI's tokenizer only: another provider's model refuses them by name.
    ...(tokenCount === 0
      ? {}
      : { only: { dialect: "openai", fields: [{ field: "input", why: "token ids are OpenAI's models' only" }] } }),
    encoding: req.encoding_format ?? "float",
  };
}
