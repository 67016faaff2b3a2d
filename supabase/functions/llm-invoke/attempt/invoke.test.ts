// The attempt loop against scripted fakes of the store, Google and the clock: every branch of the
// retry/wait policy, and what is written to the store on each.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { FinalizeParams, ModelProfile, Refusal, Reservation, ReserveParams, ServiceTierRow } from "../contract.ts";
import { hubAnswerOf } from "../../_shared/providers/google/answer.ts";
import { type HubAnswer, type HubChunk, hubText } from "../../_shared/upstream/hub.ts";
import { classifyGoogleHttpError } from "../../_shared/providers/google/errors.ts";
import { MODEL_NOT_FOUND_WORDINGS } from "../../../../shared/google-sim/errors.ts";
import { type InvokeContext, type InvokeResult, type InvokeStream, isStream } from "./context.ts";
import type { Clock } from "../clock.ts";
import { createInvoke, type InvokeDeps, MAX_ATTEMPTS } from "./invoke.ts";
import { createInputCounter } from "./input-counter.ts";
import { exhausted, limitOfQuota } from "./refusals.ts";
import { BUILT_IN_PROVIDERS } from "../../_shared/providers/registry.ts";
import { quotaCauseWords } from "../../_shared/vocabulary.ts";
import { openAiRules } from "../../_shared/providers/openai/errors.ts";
import { googleRules } from "../../_shared/providers/google/client.ts";
import { classifiedHttp } from "../../_shared/upstream/call.ts";
import { parseInvokeRequest } from "../surfaces/native/request.ts";
import { EXACT_COUNT_MIN_TOKENS } from "../model/exact-count.ts";
import type { ActiveKey, GatewayStore } from "../store/store.ts";
import { estimateInputTokens } from "../model/tokens.ts";
import {
  type CountTokensOutcome,
  type GenerateCall,
  type GenerateOutcome,
  type ModelCall,
  type ModelOutcome,
  StreamCut,
  type StreamOutcome,
  type UpstreamClient,
  upstreamFailure,
} from "../../_shared/upstream/port.ts";

const GEMMA: ModelProfile = {
  model: "gemma-3-27b-it",
  supportsSystemInstruction: false,
  supportsJsonMode: false,
  supportsTools: false,
  active: true,
  fallbackModels: [], provider: "google", dialect: "google",
};

function reservation(n: number): Reservation {
  return {
    ok: true,
    reservationId: `res-${n}`,
    keyId: `key-${n}`,
    keyAlias: `alias-${n}`,
    envVarName: `GOOGLE_KEY_${n}`,
    quotaGroup: `project-${n}`,
    model: "gemma-3-27b-it",
    minuteBucket: "2026-11-21T09:00:00Z",
    dayBucket: "2026-11-21",
  };
}
const refusal = (limit: Refusal["limit"], retryAfterMs: number | null): Refusal => ({
  ok: false,
  limit,
  retryAfterMs,
  retryAt: null,
});
/** A WAIT refusal that put the request in line: its turn comes in exactly retryAfterMs. */
const queued = (
  limit: Refusal["limit"],
  retryAfterMs: number,
  ticket = "00000000-0000-4000-8000-000000000001",
): Refusal => ({
  ...refusal(limit, retryAfterMs),
  queue: { ticket, position: 2, expectedAt: "2026-11-21T09:01:01Z", priority: "interactive" },
});

class FakeStore implements GatewayStore {
  reserves: ReserveParams[] = [];
  finalized: FinalizeParams[] = [];
  released: Array<[string, string]> = [];
  capabilityReads = 0;
  keyReads = 0;
  ended: string[] = [];
  keys: ActiveKey[] = [1, 2].map((n) => ({
    keyId: `key-${n}`,
    keyAlias: `alias-${n}`,
    envVarName: `GOOGLE_KEY_${n}`,
    quotaGroup: `project-${n}`,
  }));
  /** `caps`: one profile for every name, or profiles by name (a chain's models), or null (unknown). */
  constructor(
    private script: Array<Reservation | Refusal>,
    private caps: ModelProfile | Record<string, ModelProfile> | null = GEMMA,
  ) {}
  activeKeys() {
    this.keyReads++;
    return Promise.resolve(this.keys);
  }
  modelProfile(model: string) {
    this.capabilityReads++;
    const caps = this.caps;
    if (caps === null || "model" in caps) return Promise.resolve(caps as ModelProfile | null);
    return Promise.resolve((caps as Record<string, ModelProfile>)[model] ?? null);
  }
  reserve(params: ReserveParams) {
    this.reserves.push({ ...params, excludeKeyIds: [...params.excludeKeyIds] });
    const next = this.script.shift();
    if (next === undefined) throw new Error("reserve called more often than scripted");
    return Promise.resolve(next);
  }
  finalize(params: FinalizeParams) {
    this.finalized.push(params);
    return Promise.resolve();
  }
  release(id: string, reason: string) {
    this.released.push([id, reason]);
    return Promise.resolve();
  }
  endRequest(id: string) {
    this.ended.push(id);
    return Promise.resolve();
  }
}

/** countTokens fails (network) unless the test scripts its answers. */
const countFailed = (): CountTokensOutcome => ({
  ok: false,
  error: upstreamFailure("network", "connection refused"),
  latencyMs: 1,
});

/** Google's 404 for a model it does not serve, word for word (`method`: the call that met it). */
const notFoundMessage = (model: string, method = "generateContent", version = "v1beta") =>
  `models/${model} is not found for API version ${version}, or is not supported for ${method}. ` +
  "Call ListModels to see the list of available models and their supported methods.";
const notFound = (model: string, method = "generateContent", version = "v1beta") =>
  classifyGoogleHttpError(404, {
    error: { code: 404, status: "NOT_FOUND", message: notFoundMessage(model, method, version) },
  }, { model });
/** Google's models.get for a model it does not serve: another sentence than generate's, no details. */
const modelGetNotFound = (model: string) =>
  classifyGoogleHttpError(404, {
    error: { code: 404, message: `Model is not found: models/${model} for api version v1beta`, status: "NOT_FOUND" },
  }, { model });

class FakeGoogle implements UpstreamClient {
  calls: GenerateCall[] = [];
  counts: GenerateCall[] = [];
  streams: StreamOutcome[] = [];
  /** models.get calls; answered from `models` in turn, else Google's 404 for the model (withdrawn). */
  modelCalls: ModelCall[] = [];
  models: ModelOutcome[] = [];
  constructor(private script: GenerateOutcome[], private countScript: CountTokensOutcome[] = []) {}
  stream(call: GenerateCall) {
    this.calls.push(call);
    const next = this.streams.shift();
    if (next === undefined) throw new Error("stream called more often than scripted");
    return Promise.resolve(next);
  }
  /** Set to hold models.get's answers until released (concurrent requests share one). */
  modelGate: Promise<void> | null = null;
  async getModel(call: ModelCall) {
    this.modelCalls.push(call);
    const answer = this.models.shift() ?? { ok: false as const, error: modelGetNotFound(call.model), latencyMs: 1 };
    if (this.modelGate) await this.modelGate;
    return answer;
  }
  countTokens(call: GenerateCall) {
    this.counts.push(call);
    return Promise.resolve(this.countScript.shift() ?? countFailed());
  }
  generate(call: GenerateCall) {
    this.calls.push(call);
    const next = this.script.shift();
    if (next === undefined) throw new Error("generate called more often than scripted");
    return Promise.resolve(next);
  }
}

class FakeClock implements Clock {
  t = 1_000_000;
  sleeps: number[] = [];
  now() {
    return this.t;
  }
  sleep(ms: number) {
    this.sleeps.push(ms);
    this.t += ms;
    return Promise.resolve();
  }
}

const answered = (text: string): HubAnswer => ({
  outputs: [{ index: 0, parts: [{ type: "text", text }], finish: { reason: "stop", word: "STOP" } }],
  usage: { inputTokens: 11, outputTokens: 7, thinkingTokens: 2, cachedInputTokens: 0, totalTokens: 20 },
  modelVersion: null,
  id: null,
});
const ok = (text = "Привет"): GenerateOutcome => ({ ok: true, answer: answered(text), latencyMs: 120 });
const fail = (error: ReturnType<typeof classifyGoogleHttpError>): GenerateOutcome => ({
  ok: false,
  error,
  latencyMs: 50,
});
const google429 = (quotaId: string, retryDelay: string) =>
  fail(classifyGoogleHttpError(429, {
    error: {
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      message: "quota",
      details: [
        { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId }] },
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay },
      ],
    },
  }));
