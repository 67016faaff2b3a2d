// Reading request bodies, the same way in every function: size-limited before anything is parsed,
// UTF-8 checked, JSON errors as 400 invalid_json.
import { GatewayError } from "./errors.ts";
import { sanitizeError } from "./sanitize.ts";

/** Strict UTF-8: a body that is not is refused, not read with replacement characters. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Reads the body as text, refusing (without reading it all) anything over `limit` bytes. */
export async function readBody(req: Request, limit: number): Promise<string> {
  const tooLarge = () =>
    new GatewayError("body_too_large", `The body exceeds ${limit} bytes.`, { details: { limit_bytes: limit } });
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch {
      // The client went away mid-body: nobody is left to answer, and it is not our failure.
      throw new GatewayError("client_closed", "The client closed the connection before the body was read.");
    }
    const { done, value } = step;
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new GatewayError("invalid_json", "The body is not valid UTF-8.");
  }
}

/**
 * The body of a function whose fields are all optional: `{}` when empty, else a JSON object sent
 * as application/json (415, 400 invalid_json otherwise). Size-limited like readBody.
 */
export async function readOptionalJsonObject(req: Request, limit: number): Promise<Record<string, unknown>> {
  const text = await readBody(req, limit);
  if (text.trim() === "") return {};
  const contentType = (req.headers.get("content-type") ?? "").trim();
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new GatewayError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_json", "The body is not valid JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new GatewayError("invalid_json", "The body must be a JSON object.");
  }
  return body as Record<string, unknown>;
}

/** Parses a required JSON body: 400 invalid_json when empty or malformed (parser detail sanitized). */
export function parseJson(text: string): unknown {
  if (text.trim() === "") throw new GatewayError("invalid_json", "The body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : "";
    throw new GatewayError("invalid_json", `The body is not valid JSON: ${sanitizeError(detail, { maxLength: 200 })}`);
  }
}
