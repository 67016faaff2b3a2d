// The one way a provider is POSTed to (a generation, a stream, an embedding, a count), so that every
// call a provider receives is one the attempt loop made and booked: nothing below it may send it again.
//
// Why the body is a stream: Deno's `fetch` re-sends a request once, silently, when a pooled keep-alive
// connection closes after the provider read the whole request and before any byte of its answer; the
// provider then has two calls (two generations billed) where the books have one. It only re-sends a
// body it can replay, and a stream is not one, so the close reaches the attempt loop as a network
// error, which it books and retries under a reservation of its own. A client without idle connections
// (Deno.createHttpClient) also never re-sends, but pays a TLS handshake per call (measured on one
// machine against a local TLS upstream: ~1 ms per call streamed, pooled; 10-35 ms without the pool),
// and Supabase's Edge Runtime, its own Deno build, need not offer it. A stream rests on no runtime's
// retry policy: a body that cannot be read twice cannot be sent twice. Over HTTP/1.1 it goes chunked
// (no content-length); the providers' APIs speak HTTP/2 over TLS, where that does not arise.
//
// `tests/functions/llm-invoke-resend.test.ts` holds it against an upstream that cuts connections;
// `post.test.ts` fails when a `fetch(` under _shared/ goes around it.

/** POSTs `body` as JSON, its bytes as a stream that no layer below the caller can send twice. */
export function postOnce(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const once = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  // `duplex: "half"`: the Fetch standard's word for a streamed request body (Node's fetch, which runs
  // these clients in the unit tests, requires it; Deno's types do not name it yet).
  const init = { method: "POST", headers, body: once, signal, duplex: "half" } as RequestInit;
  return fetch(url, init);
}