const google500 = () =>
  fail(classifyGoogleHttpError(500, { error: { code: 500, status: "INTERNAL", message: "boom" } }));

/** The provider directory (providers/directory.ts) of fake clients: each a provider of its own name. */
function providersOf(
  clients: Record<string, UpstreamClient>,
  secret: (envVarName: string) => string | undefined,
): InvokeDeps["providers"] {
  const key = Object.assign((name: string) => secret(name), {
    refusal: () => "it is not set, or empty",
    refusalKind: () => "unset" as const,
  });
  const upstreams = new Map(Object.entries(clients).map(([provider, client]) => [provider, {
    provider,
    dialect: "google" as const,
    who: BUILT_IN_PROVIDERS.find((r) => r.name === provider)?.display_name ?? provider,
    row: BUILT_IN_PROVIDERS.find((r) => r.name === provider) ?? BUILT_IN_PROVIDERS[0]!,
    baseUrl: "http://fake",
    client,
    lister: () => ({ list: () => Promise.reject(new Error("no list")) }),
    key,
    causeWords: quotaCauseWords,
  }]));
  return () => Promise.resolve({ upstream: (provider: string) => upstreams.get(provider) });
}

function setup(
  store: FakeStore,
  google: FakeGoogle,
  extra: Partial<InvokeDeps> = {},
) {
  const clock = new FakeClock();
  const invoke = createInvoke({
    store,
    providers: providersOf({ google }, (name) => (name.startsWith("GOOGLE_KEY_") ? `secret-of-${name}` : undefined)),
    clock,
    random: () => 0,
    logError: () => {},
    ...extra,
  });
  const run = async (body: Record<string, unknown> = {}): Promise<InvokeResult> => {
    const answer = await invoke(context({ model: "gemma-3-27b", prompt: "Привет", ...body }));
    if (isStream(answer)) throw new Error("a stream was answered to a request that did not ask for one");
    return answer;
  };
  const runStream = async (body: Record<string, unknown> = {}, signal?: AbortSignal): Promise<InvokeStream> => {
    const answer = await invoke({
      ...context({ model: "gemma-3-27b", prompt: "Привет", stream: true, ...body }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (!isStream(answer)) throw new Error("expected a stream");
    return answer;
  };
  return { run, runStream, clock };
}

function context(body: Record<string, unknown>): InvokeContext {
  return {
    caller: { kind: "service", label: "eve-bot" },
    request: parseInvokeRequest(body),
    requestId: "req-1",
    signal: new AbortController().signal,
  };
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

describe("invoke: success", () => {
  it("reserves, calls Google with the reserved key, finalizes with Google's usage and answers", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([ok()]);
    const { run } = setup(store, google);
    const result = await run({ system: "Кратко.", metadata: { chat: 5 } });
    expect(result).toEqual({
      text: "Привет",
      model: "gemma-3-27b-it",
      provider: "google",
      key_alias: "alias-1",
      usage: { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 },
      attempts: 1,
      waited_ms: 0,
      hub: answered("Привет"),
    });
    expect(store.reserves[0]).toMatchObject({
      model: "gemma-3-27b",
      caller: { kind: "service", name: "eve-bot" },
      requestId: "req-1",
      attempt: 1,
      waitMs: 0,
      excludeKeyIds: [],
      metadata: { chat: 5 },
    });
    expect(store.reserves[0]!.estimatedTokens).toBeGreaterThan(0);
    // Gemma: the system prompt is folded, and the key comes from the secret named by the row.
    expect(google.calls[0]!.apiKey).toBe("secret-of-GOOGLE_KEY_1");
    expect(google.calls[0]!.request.system).toBeUndefined();
    expect(google.calls[0]!.request.messages[0]!.parts[0]).toEqual({ type: "text", text: "Кратко.\n\nПривет" });
    // In the hub's words only: no body of a dialect beside them (the native route passes none through).
    expect(google.calls[0]!.request.dialectBody).toBeUndefined();
    expect(store.finalized).toEqual([expect.objectContaining({
      reservationId: "res-1",
      outcome: "succeeded",
      inputTokens: 11,
      outputTokens: 9,
      httpStatus: 200,
      cooldownUntil: null,
      // The counter row it settles: finalizes are written together per row (store/finalize-queue.ts).
      booked: { quotaGroup: "project-1", model: "gemma-3-27b-it" },
    })]);
    expect(JSON.stringify(result)).not.toContain("secret-of");
  });

  it("names a named request's holder in each reservation, held until the invocation's end (streams too)", async () => {
    const store = new FakeStore([reservation(1), reservation(2)]);
    const { run, clock } = setup(store, new FakeGoogle([fail(classifyGoogleHttpError(503, { error: { code: 503, message: "u" } })), ok()]), {
      options: { attemptTimeoutMs: 45_000, budgetMs: 140_000, backoffBaseMs: 250, jitterMs: 250 },
    });
    const start = clock.now();
    await run({ mode: "NO_WAIT", request_id: "named-1" });
    expect(store.reserves[0]!.claim).toEqual({ id: expect.any(String), invocationEnd: start + 140_000 });
    // One holder for the whole invocation: its later reservations are its own.
    expect(store.reserves[1]!.claim).toEqual(store.reserves[0]!.claim);
    const again = new FakeStore([reservation(1)]);
    await setup(again, new FakeGoogle([ok()])).run({ mode: "NO_WAIT", request_id: "named-1" });
    expect(again.reserves[0]!.claim!.id).not.toBe(store.reserves[0]!.claim!.id);
    const streamed = new FakeStore([reservation(1)]);
    const s = setup(streamed, new FakeGoogle([]), { options: { budgetMs: 140_000 } });
    const streamStart = s.clock.now();
    await s.runStream({ mode: "NO_WAIT", request_id: "named-2" }).catch(() => {});
    expect(streamed.reserves[0]!.claim!.invocationEnd).toBe(streamStart + 140_000);
    // A request the caller did not name holds no claim.
    const unnamed = new FakeStore([reservation(1)]);
    await setup(unnamed, new FakeGoogle([ok()])).run({ mode: "NO_WAIT" });
    expect(unnamed.reserves[0]!.claim).toBeNull();
  });

  it("answers the provider's own answer beside the hub's, for a route of its dialect", async () => {
    const own = { dialect: "google" as const, body: { candidates: [] } };
    const { run } = setup(new FakeStore([reservation(1)]), new FakeGoogle([{ ok: true, answer: answered("Привет"), latencyMs: 120, dialectAnswer: own }]));
    expect(await run({ include_candidates: true })).toMatchObject({ hub: answered("Привет"), dialectAnswer: own });
  });

  it("hands the success's finalize to waitUntil when there is one", async () => {
    const store = new FakeStore([reservation(1)]);
    const pending: Array<Promise<unknown>> = [];
    const { run } = setup(store, new FakeGoogle([ok()]), { waitUntil: (p) => pending.push(p) });
    await run();
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect(store.finalized).toHaveLength(1);
  });

  it("keeps the answer when the audit write fails", async () => {
    const store = new FakeStore([reservation(1)]);
    store.finalize = () => Promise.reject(new Error("db down"));
    const logged: string[] = [];
    const { run } = setup(store, new FakeGoogle([ok("still here")]), { logError: (m) => logged.push(m) });
    expect((await run()).text).toBe("still here");
    expect(logged[0]).toContain("db down");
  });

  it("reads model capabilities once per TTL", async () => {
    const store = new FakeStore([reservation(1), reservation(1)]);
    const { run } = setup(store, new FakeGoogle([ok(), ok()]));
    await run();
    await run();
    expect(store.capabilityReads).toBe(1);
  });
});

describe("invoke: the answer's size, booked once", () => {
  // The model row's answer where the request names none (booked_output_tokens, else its output limit).
  const ROW = { ...GEMMA, answerTokens: 100 };

  it("reserves the answer each model is sent with; where a budget in money booked it for a request naming none, sends it as the cap", async () => {
    const store = new FakeStore([{ ...reservation(1), bookedUsd: 0.01 }], ROW);
    const google = new FakeGoogle([ok()]);
    await setup(store, google).run();
    expect(store.reserves[0]).toMatchObject({ outputTokens: [100] });
    expect(google.calls[0]!.request.options.maxOutputTokens).toBe(100);
  });

  it("sends no cap where no budget in money booked the answer, and the caller's own where it names one", async () => {
    const unbudgeted = new FakeStore([reservation(1)], ROW);
    const google = new FakeGoogle([ok(), ok()]);
    await setup(unbudgeted, google).run();
    expect(google.calls[0]!.request.options.maxOutputTokens).toBeUndefined();

    const own = new FakeStore([{ ...reservation(2), bookedUsd: 0.01 }], ROW);
    await setup(own, google).run({ generationConfig: { maxOutputTokens: 40, candidateCount: 2 } });
    // Booked for both answers; each is sent with the caller's own cap.
    expect(own.reserves[0]).toMatchObject({ outputTokens: [80] });
    expect(google.calls[1]!.request.options.maxOutputTokens).toBe(40);
  });

  it("a model whose answer is not known books none (a budget in money refuses it) and TPM books output only where it counts it", async () => {
    const store = new FakeStore([reservation(1)], GEMMA);
    await setup(store, new FakeGoogle([ok()])).run();
    expect(store.reserves[0]).toMatchObject({ outputTokens: [null] });
    const openai = new FakeStore([reservation(1)], { ...GEMMA, bookedOutputTokens: 64, answerTokens: 64 });
    await setup(openai, new FakeGoogle([ok()])).run();
    expect(openai.reserves[0]!.outputTokens).toEqual([64]);
    expect(openai.reserves[0]!.estimatedTokens).toBe(store.reserves[0]!.estimatedTokens + 64);
  });
});

describe("invoke: refusals, WAIT and NO_WAIT", () => {
  it("NO_WAIT answers 429 at once with the limit and the wait", async () => {
    const store = new FakeStore([refusal("rpm", 12_345)]);
    const google = new FakeGoogle([]);
    const { run, clock } = setup(store, google);
    const error = await rejection(run({ mode: "NO_WAIT" }));
    expect(error.code).toBe("rate_limited");
    expect(error.toBody()).toMatchObject({ limit: "rpm", retry_after_ms: 12_345 });
    expect(error.headers).toEqual({ "Retry-After": "13" });
    expect(clock.sleeps).toEqual([]);
    expect(google.calls).toHaveLength(0);
  });

  it("WAIT sleeps exactly until its turn in the queue, then asks again with its ticket", async () => {
    const store = new FakeStore([queued("rpm", 4_000), reservation(1)]);
    const clock = new FakeClock();
    const invoke = createInvoke({
      store,
      providers: providersOf({ google: new FakeGoogle([ok()]) }, () => "k"),
      clock,
      random: () => 0.5,
      options: { jitterMs: 200 },
    });
    const result = await invoke(context({ model: "m", prompt: "x", max_wait_ms: 10_000 }));
    expect(clock.sleeps).toEqual([4_000]); // no jitter: the queue orders the waiters
    expect(result.waited_ms).toBe(4_000);
    expect(store.reserves[0]).toMatchObject({ queueTicket: null, waitLeftMs: 9_900 });
    expect(store.reserves[1]).toMatchObject({
      attempt: 1,
      waitMs: 4_000,
      queueTicket: "00000000-0000-4000-8000-000000000001",
      waitLeftMs: 5_900,
    });
  });

  it("keeps its place when its turn moves: each answer names the new time", async () => {
    // A request of a higher class took the turn first; the second answer names the next one.
    const store = new FakeStore([queued("tpm", 2_000), queued("tpm", 3_000), reservation(1)]);
    const { run, clock } = setup(store, new FakeGoogle([ok()]));
    await run({ max_wait_ms: 60_000 });
    expect(clock.sleeps).toEqual([2_000, 3_000]);
    expect(store.reserves.map((r) => r.queueTicket)).toEqual([
      null,
      "00000000-0000-4000-8000-000000000001",
      "00000000-0000-4000-8000-000000000001",
    ]);
  });

  it("answers at once, with the exact time, when the database found the turn beyond max_wait_ms", async () => {
    // Max wait 5 s, the turn 6.8 s away: the database kept no ticket and said when.
    const store = new FakeStore([refusal("rpm", 6_800)]);
    const { run, clock } = setup(store, new FakeGoogle([]));
    const error = await rejection(run({ max_wait_ms: 5_000 }));
    expect(clock.sleeps).toEqual([]);
    expect(clock.now()).toBe(1_000_000); // no time passed: answered at once
    expect(error.toBody()).toMatchObject({ limit: "rpm", retry_after_ms: 6_800 });
    expect(store.reserves[0]).toMatchObject({ waitLeftMs: 4_900 });
  });

  it("NO_WAIT tells the database it will not wait, so no ticket is taken", async () => {
    const store = new FakeStore([refusal("rpm", 1_000)]);
    const { run } = setup(store, new FakeGoogle([]));
    await rejection(run({ mode: "NO_WAIT" }));
    expect(store.reserves[0]).toMatchObject({ waitLeftMs: 0, queueTicket: null });
  });

  it("answers at once when capacity returns later than any minute window (a day quota)", async () => {
    const store = new FakeStore([refusal("rpd", 5 * 3600_000)]);
    const { run, clock } = setup(store, new FakeGoogle([]));
    const error = await rejection(run({ max_wait_ms: 30_000 }));
    expect(error.toBody()).toMatchObject({ limit: "rpd" });
    expect(clock.sleeps).toEqual([]);
  });

  it("answers a service caller's used-up daily budget at once in WAIT mode, until Pacific midnight", async () => {
    const store = new FakeStore([{ ...refusal("caller_budget", 3_600_000), refusalCause: "budget", period: "day" }]);
    const { run, clock } = setup(store, new FakeGoogle([]));
    const error = await rejection(run({ max_wait_ms: 60_000 }));
    expect(error.status).toBe(429);
    expect(error.toBody()).toMatchObject({ limit: "caller_budget", retry_after_ms: 3_600_000, period: "day" });
    expect(error.headers).toEqual({ "Retry-After": "3600" });
    // One budget named, with its period: the one that refused.
    expect(error.message).toMatch(/^This service caller's budget of requests and tokens for the Pacific day is used up/);
    expect(clock.sleeps).toEqual([]);
  });

  it("answers a paced day with the time the pace allows the next request, and waits for it in line", async () => {
    const paced = new FakeStore([refusal("pace", 900_000)]);
    const error = await rejection(setup(paced, new FakeGoogle([])).run({ mode: "NO_WAIT" }));
    expect(error.toBody()).toMatchObject({ limit: "pace", retry_after_ms: 900_000 });
    expect(error.headers).toEqual({ "Retry-After": "900" });
    const inLine = new FakeStore([queued("pace", 3_000), reservation(1)]);
    const { run, clock } = setup(inLine, new FakeGoogle([ok()]));
    await run({ max_wait_ms: 10_000 });
    expect(clock.sleeps).toEqual([3_000]);
  });

  it.each<[Refusal["limit"], string]>([["unknown_model", "unknown_model"], ["too_large", "invalid_request"]])(
    "maps a %s refusal to %s",
    async (limit, code) => {
      const { run } = setup(new FakeStore([refusal(limit, null)]), new FakeGoogle([]));
      expect((await rejection(run())).code).toBe(code);
    },
  );

  it("answers unknown_model without reserving when the model row is missing", async () => {
    const store = new FakeStore([], null);
    const { run } = setup(store, new FakeGoogle([]));
    expect((await rejection(run({ model: "gemma-9" }))).code).toBe("unknown_model");
    expect(store.reserves).toHaveLength(0);
  });

  it("refuses JSON mode on Gemma before reserving", async () => {
    const store = new FakeStore([]);
    const { run } = setup(store, new FakeGoogle([]));
    const error = await rejection(run({ generationConfig: { responseMimeType: "application/json" } }));
    expect(error.code).toBe("unsupported_feature");
    expect(store.reserves).toHaveLength(0);
  });

  it("answers 503 when no key serves the model", async () => {
    const { run } = setup(new FakeStore([refusal("no_active_key", null)]), new FakeGoogle([]));
    expect((await rejection(run())).code).toBe("unavailable");
  });
});

describe("invoke: Google failures", () => {
  it("cools the group down after a 429 and succeeds on another key", async () => {
    const store = new FakeStore([reservation(1), reservation(2)]);
    const google = new FakeGoogle([google429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "21s"), ok()]);
    const { run, clock } = setup(store, google);
    const result = await run();
    expect(result).toMatchObject({ key_alias: "alias-2", attempts: 2 });
    expect(store.finalized[0]).toMatchObject({
      reservationId: "res-1",
      outcome: "upstream_error",
      httpStatus: 429,
      errorCode: "RESOURCE_EXHAUSTED",
      quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
      cooldownUntilProviderMidnight: false,
      response: null,
    });
    expect(store.finalized[0]!.cooldownUntil?.getTime()).toBe(clock.t + 21_000);
    expect(store.reserves[1]).toMatchObject({ attempt: 2, excludeKeyIds: ["key-1"] });
    expect(clock.sleeps).toEqual([]); // another key: no backoff
  });

  it("asks for a cooldown until Pacific midnight on a per-day 429", async () => {
    const store = new FakeStore([reservation(1), refusal("cooldown", 6 * 3600_000)]);
    const google = new FakeGoogle([google429("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "3s")]);
    const { run } = setup(store, google);
    const error = await rejection(run({ mode: "NO_WAIT" }));
    expect(store.finalized[0]).toMatchObject({ cooldownUntil: null, cooldownUntilProviderMidnight: true });
    expect(error.toBody()).toMatchObject({ limit: "cooldown" });
  });

  it("retries 5xx with growing backoff, never more than three attempts, then 502", async () => {
    const store = new FakeStore([reservation(1), reservation(2), reservation(3)]);
    const google = new FakeGoogle([google500(), google500(), google500()]);
    const { run, clock } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("upstream_error");
    expect(google.calls).toHaveLength(MAX_ATTEMPTS);
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error", "upstream_error", "upstream_error"]);
    expect(clock.sleeps).toEqual([250, 500]);
    expect(store.reserves.map((r) => r.attempt)).toEqual([1, 2, 3]);
  });

  it("retries a timeout on the same key when it is the only one, and answers 504 in the end", async () => {
    const timeout = () => fail(upstreamFailure("timeout", "no answer"));
    const store = new FakeStore([
      reservation(1),
      refusal("no_active_key", null), // key-1 excluded, nothing else
      reservation(1),
      reservation(1),
    ]);
    const google = new FakeGoogle([timeout(), timeout(), timeout()]);
    const { run } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("upstream_timeout");
    expect(store.reserves.map((r) => r.excludeKeyIds)).toEqual([[], ["key-1"], [], ["key-1"]]);
    expect(store.finalized.map((f) => f.outcome)).toEqual(["timeout", "timeout", "timeout"]);
  });

  it("does not retry a 400 from Google and passes its message on", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([
      fail(
        classifyGoogleHttpError(400, {
          error: { code: 400, status: "INVALID_ARGUMENT", message: "maxOutputTokens too large" },
        }),
      ),
    ]);
    const { run } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("maxOutputTokens too large");
    expect(google.calls).toHaveLength(1);
  });

  it("a model Google no longer serves: finalized as withdrawn, the row re-read, the next reservation's answer decides", async () => {
    const withdrawn = fail(notFound("gemma-3-27b-it"));
    // No chain left: the database refuses the marked model, and the caller learns its successor.
    const store = new FakeStore([reservation(1), { ...refusal("withdrawn", null), model: "gemma-3-27b-it",
      successor: "gemma-4-31b-it" }]);
    const google = new FakeGoogle([withdrawn]);
    const { run } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("model_withdrawn");
    expect(error.status).toBe(404);
    expect(error.details).toEqual({ model: "gemma-3-27b-it", successor: "gemma-4-31b-it" });
    expect(error.message).toContain("gemma-4-31b-it");
    expect(google.calls).toHaveLength(1);
    // Confirmed once, on the same key, before the row was marked.
    expect(google.modelCalls.map((c) => [c.model, c.apiKey])).toEqual([["gemma-3-27b-it", "secret-of-GOOGLE_KEY_1"]]);
    expect(store.finalized.map((f) => [f.outcome, f.httpStatus, f.errorCode])).toEqual([["withdrawn", 404, "NOT_FOUND"]]);
    // The key was not at fault: the next reservation excludes nothing.
    expect(store.reserves.map((r) => r.excludeKeyIds)).toEqual([[], []]);
    // The worker dropped its cached row: the next request reads it again.
    const reads = store.capabilityReads;
    store["script"].push(reservation(2));
    google["script"].push(ok());
    await run();
    expect(store.capabilityReads).toBe(reads + 1);
  });

  it("a 404 that models.get contradicts (the key sees the model): Google's error to the caller, nothing marked", async () => {
    const store = new FakeStore([reservation(1), reservation(2)]);
    const google = new FakeGoogle([fail(notFound("gemma-3-27b-it"))]);
    google.models = [{ ok: true, latencyMs: 1 }];
    const { run } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("upstream_rejected");
    expect(error.details).toMatchObject({ upstream_status: 404 });
    expect(google.modelCalls).toHaveLength(1);
    // An ordinary failed call: no withdrawal in the database, no second reservation.
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error"]);
    expect(store.reserves).toHaveLength(1);
  });

  it("a 404 models.get cannot confirm (Google failed to say): nothing marked either", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([fail(notFound("gemma-3-27b-it"))]);
    google.models = [{ ok: false, error: upstreamFailure("network", "connection reset"), latencyMs: 1 }];
    const { run } = setup(store, google);
    expect((await rejection(run())).code).toBe("upstream_rejected");
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error"]);
  });

  it.each(MODEL_NOT_FOUND_WORDINGS.map((word, i) => [i, word("gemma-3-27b-it", "generateContent", "gemma-4-31b-it")]))(
    "Google's 404 in wording %i is the same answer: confirmed by models.get, finalized as withdrawn",
    async (_, message) => {
      const store = new FakeStore([reservation(1), { ...refusal("withdrawn", null), model: "gemma-3-27b-it" }]);
      const google = new FakeGoogle([fail(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND",
        message } }, { model: "gemma-3-27b-it" }))]);
      const { run } = setup(store, google);
      expect((await rejection(run())).code).toBe("model_withdrawn");
      expect(google.modelCalls).toHaveLength(1);
      expect(store.finalized.map((f) => f.outcome)).toEqual(["withdrawn"]);
    },
  );

  it("a 404 that is not Google's JSON error (a proxy's page) is a plain client error: no models.get, nothing marked", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([fail(classifyGoogleHttpError(404, "<html><title>404 Not Found</title></html>",
      { model: "gemma-3-27b-it" }))]);
    const { run } = setup(store, google);
    expect((await rejection(run())).code).toBe("upstream_rejected");
    expect(google.modelCalls).toHaveLength(0);
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error"]);
  });

  it("requests that meet the same 404 together share one models.get, and each learns the withdrawal", async () => {
    const gone = { ...refusal("withdrawn", null), model: "gemma-3-27b-it", successor: "gemma-4-31b-it" };
    const store = new FakeStore([reservation(1), reservation(2), gone, gone]);
    const google = new FakeGoogle([fail(notFound("gemma-3-27b-it")), fail(notFound("gemma-3-27b-it"))]);
    let release!: () => void;
    google.modelGate = new Promise((r) => (release = r));
    const { run } = setup(store, google);
    const both = Promise.all([rejection(run()), rejection(run())]);
    while (google.calls.length < 2) await new Promise((r) => setTimeout(r, 1));
    release();
    expect((await both).map((e) => e.code)).toEqual(["model_withdrawn", "model_withdrawn"]);
    expect(google.modelCalls).toHaveLength(1);
    expect(store.finalized.map((f) => f.outcome)).toEqual(["withdrawn", "withdrawn"]);
  });

  it("a withdrawal met on the request's last call is answered naming the model and its successor", async () => {
    const store = new FakeStore([reservation(1), reservation(2), reservation(3)],
      { ...GEMMA, successor: "gemma-4-31b-it" });
    const google = new FakeGoogle([google500(), google500(), fail(notFound("gemma-3-27b-it"))]);
    const { run } = setup(store, google);
    const error = await rejection(run());
    expect(error.code).toBe("model_withdrawn");
    expect(error.details).toEqual({ model: "gemma-3-27b-it", successor: "gemma-4-31b-it" });
    expect(error.message).toContain("Its successor is gemma-4-31b-it");
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error", "upstream_error", "withdrawn"]);
  });

  it("takes a refused key out for good and moves on", async () => {
    const invalid = fail(classifyGoogleHttpError(400, {
      error: {
        message: "API key not valid",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" }],
      },
    }));
    const store = new FakeStore([reservation(1), refusal("no_active_key", null)]);
    const { run } = setup(store, new FakeGoogle([invalid]));
    const error = await rejection(run());
    expect(error.code).toBe("upstream_error");
    expect(store.finalized[0]).toMatchObject({ errorCode: "API_KEY_INVALID", keyRejected: true });
    expect(store.reserves[1]!.excludeKeyIds).toEqual(["key-1"]);
  });

  it("tells the database an expired key is refused too (not only API_KEY_INVALID)", async () => {
    const expired = fail(classifyGoogleHttpError(400, {
      error: {
        message: "API key expired. Please renew the API key.",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_EXPIRED" }],
      },
    }));
    const store = new FakeStore([reservation(1), reservation(2)]);
    const { run } = setup(store, new FakeGoogle([expired, ok()]));
    expect((await run()).key_alias).toBe("alias-2");
    expect(store.finalized[0]).toMatchObject({ errorCode: "API_KEY_EXPIRED", keyRejected: true });
    expect(store.finalized[1]).toMatchObject({ outcome: "succeeded", keyRejected: false });
  });

  it("releases a reservation whose key secret is missing and uses another key", async () => {
    const store = new FakeStore([{ ...reservation(1), envVarName: "UNSET_SECRET" }, reservation(2)]);
    const google = new FakeGoogle([ok()]);
    const { run } = setup(store, google);
    const result = await run();
    expect(store.released).toEqual([["res-1", "key secret not set"]]);
    expect(result.key_alias).toBe("alias-2");
    expect(google.calls).toHaveLength(1);
    // Google was not called: the next reservation is still attempt 1 (a token's request counts once).
    expect(store.reserves.map((r) => r.attempt)).toEqual([1, 1]);
    expect(store.reserves[1]!.excludeKeyIds).toEqual(["key-1"]);
    expect(result.attempts).toBe(1);
  });

  it("missing secrets do not use up the three Google attempts", async () => {
    const unset = (n: number) => ({ ...reservation(n), envVarName: `UNSET_${n}` });
    const store = new FakeStore([unset(1), reservation(2), unset(3), reservation(4), reservation(5)]);
    const google = new FakeGoogle([google500(), google500(), google500()]);
    const { run } = setup(store, google);
    expect((await rejection(run())).code).toBe("upstream_error");
    expect(google.calls).toHaveLength(3);
    expect(store.reserves.map((r) => r.attempt)).toEqual([1, 1, 2, 2, 3]);
  });
});

