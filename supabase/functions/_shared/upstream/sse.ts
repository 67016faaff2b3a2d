// Server-sent events as providers send them (Google's streamGenerateContent ?alt=sse, OpenAI's and Anthropic's streams): `data: <json>` lines,
// events separated by a blank line (CRLF or LF). Reads a byte stream and yields each event's data as
// it completes, so the first chunk is passed on before the rest has arrived.

/** Yields the `data` of each event (multi-line data joined with "\n"); comments and other fields are skipped. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      // The kept text has no newline: only the new text is searched, so a long line costs linear time.
      let searchFrom = buffer.length;
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      let newline: number;
      while ((newline = buffer.indexOf("\n", searchFrom)) >= 0) {
        searchFrom = newline + 1;
        const line = buffer.slice(start, newline).replace(/\r$/, "");
        start = newline + 1;
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
      }
      buffer = buffer.slice(start);
      if (done) {
        if (buffer.startsWith("data:")) data.push(buffer.slice(buffer.startsWith("data: ") ? 6 : 5));
        if (data.length > 0) yield data.join("\n");
        return;
      }
    }
  } finally {
    // A consumer that stops early (the caller went away) cancels the body, which aborts the fetch.
    await reader.cancel().catch(() => {});
  }
}
