// An upstream on raw sockets that cuts connections, to hold "every call a provider receives has its
// attempt row" against the transport rather than against the simulators (which answer every request
// they read). It speaks HTTP/1.1 by hand over node:net (plain) or node:tls, or HTTP/2 over TLS
// (node:http2, chosen by ALPN), answers generation calls in each provider's shape, whole or streamed
// (OpenAI chat completions and Anthropic messages through the simulators' own shape builders; Google's
// generateContent, whose simulator builds it from a whole generation, as its plain answer), and counts
// every request it read whole by the nonce in its body (`nonce:<id>`), the cut ones too.
//
// Cut modes, for a seeded share of the requests (30% by default):
//   after-request  the whole request is read, then the connection is closed with no byte of an answer
//                  (where a client that re-sends a POST on a pooled connection does so);
//   after-status   the status line (HTTP/2: the response's HEADERS frame) is sent, then the connection closed.
// Every close is made as a server makes it: over TLS with its close_notify; over HTTP/2 with a GOAWAY
// naming the cut stream the last it took, so the requests sent beside it are ones it never took (a
// client may send those again) or, when it had not yet read them whole, ones lost unread.
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { seededRandom } from "../../shared/sim-core/arrival.ts";
import { type Answer as ChatAnswer, completionObject, streamEvents as chatEvents } from "../../shared/openai-sim/responses.ts";
import type { ChatRequest } from "../../shared/openai-sim/completions.ts";
import { type Answer as MessageAnswer, messageObject, streamEvents as messageEvents } from "../../shared/anthropic-sim/messages.ts";

export type CutMode = "none" | "after-request" | "after-status";
export type Transport = "http" | "https" | "h2";

export interface CuttingUpstreamOptions {
  transport: Transport;
  /** The server's key and certificate (https, h2). */
  tls?: { key: string; cert: string };
  mode?: CutMode;
  /** The share of requests cut, 0..1 (default 0.3). */
  share?: number;
  seed?: number;
}

export interface CuttingUpstream {
  /** The base URL every provider's client is pointed at (it routes by path). */
  url: string;
  setMode(mode: CutMode): void;
  /** Generation requests read whole, per nonce (cut or answered; a count is not one). */
  arrivals(): Map<string, number>;
  /** How many requests were cut and answered, and how many connections were opened. */
  counts(): { cut: number; answered: number; connections: number };
  /** Arrivals and counts cleared. */
  reset(): void;
  close(): Promise<void>;
}

interface ReadRequest {
  method: string;
  path: string;
  body: string;
}

/** What the upstream answers a request it does not cut: a status and a JSON body, or a stream's events. */
export interface UpstreamAnswer {
  status: number;
  body: unknown;
  /** A streamed answer: its server-sent events, whole (sent at once). */
  sse?: string;
}

const sseOf = (events: [string | null, string][]) =>
  events.map(([name, data]) => `${name === null ? "" : `event: ${name}\n`}data: ${data}\n\n`).join("");

export function answerFor(request: ReadRequest): UpstreamAnswer {
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(request.body) as Record<string, unknown>;
  } catch {
    return { status: 400, body: { error: { message: "not JSON" } } };
  }
  const model = typeof parsed.model === "string" ? parsed.model : "unknown";
  const text = `cut-upstream: ${nonceOf(request.body) ?? "no nonce"}`;
  const path = request.path.split("?")[0]!;
  if (path.endsWith("/chat/completions")) {
    const answer: ChatAnswer = {
      id: "chatcmpl-cut",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ content: text, toolCalls: undefined, finishReason: "stop", tokens: [text] }],
      promptTokens: 10,
    };
    const streamed = parsed.stream === true;
    const asked = { logprobs: false, topLogprobs: 0, servedTier: "default", includeUsage: streamed } as ChatRequest;
    if (streamed) return { status: 200, body: null, sse: sseOf(chatEvents(answer, asked, 2).map((e) => [null, e])) };
    return { status: 200, body: completionObject(answer, asked) };
  }
  if (path.endsWith("/messages/count_tokens")) return { status: 200, body: { input_tokens: 10 } };
  if (path.endsWith("/messages")) {
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      service_tier: "standard" as const,
    };
    const answer: MessageAnswer = {
      id: "msg_cut",
      model,
      content: [{ type: "text", text }],
      stopReason: "end_turn",
      stopSequence: null,
      usage,
    };
    if (parsed.stream === true) return { status: 200, body: null, sse: sseOf(messageEvents(answer, 2)) };
    return { status: 200, body: messageObject(answer) };
  }
  const generate = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
  if (generate !== null) {
    const body = {
      candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
      modelVersion: decodeURIComponent(generate[1]!),
      responseId: "cut",
    };
    // Google's stream (alt=sse): here one chunk, the whole answer.
    if (generate[2] === "streamGenerateContent") return { status: 200, body: null, sse: sseOf([[null, JSON.stringify(body)]]) };
    return { status: 200, body };
  }
  return { status: 404, body: { error: { message: `no route ${request.method} ${path}` } } };
}

/** The nonce a request carries in its body (`nonce:<id>`), if any. */
export function nonceOf(body: string): string | undefined {
  return /nonce:([A-Za-z0-9_-]+)/.exec(body)?.[1];
}