describe("invoke: the caller's service tier", () => {
  const asking = (serviceTier: "flex" | "standard" | "priority", body: Record<string, unknown> = {}): InvokeContext => {
    const asked = { model: "gemma-3-27b", prompt: "x", ...body };
    return { ...context(asked), request: { ...parseInvokeRequest(asked), serviceTier } };
  };

  it("a tier the class may not ask for is refused before anything is booked", async () => {
    // Nothing scripted: a reservation would throw.
    const store = new FakeStore([]);
    const invoke = createInvoke({
      store,
      providers: providersOf({ google: new FakeGoogle([]) }, () => "k"),
      logError: () => {},
    });
    // No tier rows: standard is every class's ceiling.
    const e = await rejection(invoke(asking("priority")));
    expect(e.code).toBe("invalid_request");
    expect(e.details).toMatchObject({ field: "service_tier", allowed: ["flex", "standard"] });
    expect(store.reserves).toEqual([]);
    expect(store.released).toEqual([]);
  });

  it("checks every model of the chain, and a token against the classes it may be admitted in", async () => {
    const rows: ServiceTierRow[] = [
      { model: "gemma-3-27b-it", priorityClass: "interactive", serviceTier: "priority", standardOnShed: false },
      { model: "gemma-3-27b-it", priorityClass: "batch", serviceTier: "flex", standardOnShed: false },
    ];
    const store = Object.assign(new FakeStore([reservation(1)]), { serviceTiers: () => Promise.resolve(rows) });
    const invoke = createInvoke({
      store,
      providers: providersOf({ google: new FakeGoogle([ok()]) }, () => "k"),
      logError: () => {},
    });
    const token = (ctx: InvokeContext): InvokeContext => ({ ...ctx, caller: { kind: "token", tokenHash: "h", label: "client:t" } });
    // A batch token may ask for flex only.
    expect((await rejection(invoke(token(asking("standard", { priority: "batch" }))))).code).toBe("invalid_request");
    // A token that names no class may be interactive: priority passes here (the admitted class decides after).
    expect(await invoke(token(asking("priority")))).toMatchObject({ model: "gemma-3-27b-it" });
    expect(store.reserves).toHaveLength(1);
  });
});

