// Server-sent events out: frames written as they are produced, and a caller that goes away stops the
// producer (which aborts the call to Google and finalizes the attempt, stream.ts).

export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // Proxies that buffer (nginx) would hold the first chunk back.
  "x-accel-buffering": "no",
};

/** One event: `data: <json>` (with an `event:` line when named), ended by a blank line. */
export function sseFrame(data: unknown, event?: string): string {
  return `${event === undefined ? "" : `event: ${event}\n`}data: ${
    typeof data === "string" ? data : JSON.stringify(data)
  }\n\n`;
}

/** A byte stream of the frames; cancelling it (the caller went away) returns the frames' iterator. */
export function sseBody(frames: AsyncIterable<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator = frames[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done === true) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
