// The Google client's stream against the offline simulator over real HTTP: chunks arrive one by one,
// a stream Google breaks off ends with StreamCut, and stopping early aborts the call on Google's side.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type GoogleSimulator, startGoogleSimulator } from "../../../../../shared/google-sim/server.ts";
import { createGoogleClient } from "./client.ts";
import { type HubAnswer, hubText } from "../../upstream/hub.ts";
import { hubRequestOf } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import { StreamCut, type StreamOutcome } from "../../upstream/port.ts";

const KEY = "sim-key-a1";
let sim: GoogleSimulator;

beforeAll(async () => {
  sim = await startGoogleSimulator({ streamChunks: 4, streamChunkDelayMs: 30 });
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const request = hubRequestOf({
  model: "gemini-2.5-flash",
  contents: [{ role: "user", parts: [{ text: "tell me about streams, please" }] }],
  generationConfig: {},
});

async function open(): Promise<Extract<StreamOutcome, { ok: true }>> {
  const outcome = await createGoogleClient({ baseUrl: sim.url }).stream({ apiKey: KEY, request, timeoutMs: 5_000 });
  if (!outcome.ok) throw new Error(`stream failed: ${outcome.error.message}`);
  return outcome;
}

describe("google client: streamGenerateContent", () => {
  it("yields Google's chunks in order; together they are the whole answer, the last carries the final usage", async () => {
    const whole = await createGoogleClient({ baseUrl: sim.url }).generate({ apiKey: KEY, request, timeoutMs: 5_000 });
    if (!whole.ok) throw new Error(whole.error.message);
    const chunks: HubAnswer[] = [];
    const opened = await open();
    for await (const chunk of opened.chunks) chunks.push(chunk.answer!);
    expect(chunks.length).toBe(4);
    expect(chunks.map(hubText).join("")).toBe(hubText(whole.answer));
    expect(chunks.at(-1)!.usage).toEqual(whole.answer.usage);
    // Google's own chunks, folded, are the whole answer generateContent sends (but for its id).
    const { responseId: _folded, ...folded } = opened.dialectAnswer!().body;
    const { responseId: _whole, ...own } = whole.dialectAnswer!.body;
    expect(folded).toEqual(own);
    expect(sim.stats().streams).toMatchObject({ started: 1, completed: 1, clientAborted: 0 });
  });

  it("ends with StreamCut when Google breaks the stream off", async () => {
    sim.addFault({ kind: "cut_stream", afterChunks: 2 });
    const seen: HubAnswer[] = [];
    let cut: unknown;
    try {
      for await (const chunk of (await open()).chunks) seen.push(chunk.answer!);
    } catch (error) {
      cut = error;
    }
    expect(seen).toHaveLength(2);
    expect(cut).toBeInstanceOf(StreamCut);
    expect((cut as StreamCut).error.class).toBe("retryable");
  });

  it("stopping after the first chunk aborts the call: the simulator sees its client go", async () => {
    const { chunks } = await open();
    for await (const _chunk of chunks) break;
    await expect.poll(() => sim.stats().streams.clientAborted, { timeout: 2_000 }).toBe(1);
    expect(sim.stats().streams.completed).toBe(0);
  });

  it("a refusal before the stream starts is a classified failure, not a stream", async () => {
    const outcome = await createGoogleClient({ baseUrl: sim.url }).stream({
      apiKey: "not-a-key",
      request,
      timeoutMs: 5_000,
    });
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.error.class).toBe("invalid_key");
  });
});