describe("the countTokens route", () => {
  const counter = (store: FakeStore, google: FakeGoogle) =>
    createInputCounter({
      store,
      providers: providersOf({ google }, (name) => (name.startsWith("GOOGLE_KEY_") ? `secret-of-${name}` : undefined)),
      clock: new FakeClock(),
      // Every cached row is stale at once: a second look-up would read the store again.
      options: { capabilitiesTtlMs: 0 },
      logError: () => {},
    });
  const request = parseInvokeRequest({ model: "gemma-3-27b", prompt: "Привет" });

  it("reads the model's row once: the withdrawn check uses the row the request was fitted from", async () => {
    const store = new FakeStore([]);
    const google = new FakeGoogle([], [{ ok: true, totalTokens: 42, latencyMs: 1 }]);
    expect(await counter(store, google)(request, new AbortController().signal)).toBe(42);
    expect(store.capabilityReads).toBe(1);
  });

  it("a withdrawn model is answered from its row, naming the successor, without asking Google", async () => {
    const store = new FakeStore([], { ...GEMMA, withdrawn: true, successor: "gemma-4-31b-it" });
    const google = new FakeGoogle([]);
    const error = await rejection(counter(store, google)(request, new AbortController().signal));
    expect(error.code).toBe("model_withdrawn");
    expect(error.details).toEqual({ model: "gemma-3-27b-it", successor: "gemma-4-31b-it" });
    expect(google.counts).toHaveLength(0);
    expect(store.capabilityReads).toBe(1);
  });
});