export async function startCuttingUpstream(options: CuttingUpstreamOptions): Promise<CuttingUpstream> {
  let mode: CutMode = options.mode ?? "none";
  const share = options.share ?? 0.3;
  let random = seededRandom(options.seed ?? 88);
  const arrivals = new Map<string, number>();
  const counts = { cut: 0, answered: 0, connections: 0 };
  const sockets = new Set<net.Socket>();

  /** Counts a request read whole and says whether to cut it. */
  function arrived(request: ReadRequest): CutMode {
    // A count (Anthropic's count_tokens) is no generation: not counted, never cut.
    const nonce = request.path.includes("count_tokens") ? undefined : nonceOf(request.body);
    if (nonce !== undefined) arrivals.set(nonce, (arrivals.get(nonce) ?? 0) + 1);
    if (mode === "none" || nonce === undefined || random() >= share) {
      counts.answered++;
      return "none";
    }
    counts.cut++;
    return mode;
  }

  const track = (socket: net.Socket) => {
    counts.connections++;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  };

  let server: net.Server | http2.Http2SecureServer;
  if (options.transport === "h2") {
    const h2 = http2.createSecureServer({ ...options.tls!, allowHTTP1: false });
    h2.on("secureConnection", track);
    h2.on("sessionError", () => {});
    h2.on("stream", (stream, headers) => serveH2Stream(stream, headers, arrived));
    server = h2;
  } else {
    const onSocket = (socket: net.Socket) => {
      track(socket);
      serveHttp1(socket, arrived);
    };
    server = options.transport === "https"
      ? tls.createServer({ ...options.tls!, ALPNProtocols: ["http/1.1"] }, onSocket)
      : net.createServer(onSocket);
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const scheme = options.transport === "http" ? "http" : "https";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    setMode: (next) => {
      mode = next;
    },
    arrivals: () => new Map(arrivals),
    counts: () => ({ ...counts }),
    reset: () => {
      arrivals.clear();
      counts.cut = counts.answered = counts.connections = 0;
      random = seededRandom(options.seed ?? 88);
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The last stream each closing HTTP/2 connection took (its GOAWAY's). */
const goingAway = new WeakMap<http2.Http2Session, number>();

function serveH2Stream(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  arrived: (request: ReadRequest) => CutMode,
): void {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("error", () => {});
  stream.on("end", () => {
    // Another stream's cut may have closed the connection since, or be closing it: a stream above the
    // GOAWAY's last is one a server says it never took (its client may send it again).
    const session = stream.session;
    if (stream.destroyed || session === undefined || session.destroyed) return;
    if ((stream.id ?? 0) > (goingAway.get(session) ?? Infinity)) return;
    const request = {
      method: String(headers[":method"]),
      path: String(headers[":path"]),
      body: Buffer.concat(chunks).toString("utf8"),
    };
    const cut = arrived(request);
    // A close as a server makes it: GOAWAY naming this stream the last it took, then the connection's end.
    const close = () => {
      const session = stream.session;
      if (session === undefined || session.destroyed) return;
      const last = stream.id ?? 0;
      goingAway.set(session, last);
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, last);
      // GOAWAY is written on the next turn; then the connection goes, its streams unanswered.
      setImmediate(() => session.destroy());
    };
    if (cut === "after-request") {
      close();
      return;
    }
    if (cut === "after-status") {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      // The HEADERS frame is written on the next turn; the cut comes after it.
      setTimeout(close, 20);
      return;
    }
    const answer = answerFor(request);
    stream.respond({ ":status": answer.status, "content-type": answer.sse === undefined ? "application/json" : "text/event-stream" });
    stream.end(answer.sse ?? JSON.stringify(answer.body));
  });
}

/** Serves HTTP/1.1 requests one after another on a keep-alive connection, by hand. */
function serveHttp1(socket: net.Socket, arrived: (request: ReadRequest) => CutMode): void {
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const read = readHttp1Request(buffer);
      if (read === undefined) return;
      buffer = buffer.subarray(read.used);
      const cut = arrived(read.request);
      // A close as a server makes it: over TLS its close_notify first, then the connection's end.
      if (cut === "after-request") {
        socket.end();
        return;
      }
      if (cut === "after-status") {
        socket.end("HTTP/1.1 200 OK\r\n");
        return;
      }
      const answer = answerFor(read.request);
      const body = Buffer.from(answer.sse ?? JSON.stringify(answer.body));
      const type = answer.sse === undefined ? "application/json" : "text/event-stream";
      const head = `HTTP/1.1 ${answer.status} ${answer.status === 200 ? "OK" : "Error"}\r\n` +
        `content-type: ${type}\r\ncontent-length: ${body.length}\r\n\r\n`;
      // One write: a head and a body written apart meet Nagle and the client's delayed ACK (40 ms).
      socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    }
  });
}

/** One whole request at the head of `buffer` (a body by content-length or chunked), or undefined. */
export function readHttp1Request(buffer: Buffer): { request: ReadRequest; used: number } | undefined {
  const headEnd = buffer.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const lines = buffer.subarray(0, headEnd).toString("latin1").split("\r\n");
  const [method = "", path = ""] = lines[0]!.split(" ");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let at = headEnd + 4;
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buffer.indexOf("\r\n", at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16);
      if (size === 0) {
        const end = buffer.indexOf("\r\n\r\n", lineEnd);
        if (end < 0) return undefined;
        return { request: { method, path, body: Buffer.concat(parts).toString("utf8") }, used: end + 4 };
      }
      if (buffer.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = Number(headers.get("content-length") ?? 0);
  if (buffer.length < at + length) return undefined;
  return { request: { method, path, body: buffer.subarray(at, at + length).toString("utf8") }, used: at + length };
}
