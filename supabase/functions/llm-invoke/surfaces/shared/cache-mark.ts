// A response-cache hit said inside each dialect's usage object (`eve_cache`: CacheMark), where that
// dialect's SDKs keep a field they do not know (OpenAI's `usage`, Anthropic's `usage`, Google's
// `usageMetadata`), so a client billing on usage can tell a hit from a call without reading headers.
// The token counts beside it stay what the stored answer used. docs/response-cache.md.
import type { InvokeResult } from "../../attempt/context.ts";

/** The usage object with the hit's mark, when the answer is a hit; else the usage as it is. */
export function withCacheMark<U>(usage: U, result: Pick<InvokeResult, "cached">): U {
  if (result.cached === undefined) return usage;
  const base = typeof usage === "object" && usage !== null ? usage : {};
  return { ...base, eve_cache: result.cached } as U;
}

/** A dialect's own body (passed through) with the hit's mark in its usage object named `field`. */
export function withUsageMarked<B extends Record<string, unknown>>(
  body: B,
  field: string,
  result: Pick<InvokeResult, "cached">,
): B {
  return result.cached === undefined ? body : { ...body, [field]: withCacheMark(body[field], result) };
}