describe("limitOfQuota", () => {
  it("names the limit a Google 429 hit", () => {
    const c = (quotaId: string) =>
      classifyGoogleHttpError(429, {
        error: { details: [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId }] }] },
      });
    expect(limitOfQuota(c("GenerateRequestsPerDayPerProjectPerModel-FreeTier"))).toBe("rpd");
    expect(limitOfQuota(c("GenerateContentInputTokensPerModelPerMinute-FreeTier"))).toBe("tpm");
    expect(limitOfQuota(c("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"))).toBe("rpm");
    expect(limitOfQuota(c("Something"))).toBe("upstream");
  });

  it("reads the limit from the cause: a limit: 0 with a per-day quotaId is no used-up day", () => {
    const zero = classifyGoogleHttpError(429, {
      error: {
        message: "Quota exceeded for metric: generate_content_free_tier_requests, limit: 0",
        details: [{
          "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [{ quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier" }],
        }],
      },
    });
    expect(zero.quotaCause).toBe("limit_zero");
    expect(limitOfQuota(zero)).toBe("upstream");
    expect(exhausted(zero).extra).toMatchObject({ limit: "upstream", cause: "limit_zero" });
  });

  it("names the provider that refused or failed by its row's display name, whatever its dialect", () => {
    const openai = (status: number, message: string, who?: string) =>
      classifiedHttp(openAiRules(who), status, {
        error: { message, type: "invalid_request_error", param: null, code: null },
      }, new Headers(), { secrets: [], model: "gpt-4o" });
    const refused = openai(400, "'messages' must contain the word 'json' in some form.");
    expect(refused.class).toBe("client_error");
    expect(exhausted(refused)).toMatchObject({
      code: "upstream_rejected",
      message: expect.stringMatching(/^OpenAI rejected/),
    });
    expect(exhausted(openai(500, "The server had an error.")).message).toMatch(/^OpenAI failed: /);
    // A provider of OpenAI's dialect added by rows: its own name, never its dialect's.
    expect(exhausted(openai(400, "bad", "DeepSeek")).message).toBe("DeepSeek rejected the request: bad");
    const google = classifiedHttp(googleRules(), 400, {
      error: { code: 400, message: "bad field", status: "INVALID_ARGUMENT" },
    }, new Headers(), { secrets: [] });
    expect(exhausted(google)).toMatchObject({
      code: "upstream_rejected",
      message: "Google rejected the request: bad field",
    });
  });
});

