// A tool's result in Google's words. functionResponse.response must be a JSON object, so a text result
// goes as Google's documentation names a function's output, `{output: text}` (a failed tool's
// `{error: text}`), and such a response read back is that text again; any other object is the result.
import type { HubToolResultPart } from "../../upstream/hub.ts";

export type ToolResult = Pick<HubToolResultPart, "result" | "error">;

/** A hub tool result as Google's functionResponse.response. */
export function functionResponseOf(part: ToolResult): Record<string, unknown> {
  if (part.error === true) return { error: part.result };
  return typeof part.result === "string" ? { output: part.result } : part.result;
}

/** Google's functionResponse.response in the hub's words: `{output}` or `{error}` of a text alone is that text. */
export function toolResultOf(response: Record<string, unknown>): ToolResult {
  const keys = Object.keys(response);
  if (keys.length === 1 && typeof response.output === "string") return { result: response.output };
  if (keys.length === 1 && typeof response.error === "string") return { result: response.error, error: true };
  return { result: response };
}