describe("invoke: scoped tokens", () => {
  const TOKEN_HASH = "ab".repeat(32);
  function runWithToken(store: FakeStore, google: FakeGoogle, body: Record<string, unknown> = {}) {
    const invoke = createInvoke({
      store,
      providers: providersOf({ google }, (name) => `secret-of-${name}`),
      clock: new FakeClock(),
      random: () => 0,
      logError: () => {},
    });
    return invoke({
      ...context({ model: "gemma-3-27b", prompt: "hi", ...body }),
      caller: { kind: "token", tokenHash: TOKEN_HASH, label: "nb-1" },
    });
  }

  it("reserves with the token's hash (the database validates it and names the client)", async () => {
    const store = new FakeStore([reservation(1)]);
    await runWithToken(store, new FakeGoogle([ok()]));
    expect(store.reserves[0]).toMatchObject({ caller: { kind: "token", tokenHash: TOKEN_HASH }, attempt: 1 });
  });

  it("service callers reserve without a token hash", async () => {
    const store = new FakeStore([reservation(1)]);
    await setup(store, new FakeGoogle([ok()])).run();
    expect(store.reserves[0]!.caller).toEqual({ kind: "service", name: "eve-bot" });
  });

  it.each<[Refusal["limit"], number | null, string, number, string | null]>([
    ["token_invalid", null, "token_invalid", 401, null],
    ["token_expired", null, "token_expired", 401, null],
    ["token_revoked", null, "token_revoked", 401, null],
    ["model_not_allowed", null, "model_not_allowed", 403, null],
    ["token_budget", null, "rate_limited", 429, null],
    ["client_budget", 3_600_000, "rate_limited", 429, "3600"],
  ])("answers %s at once, even in WAIT mode", async (limit, retryAfterMs, code, status, retryAfter) => {
    const store = new FakeStore([refusal(limit, retryAfterMs)]);
    const google = new FakeGoogle([]);
    const error = await rejection(runWithToken(store, google, { mode: "WAIT", max_wait_ms: 60_000 }));
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.headers?.["Retry-After"] ?? null).toBe(retryAfter);
    if (code === "rate_limited") expect(error.toBody()).toMatchObject({ limit, retry_after_ms: retryAfterMs });
    expect(store.reserves).toHaveLength(1);
    expect(google.calls).toHaveLength(0);
  });
});

describe("a request_id being served by another call", () => {
  it("answers 409 with the real end of the first call's claim, not a fixed second", async () => {
    const store = new FakeStore([{ ...refusal("in_progress", 412_300), retryAt: "2026-11-21T09:07:00Z" }]);
    const { run } = setup(store, new FakeGoogle([]));
    const error = await run({ request_id: "dup-1" }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    const e = error as GatewayError;
    expect(e.code).toBe("request_in_progress");
    expect(e.headers).toEqual({ "Retry-After": "413" });
    expect(e.extra).toMatchObject({ retry_after_ms: 412_300, retry_at: "2026-11-21T09:07:00Z" });
  });
});

describe("invoke: Google's exact count where the estimate would refuse", () => {
  const counted = (totalTokens: number): CountTokensOutcome => ({ ok: true, totalTokens, latencyMs: 3 });
  const tooLarge = (maxTokens: number): Refusal => ({ ...refusal("too_large", null), maxTokens });
  const LONG = "x".repeat(6_000); // estimated at ~2,000 tokens: above the tpm threshold
  const estimateOf = (prompt: string) =>
    estimateInputTokens({ messages: [{ role: "user", parts: [{ type: "text", text: prompt }] }] });

  it("never counts an ordinary request", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([ok()], [counted(1)]);
    await setup(store, google).run();
    expect(google.counts).toHaveLength(0);
    expect(store.keyReads).toBe(0);
  });

  it("serves an input the estimate calls too large when Google's count fits, reserving that count", async () => {
    const store = new FakeStore([tooLarge(1_800), reservation(1)]);
    const google = new FakeGoogle([ok()], [counted(1_500)]);
    const result = await setup(store, google).run({ prompt: LONG });
    expect(result.text).toBe("Привет");
    expect(store.reserves.map((r) => r.estimatedTokens)).toEqual([estimateOf(LONG), 1_500]);
    // Counted once, with an active key's secret, on exactly what generateContent is sent.
    expect(google.counts).toHaveLength(1);
    expect(google.counts[0]!.apiKey).toBe("secret-of-GOOGLE_KEY_1");
    expect(google.counts[0]!.request).toEqual(google.calls[0]!.request);
  });

  it("answers 400 with Google's count when that is still above the limit, without a second reservation", async () => {
    const store = new FakeStore([tooLarge(1_800)]);
    const google = new FakeGoogle([], [counted(1_950)]);
    const error = await rejection(setup(store, google).run({ prompt: LONG }));
    expect(error.code).toBe("invalid_request");
    expect(error.status).toBe(400);
    expect(error.message).toContain("Google counts the input at 1950 tokens");
    expect(error.message).toContain("(1800)");
    expect(error.details).toEqual({ field: "messages", estimated_tokens: estimateOf(LONG), counted_tokens: 1_950, tpm_limit: 1_800 });
    expect(store.reserves).toHaveLength(1);
    expect(google.calls).toHaveLength(0);
  });

  it.each<[string, CountTokensOutcome]>([
    ["a network failure", countFailed()],
    ["a 429", { ok: false, error: classifyGoogleHttpError(429, { error: { code: 429, message: "q" } }), latencyMs: 1 }],
    ["a 503", { ok: false, error: classifyGoogleHttpError(503, { error: { code: 503, message: "u" } }), latencyMs: 1 }],
    ["a timeout", { ok: false, error: upstreamFailure("timeout", "slow"), latencyMs: 1 }],
  ])("falls back to the estimate's refusal when countTokens gives %s", async (_, failure) => {
    const store = new FakeStore([tooLarge(1_800)]);
    const google = new FakeGoogle([], [failure]);
    const error = await rejection(setup(store, google).run({ prompt: LONG }));
    expect(error.status).toBe(400);
    expect(error.message).toContain(`estimated at ${estimateOf(LONG)} tokens`);
    expect(error.details).toEqual({ field: "messages", estimated_tokens: estimateOf(LONG), tpm_limit: 1_800 });
    expect(google.counts).toHaveLength(1);
  });

  it("falls back as well when the key list cannot be read or no key has its secret", async () => {
    const broken = new FakeStore([tooLarge(1_800)]);
    broken.activeKeys = () => Promise.reject(new GatewayError("unavailable", "database down"));
    const google = new FakeGoogle([], [counted(1)]);
    expect((await rejection(setup(broken, google).run({ prompt: LONG }))).code).toBe("invalid_request");
    const secretless = new FakeStore([tooLarge(1_800)]);
    secretless.keys = secretless.keys.map((k) => ({ ...k, envVarName: "UNSET" }));
    expect((await rejection(setup(secretless, google).run({ prompt: LONG }))).code).toBe("invalid_request");
    expect(google.counts).toHaveLength(0);
  });

  it("counts a large input refused tpm and reserves again at once with the count (NO_WAIT)", async () => {
    expect(estimateOf(LONG)).toBeGreaterThanOrEqual(EXACT_COUNT_MIN_TOKENS);
    const store = new FakeStore([refusal("tpm", 20_000), reservation(1)]);
    const google = new FakeGoogle([ok()], [counted(1_500)]);
    const { run, clock } = setup(store, google);
    await run({ prompt: LONG, mode: "NO_WAIT" });
    expect(store.reserves.map((r) => r.estimatedTokens)).toEqual([estimateOf(LONG), 1_500]);
    expect(clock.sleeps).toEqual([]);
  });

  it("does not count an input under the threshold refused tpm", async () => {
    const store = new FakeStore([refusal("tpm", 20_000)]);
    const google = new FakeGoogle([], [counted(1)]);
    const error = await rejection(setup(store, google).run({ mode: "NO_WAIT" }));
    expect(error.toBody()).toMatchObject({ limit: "tpm" });
    expect(google.counts).toHaveLength(0);
  });

  it("counts once per request and books the count for every later reservation, waits and retries included", async () => {
    const store = new FakeStore([
      refusal("tpm", 2_000),
      queued("tpm", 2_000),
      reservation(1),
      reservation(2),
    ]);
    const google = new FakeGoogle([google500(), ok()], [counted(1_500), counted(1)]);
    const { run, clock } = setup(store, google);
    await run({ prompt: LONG, mode: "WAIT", max_wait_ms: 30_000 });
    expect(google.counts).toHaveLength(1);
    expect(store.reserves.map((r) => r.estimatedTokens)).toEqual([estimateOf(LONG), 1_500, 1_500, 1_500]);
    expect(clock.sleeps).toHaveLength(2); // one wait for the window, one backoff after the 500
  });

  it("takes the active keys in turn and reads them once per cache period", async () => {
    const store = new FakeStore([tooLarge(1_800), tooLarge(1_800)]);
    const google = new FakeGoogle([], [counted(1_900), counted(1_900)]);
    const { run } = setup(store, google);
    await rejection(run({ prompt: LONG }));
    await rejection(run({ prompt: LONG }));
    expect(google.counts.map((c) => c.apiKey)).toEqual(["secret-of-GOOGLE_KEY_1", "secret-of-GOOGLE_KEY_2"]);
    expect(store.keyReads).toBe(1);
  });
});

describe("invoke: model fallback", () => {
  const FLASH: ModelProfile = {
    model: "gemini-2.5-flash",
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    active: true,
    fallbackModels: ["gemma-3-27b-it"], provider: "google", dialect: "google",
  };
  const ROWS = { "gemini-2.5-flash": FLASH, "gemma-3-27b-it": GEMMA };
  const onGemma = (n: number, fallbackFrom?: Reservation["fallbackFrom"]): Reservation => ({
    ...reservation(n),
    ...(fallbackFrom === undefined ? {} : { fallbackFrom }),
  });

  it("reserves the row's chain in one call and answers with the model that served, called as that model", async () => {
    const store = new FakeStore(
      [onGemma(1, [{ model: "gemini-2.5-flash", limit: "rpd", cause: "day_exhausted", retryAfterMs: 3_600_000 }])],
      ROWS,
    );
    const google = new FakeGoogle([ok()]);
    const { run } = setup(store, google);
    const result = await run({ model: "gemini-2.5-flash", system: "Кратко." });
    expect(store.reserves).toHaveLength(1);
    expect(store.reserves[0]).toMatchObject({ model: "gemini-2.5-flash", fallbackModels: ["gemma-3-27b-it"] });
    expect(result).toMatchObject({
      model: "gemma-3-27b-it",
      requested_model: "gemini-2.5-flash",
      fallback_from: [{ model: "gemini-2.5-flash", limit: "rpd", cause: "day_exhausted", retry_after_ms: 3_600_000 }],
    });
    // Gemma served: the system prompt went in the first user turn, not as a system instruction.
    expect(google.calls[0]!.request).toMatchObject({
      model: "gemma-3-27b-it",
      messages: [{ parts: [{ text: "Кратко.\n\nПривет" }] }],
    });
    expect(google.calls[0]!.request.system).toBeUndefined();
  });

  it("says nothing of fallback when the first model served, and sends no chain when the caller asks for none", async () => {
    const store = new FakeStore([{ ...reservation(1), model: "gemini-2.5-flash" }, {
      ...reservation(2),
      model: "gemini-2.5-flash",
    }], ROWS);
    const { run } = setup(store, new FakeGoogle([ok(), ok()]));
    const first = await run({ model: "gemini-2.5-flash" });
    expect(first).not.toHaveProperty("requested_model");
    expect(first).not.toHaveProperty("fallback_from");
    await run({ model: "gemini-2.5-flash", fallback_models: [] });
    expect(store.reserves[1]!.fallbackModels).toEqual([]);
  });

  it("keeps what a queued request was passed over for when its ticket is served on the fallback", async () => {
    const passed = [{ model: "gemini-2.5-flash", limit: "rpm", cause: "window_full", retryAfterMs: 70_000 }];
    const store = new FakeStore([
      { ...queued("rpm", 4_000), model: "gemma-3-27b-it", fallbackFrom: passed },
      onGemma(1),
    ], ROWS);
    const { run, clock } = setup(store, new FakeGoogle([ok()]));
    const result = await run({ model: "gemini-2.5-flash", max_wait_ms: 10_000 });
    expect(clock.sleeps).toEqual([4_000]);
    expect(store.reserves[1]).toMatchObject({
      queueTicket: "00000000-0000-4000-8000-000000000001",
      fallbackModels: ["gemma-3-27b-it"],
    });
    expect(result).toMatchObject({
      model: "gemma-3-27b-it",
      fallback_from: [{ model: "gemini-2.5-flash", limit: "rpm" }],
    });
  });

  it("answers a chain's refusal with the model that comes back first and why each model refused", async () => {
    const steps = [
      { model: "gemini-2.5-flash", limit: "rpd", cause: "day_exhausted", retryAfterMs: 3_600_000 },
      { model: "gemma-3-27b-it", limit: "rpm", cause: "spread", retryAfterMs: 20_000 },
    ];
    const store = new FakeStore([{ ...refusal("rpm", 20_000), model: "gemma-3-27b-it", fallbackFrom: steps }], ROWS);
    const { run } = setup(store, new FakeGoogle([]));
    const error = await rejection(run({ model: "gemini-2.5-flash", mode: "NO_WAIT" }));
    expect(error.status).toBe(429);
    expect(error.headers).toEqual({ "Retry-After": "20" });
    expect(error.toBody()).toMatchObject({
      limit: "rpm",
      retry_after_ms: 20_000,
      model: "gemma-3-27b-it",
      fallback_from: [
        { model: "gemini-2.5-flash", limit: "rpd", cause: "day_exhausted", retry_after_ms: 3_600_000 },
        { model: "gemma-3-27b-it", limit: "rpm", cause: "spread", retry_after_ms: 20_000 },
      ],
    });
  });
});

/** Google's streamed chunks, with cumulative usage as Google sends it; `cut` breaks off after them. */
function googleStream(pieces: string[], options: { cut?: boolean; promptTokens?: number } = {}) {
  let returned = false;
  const prompt = options.promptTokens ?? 11;
  async function* chunks(): AsyncGenerator<HubChunk, void, undefined> {
    try {
      let soFar = 0;
      for (const [i, text] of pieces.entries()) {
        soFar += text.length;
        const last = i === pieces.length - 1 && options.cut !== true;
        yield {
          answer: hubAnswerOf({
            candidates: [{ content: { role: "model", parts: [{ text }] }, ...(last ? { finishReason: "STOP" } : {}) }],
            usageMetadata: { promptTokenCount: prompt, candidatesTokenCount: soFar, totalTokenCount: prompt + soFar },
          }),
        };
      }
      if (options.cut === true) throw new StreamCut(upstreamFailure("network", "connection reset"));
    } finally {
      returned = true;
    }
  }
  const outcome: StreamOutcome = { ok: true, latencyMs: 40, chunks: chunks() };
  return { outcome, wasClosed: () => returned };
}

async function readAll(stream: InvokeStream): Promise<string[]> {
  const texts: string[] = [];
  for await (const chunk of stream.chunks) {
    texts.push(hubText(chunk.answer!));
  }
  return texts;
}

describe("invoke: streamed answers", () => {
  it("passes Google's chunks on as they come and finalizes once, after the last, with Google's last count", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    google.streams.push(googleStream(["При", "вет"]).outcome);
    const { runStream } = setup(store, google);
    const stream = await runStream();
    expect(stream).toMatchObject({ model: "gemma-3-27b-it", key_alias: "alias-1", attempts: 1 });
    // Nothing is written between Google's first chunk and the caller: finalize waits for the end.
    expect(store.finalized).toEqual([]);
    expect(await readAll(stream)).toEqual(["При", "вет"]);
    expect(store.finalized).toEqual([expect.objectContaining({
      reservationId: "res-1",
      outcome: "succeeded",
      inputTokens: 11,
      outputTokens: 6,
      booked: { quotaGroup: "project-1", model: "gemma-3-27b-it" },
    })]);
    expect(stream.result()).toMatchObject({ text: "Привет", usage: { prompt_tokens: 11, completion_tokens: 6 } });
  });

  it("a caller that goes away mid-stream stops Google's stream; the attempt is cut with the tokens so far", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    const scripted = googleStream(["one ", "two ", "three"]);
    google.streams.push(scripted.outcome);
    const { runStream } = setup(store, google);
    const stream = await runStream();
    for await (const _chunk of stream.chunks) break; // the first chunk, then the caller leaves
    expect(scripted.wasClosed()).toBe(true);
    expect(store.finalized).toEqual([expect.objectContaining({
      outcome: "cut",
      cutBy: "client",
      inputTokens: 11,
      outputTokens: 4,
    })]);
  });

  it("a caller whose connection drops between chunks: the stream is ended by its signal, not only by the body's cancel", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    const scripted = googleStream(["one ", "two ", "three"]);
    google.streams.push(scripted.outcome);
    const { runStream } = setup(store, google);
    const caller = new AbortController();
    const stream = await runStream({}, caller.signal);
    const reader = stream.chunks[Symbol.asyncIterator]();
    await reader.next(); // the first chunk went out; the relay is parked before the next
    caller.abort();
    await expect.poll(() => store.finalized.length).toBe(1);
    expect(scripted.wasClosed()).toBe(true);
    expect(store.finalized[0]).toMatchObject({ outcome: "cut", cutBy: "client", inputTokens: 11 });
    expect((await reader.next()).done).toBe(true);
  });

  it("a caller gone before reading anything still ends Google's stream and the attempt", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    const scripted = googleStream(["one ", "two"]);
    google.streams.push(scripted.outcome);
    const { runStream } = setup(store, google);
    const stream = await runStream();
    await stream.cancel();
    expect(scripted.wasClosed()).toBe(true);
    expect(store.finalized).toEqual([expect.objectContaining({ outcome: "cut", cutBy: "client" })]);
    await stream.cancel(); // twice is harmless
    expect(store.finalized).toHaveLength(1);
  });

  it("Google breaking the stream off after it began: the caller gets upstream_error, the attempt is cut", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    google.streams.push(googleStream(["one ", "two"], { cut: true }).outcome);
    const { runStream } = setup(store, google);
    const stream = await runStream();
    const error = await rejection(readAll(stream));
    expect(error.code).toBe("upstream_error");
    expect(store.finalized).toEqual([expect.objectContaining({ outcome: "cut", cutBy: "upstream", outputTokens: 7 })]);
  });

  it("a stream that fails before its first chunk is an ordinary failed attempt, retried on another key", async () => {
    const store = new FakeStore([reservation(1), reservation(2)]);
    const google = new FakeGoogle([]);
    google.streams.push(
      {
        ok: false,
        latencyMs: 5,
        error: classifyGoogleHttpError(503, { error: { code: 503, status: "UNAVAILABLE", message: "busy" } }),
      },
      googleStream([], { cut: true }).outcome, // breaks off before any chunk
      googleStream(["ok"]).outcome,
    );
    store["script"].push(reservation(3));
    const { runStream } = setup(store, google);
    const stream = await runStream();
    expect(await readAll(stream)).toEqual(["ok"]);
    expect(stream.attempts).toBe(3);
    expect(store.finalized.map((f) => f.outcome)).toEqual(["upstream_error", "network_error", "succeeded"]);
  });
});

describe("invoke: the provider's room near its end (room.ts)", () => {
  const room = (requests: number) => ({ requests, tokens: 1_000_000, resetMs: 30_000 });
  const withRoom = (requests: number): GenerateOutcome => ({ ...ok(), room: room(requests) } as GenerateOutcome);
  const roomStream = (requests: number) => {
    const scripted = googleStream(["При", "вет"]);
    return { ...scripted.outcome, room: room(requests) } as StreamOutcome;
  };

  it("a success with a request left: written before the answer (alone, flushed outside the row's lock), even where waitUntil exists, the room as the provider said it", async () => {
    const store = new FakeStore([reservation(1)]);
    const pending: Array<Promise<unknown>> = [];
    const { run } = setup(store, new FakeGoogle([withRoom(1)]), { waitUntil: (p) => pending.push(p) });
    await run();
    expect(pending).toEqual([]);
    expect(store.finalized.map((f) => [f.room?.requests, f.beforeAnswer])).toEqual([[1, true]]);
  });

  it("a success with more left: after the answer, with the others, the room less the caller's next call", async () => {
    const store = new FakeStore([reservation(1)]);
    const pending: Array<Promise<unknown>> = [];
    const { run } = setup(store, new FakeGoogle([withRoom(10)]), { waitUntil: (p) => pending.push(p) });
    await run();
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect(store.finalized.map((f) => [f.room?.requests, f.beforeAnswer, f.booked !== undefined])).toEqual([[9, undefined, true]]);
  });

  it("without waitUntil the finalize is awaited before the answer: the room as the provider said it", async () => {
    const store = new FakeStore([reservation(1)]);
    const { run } = setup(store, new FakeGoogle([withRoom(10)]));
    await run();
    expect(store.finalized.map((f) => [f.room?.requests, f.beforeAnswer])).toEqual([[10, undefined]]);
  });

  it("a stream with a request left: its last chunk reaches the caller after the finalize is written", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    google.streams.push(roomStream(1));
    const { runStream } = setup(store, google, { waitUntil: () => {} });
    const reader = (await runStream()).chunks[Symbol.asyncIterator]();
    expect(hubText((await reader.next()).value!.answer!)).toBe("При");
    expect(store.finalized).toEqual([]);
    expect(hubText((await reader.next()).value!.answer!)).toBe("вет");
    expect(store.finalized).toEqual([
      expect.objectContaining({ outcome: "succeeded", outputTokens: 6, beforeAnswer: true, room: expect.objectContaining({ requests: 1 }) }),
    ]);
    expect((await reader.next()).done).toBe(true);
    expect(store.finalized).toHaveLength(1);
  });

  it("a stream with a request left: the text before its end flows as it comes, only the finishing chunk waits", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    // The provider's second (finishing) chunk comes only once the gate opens, after the caller has had
    // the first: held until the next chunk came, the first would reach the caller only after the gate.
    const events: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const scripted = googleStream(["При", "вет"]).outcome;
    async function* slowly(): AsyncGenerator<HubChunk, void, undefined> {
      let first = true;
      for await (const chunk of scripted.ok ? scripted.chunks : []) {
        if (!first) await gate;
        first = false;
        yield chunk;
      }
    }
    google.streams.push({ ...scripted, chunks: slowly(), room: room(1) } as StreamOutcome);
    const { runStream } = setup(store, google, { waitUntil: () => {} });
    const reader = (await runStream()).chunks[Symbol.asyncIterator]();
    setTimeout(() => {
      events.push("gate");
      open();
    }, 50);
    expect(hubText((await reader.next()).value!.answer!)).toBe("При");
    events.push("first chunk");
    expect(hubText((await reader.next()).value!.answer!)).toBe("вет");
    expect(events).toEqual(["first chunk", "gate"]);
    expect(store.finalized).toHaveLength(1);
  });

  it("a stream with more left: each chunk as it comes, the finalize after the last, the room less the caller's next call", async () => {
    const store = new FakeStore([reservation(1)]);
    const google = new FakeGoogle([]);
    google.streams.push(roomStream(10));
    const { runStream } = setup(store, google);
    const reader = (await runStream()).chunks[Symbol.asyncIterator]();
    await reader.next();
    await reader.next();
    expect(store.finalized).toEqual([]);
    expect((await reader.next()).done).toBe(true);
    expect(store.finalized.map((f) => [f.room?.requests, f.beforeAnswer])).toEqual([[9, undefined]]);
  });
});
