// An offline stand-in for https://api.openai.com (Chat Completions and Models), for the gateway's
// tests, benchmarks and local stack. It speaks what the `openai` SDK sends (key in `Authorization:
// Bearer`), counts per organization and model as OpenAI documents (input + max_tokens on arrival),
// answers every call with x-ratelimit-* headers and OpenAI's error bodies, and can inject faults.
// See README.md.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { arrivalDelays } from '../sim-core/arrival.ts';
import { commonRoutes, isControlPath, serveControl, type ControlRoutes } from '../sim-core/control.ts';
import { closeServer, decodePath, listen, parseJson, readBody, Sleeper, writeJson, writeRaw, writeSse } from '../sim-core/http.ts';
import { isObject } from '../sim-core/json.ts';
import { StatsRecorder, type RequestRecord } from '../sim-core/stats.ts';
import { writePacedSse } from '../sim-core/streaming.ts';
import { MINUTE_WINDOWS, type MinuteWindow } from '../sim-core/windows.ts';
import { pickWording } from '../sim-core/wordings.ts';
import { WithdrawnModels } from '../sim-core/withdrawn.ts';
import {
  DEV_ORGS,
  limitsFor,
  modelObject,
  resolveModels,
  resolveOrgs,
  type Limits,
  type ModelOptions,
  type ModelSpec,
  type OrgOptions,
  type Wallet,
} from './config.ts';
import { bookedTokens, buildChoices, completionTokens, DEFAULT_MAX_TOKENS, parseChatRequest, promptTokens } from './completions.ts';
import * as errors from './errors.ts';
import { FaultBook, parseFaultSpec, type ApiMethod, type Fault, type FaultSpec } from './faults.ts';
import { QuotaTracker, type UsageSnapshot } from './quota.ts';
import { completionObject, streamEvents, type Answer } from './responses.ts';
import { embeddingList, parseEmbeddingRequest } from './embeddings.ts';
import { chatBodyOfResponses, responseEvents, responseObject } from './responses-api.ts';
import { openaiStats, type SimStats } from './stats.ts';

export { DEFAULT_MODELS, DEV_ORGS, type Limits, type ModelOptions, type ModelSpec, type OrgOptions, type OrgSpec, type Wallet } from './config.ts';
export { DEFAULT_MAX_TOKENS, FUNCTION_ARG_STRING, promptTokens } from './completions.ts';
export {
  formatDuration,
  INSUFFICIENT_QUOTA_WORDINGS,
  MODEL_NOT_FOUND_WORDINGS,
  RATE_LIMIT_WORDINGS,
  WAIT_STYLES,
  type WaitStyle,
} from './errors.ts';
export type { ApiMethod, Fault, FaultKind, FaultSpec } from './faults.ts';
export type { Counter, RequestRecord, StreamCounts } from './stats.ts';
export { MINUTE_WINDOWS, type MinuteWindow } from '../sim-core/windows.ts';
export { tokensForText } from '../sim-core/text-tokens.ts';

/** OpenAI's request size limit for a chat completion body (approximate; OpenAI does not publish one). */
const MAX_BODY_BYTES = 50 * 1024 * 1024;

export type Settle = 'arrival' | 'usage';

export interface OpenAISimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Organizations and their keys. Default DEV_ORGS. */
  organizations?: OrgOptions;
  /** Per-model overrides merged over DEFAULT_MODELS; new ids add models. */
  models?: ModelOptions;
  /** Clock in epoch ms. Default Date.now. */
  now?: () => number;
  /** "fixed" (default) calendar minutes, or "sliding" 60 s windows over arrivals. */
  window?: MinuteWindow;
  /** Sub-minute enforcement: slices of this many ms, each admitting its share of RPM and TPM. */
  sliceMs?: number;
  /** max_tokens booked on arrival when a request sends none. Default DEFAULT_MAX_TOKENS (4096). */
  defaultMaxTokens?: number;
  /**
   * 'arrival' (default): TPM keeps what a request booked on arrival. 'usage': once the answer is
   * built, the tokens it did not use (booked − prompt − completion) are given back to the window.
   */
  settle?: Settle;
  /** How rate-limit messages give the wait; default drawn per run from the wording seed. */
  waitStyle?: errors.WaitStyle;
  /** Network delay before a request arrives (and is counted), ± uniform jitter. Default 0. */
  arrivalDelayMs?: number;
  arrivalJitterMs?: number;
  /** [0, 1) source for the jitter; default Math.random, or seeded by `seed`. */
  random?: () => number;
  seed?: number;
  /** Fixed delay before each successful completion. Default 0. */
  latencyMs?: number;
  /** Content pieces per choice in a streamed answer. Default 3. */
  streamChunks?: number;
  /** Pause between SSE events of a streamed answer. Default 0. */
  streamChunkDelayMs?: number;
  /** Fault rules active from the start. */
  faults?: FaultSpec[];
}

export interface OutsideSpend {
  organization: string;
  model: string;
  /** Requests the other client sends. Default 1. */
  requests?: number;
  /** Tokens each of them books (input + max_tokens). Default 0. */
  tokensEach?: number;
}

export interface OpenAISimulatorStats extends SimStats {
  /** Current window usage per organization, per model (outside spending included). */
  quota: Record<string, Record<string, UsageSnapshot>>;
  /** What other clients of an organization spent through `spend()`, per organization, per model. */
  outside: Record<string, Record<string, { admitted: number; refused: number }>>;
}

export interface OpenAISimulator {
  /** e.g. http://127.0.0.1:54330; the SDK's baseURL is `${url}/v1`. */
  readonly url: string;
  readonly port: number;
  readonly waitStyle: errors.WaitStyle;
  readonly defaultMaxTokens: number;
  readonly settle: Settle;
  setFaults(faults: FaultSpec[]): Fault[];
  addFault(fault: FaultSpec): Fault;
  clearFaults(): void;
  faults(): Fault[];
  /** Clears quota windows, stats, outside spending and faults; keeps organizations and models. */
  reset(): void;
  stats(): OpenAISimulatorStats;
  /** Replaces the organizations (keys, limits, wallets); quota usage is kept. */
  setOrganizations(orgs: OrgOptions): void;
  organizations(): OrgOptions;
  /** Empties or refills an organization's wallet. */
  setWallet(organization: string, wallet: Wallet): void;
  setModels(models: ModelOptions): void;
  models(): Record<string, ModelSpec>;
  withdraw(model: string): void;
  restore(model: string): void;
  setWithdrawn(models: readonly string[]): void;
  withdrawnModels(): string[];
  /**
   * Another client of the organization spends its limits (not through this simulator's HTTP API):
   * each request is admitted or refused like any other and nothing is answered.
   */
  spend(s: OutsideSpend): { admitted: number; refused: number };
  close(): Promise<void>;
}

interface Route {
  method: ApiMethod;
  model: string | undefined;
}

function matchRoute(httpMethod: string | undefined, path: string): Route | undefined {
  const p = path.replace(/\/+$/, '');
  if (p === '/v1/chat/completions') return httpMethod === 'POST' ? { method: 'chat.completions', model: undefined } : undefined;
  if (p === '/v1/responses') return httpMethod === 'POST' ? { method: 'responses', model: undefined } : undefined;
  if (p === '/v1/embeddings') return httpMethod === 'POST' ? { method: 'embeddings', model: undefined } : undefined;
  if (p === '/v1/models') return httpMethod === 'GET' ? { method: 'models.list', model: undefined } : undefined;
  const m = /^\/v1\/models\/(.+)$/.exec(p);
  if (m && httpMethod === 'GET') return { method: 'models.get', model: m[1] };
  return undefined;
}

function bearer(req: IncomingMessage): string | undefined {
  const raw = req.headers.authorization;
  if (typeof raw !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(raw.trim());
  return m ? m[1]!.trim() : undefined;
}

function nonNegative(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!(Number.isFinite(value) && value >= 0)) throw new Error(`openai-sim: ${name} must be a non-negative number`);
  return value;
}

export async function startOpenAISimulator(opts: OpenAISimulatorOptions = {}): Promise<OpenAISimulator> {
  const now = opts.now ?? Date.now;
  const window = opts.window ?? 'fixed';
  if (!MINUTE_WINDOWS.includes(window)) throw new Error(`openai-sim: window must be one of ${MINUTE_WINDOWS.join(', ')}`);
  if (opts.sliceMs !== undefined && !(Number.isInteger(opts.sliceMs) && opts.sliceMs > 0 && opts.sliceMs <= 60_000)) {
    throw new Error('openai-sim: sliceMs must be an integer in 1..60000');
  }
  const waitStyle: errors.WaitStyle = opts.waitStyle ?? pickWording('openai.rate_limit.wait', errors.WAIT_STYLES);
  if (!errors.WAIT_STYLES.includes(waitStyle)) throw new Error(`openai-sim: waitStyle must be one of ${errors.WAIT_STYLES.join(', ')}`);
  const defaultMaxTokens = nonNegative('defaultMaxTokens', opts.defaultMaxTokens, DEFAULT_MAX_TOKENS);
  const settle: Settle = opts.settle ?? 'arrival';
  if (settle !== 'arrival' && settle !== 'usage') throw new Error("openai-sim: settle must be 'arrival' or 'usage'");
  const latencyMs = nonNegative('latencyMs', opts.latencyMs, 0);
  const streamChunks = Math.max(1, opts.streamChunks ?? 3);
  const streamChunkDelayMs = nonNegative('streamChunkDelayMs', opts.streamChunkDelayMs, 0);
  const nextArrivalDelay = arrivalDelays({ delayMs: opts.arrivalDelayMs, jitterMs: opts.arrivalJitterMs, random: opts.random, seed: opts.seed });

  let orgOptions: OrgOptions = structuredClone(opts.organizations ?? DEV_ORGS);
  let orgs = resolveOrgs(orgOptions);
  let models = resolveModels(opts.models);
  const quota = new QuotaTracker(now, window, opts.sliceMs);
  const faultBook = new FaultBook();
  faultBook.set(opts.faults ?? []);
  const withdrawn = new WithdrawnModels();
  const stats = new StatsRecorder<ApiMethod>();
  let outside: OpenAISimulatorStats['outside'] = {};
  const sleeper = new Sleeper();
  let closing = false;
  let answerSeq = 0;
  let mixedTurn = 0;

  /** The wait as the next rate-limit message words it. */
  function wordedWait(ms: number): string | undefined {
    if (waitStyle !== 'mixed') return errors.wordWait(ms, waitStyle);
    const styles = ['seconds', 'milliseconds', 'none'] as const;
    return errors.wordWait(ms, styles[mixedTurn++ % styles.length]!);
  }

  function send(res: ServerResponse, record: RequestRecord<ApiMethod>, status: number, body: unknown): void {
    stats.answered(record, status);
    writeJson(res, status, body);
  }

  function reply(res: ServerResponse, record: RequestRecord<ApiMethod>, a: errors.SimAnswer): void {
    send(res, record, a.status, a.body);
  }

  function setRateLimitHeaders(res: ServerResponse, org: string, model: string, limits: Limits): void {
    if (res.headersSent) return;
    for (const [name, value] of Object.entries(quota.headers(org, model, limits, errors.formatDuration))) res.setHeader(name, value);
  }

  /**
   * The organization's x-ratelimit-* on a fault's answer, as OpenAI puts them on its errors (a 400, a
   * 500, a 503 of a known key for a served model): the fault counts nothing, so they say the room as it is.
   */
  function setFaultRateLimitHeaders(res: ServerResponse, record: RequestRecord<ApiMethod>, model: string | undefined): void {
    const org = record.group;
    const spec = model === undefined ? undefined : models.get(model);
    if (org === undefined || spec === undefined || withdrawn.isWithdrawn(model!, spec)) return;
    setRateLimitHeaders(res, org, model!, limitsFor(orgs.orgs.get(org), model!, spec));
  }

  /** Answers for a matched fault; returns false when the request carries on (cut_stream, stream_error). */
  function applyFault(fault: Fault, route: Route, model: string | undefined, res: ServerResponse, record: RequestRecord<ApiMethod>): boolean {
    record.faultId = fault.id;
    if (fault.kind === 'http500' || fault.kind === 'http503' || fault.kind === 'bad_request') setFaultRateLimitHeaders(res, record, model);
    switch (fault.kind) {
      case 'http500':
        reply(res, record, errors.serverError());
        return true;
      case 'http502':
        stats.answered(record, 502);
        writeRaw(res, 502, 'text/html', errors.BAD_GATEWAY_PAGE);
        return true;
      case 'http503':
        reply(res, record, errors.overloaded());
        return true;
      case 'invalid_key':
        reply(res, record, errors.invalidApiKey(record.apiKey ?? ''));
        return true;
      case 'insufficient_quota':
        reply(res, record, errors.insufficientQuota());
        return true;
      case 'bad_request':
        reply(res, record, errors.badRequest(fault.message ?? 'Invalid request.'));
        return true;
      case 'model_not_found':
        reply(res, record, errors.modelNotFound(model ?? 'unknown', model === undefined ? undefined : models.get(model)?.replacement));
        return true;
      case 'rate_limited': {
        const waitMs = fault.waitMs ?? 1000;
        const kind = fault.limitType ?? 'requests';
        const spec = model === undefined ? undefined : models.get(model);
        const org = record.group ?? 'org-unknown';
        const limits = spec ? limitsFor(orgs.orgs.get(org), model!, spec) : { rpm: 0, tpm: 0 };
        if (!res.headersSent) {
          res.setHeader('x-ratelimit-limit-requests', String(limits.rpm));
          res.setHeader('x-ratelimit-limit-tokens', String(limits.tpm));
          res.setHeader(`x-ratelimit-remaining-${kind}`, '0');
          res.setHeader(`x-ratelimit-reset-${kind}`, errors.formatDuration(waitMs));
        }
        const limit = kind === 'requests' ? limits.rpm : limits.tpm;
        reply(res, record, errors.rateLimited({ kind, per: 'min', model: model ?? 'unknown', organization: org, limit, used: limit, requested: 1, wait: wordedWait(waitMs) }));
        return true;
      }
      case 'malformed':
        stats.answered(record, 200);
        if (wantsStream(record)) {
          writeSse(res, ['{"id": "chatcmpl-sim", "object": "chat.completion.chunk", "choices": [{"delta": {"content": "sim'], '\n');
        } else {
          writeRaw(res, 200, 'application/json', '{\n  "id": "chatcmpl-sim",\n  "object": "chat.completion",\n  "choices": [\n    {\n      "message": {"content": "sim');
        }
        return true;
      case 'hang':
        return true;
      case 'cut_stream':
      case 'stream_error':
        return false;
    }
  }

  /** Streams are asked in the body; the record remembers it for the malformed fault. */
  const streamed = new WeakSet<RequestRecord<ApiMethod>>();
  const wantsStream = (record: RequestRecord<ApiMethod>): boolean => streamed.has(record);

  /** POST /v1/embeddings: one request of the RPM per call, its input tokens in TPM (embeddings.ts). */
  async function embed(
    res: ServerResponse,
    record: RequestRecord<ApiMethod>,
    route: Route,
    org: string,
    model: string,
    spec: ModelSpec,
    limits: Limits,
    body: unknown,
  ): Promise<void> {
    if (route.method !== 'embeddings' || spec.embeddingDimensions === undefined) {
      return reply(res, record, errors.badRequest(
        route.method === 'embeddings'
          ? `The model \`${model}\` does not support embeddings.`
          : `This is not a chat model and thus not supported in the v1/chat/completions endpoint. Did you mean to use v1/embeddings?`,
        'model',
      ));
    }
    const parsed = parseEmbeddingRequest(body, spec.embeddingDimensions, model.startsWith('text-embedding-3'));
    if (!parsed.ok) return reply(res, record, parsed.answer);
    record.promptTokens = parsed.value.tokens;
    const admission = quota.admit(org, model, limits, parsed.value.tokens);
    setRateLimitHeaders(res, org, model, limits);
    if (!admission.ok) {
      return reply(res, record, errors.rateLimited({
        kind: admission.kind, per: admission.per, model, organization: org, limit: admission.limit,
        used: admission.used, requested: admission.requested, wait: wordedWait(admission.retryAfterMs),
      }));
    }
    await sleeper.sleep(latencyMs);
    if (closing) return;
    send(res, record, 200, embeddingList(model, parsed.value));
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    await sleeper.sleep(nextArrivalDelay());
    if (closing) return;
    const route = matchRoute(req.method, path);
    const apiKey = bearer(req);
    const org = apiKey === undefined ? undefined : orgs.keyOrg.get(apiKey);
    const body = await readBody(req, MAX_BODY_BYTES);
    const json = parseJson(body.text);
    const fields = json.ok && isObject(json.value) ? json.value : {};
    const model = route?.model ?? (typeof fields.model === 'string' ? fields.model : undefined);
    const record = stats.received({ at: now(), method: route?.method ?? 'unknown', model, apiKey, group: org });
    stats.bodyReceived(record, body.text);
    if (fields.stream === true) streamed.add(record);
    res.on('close', () => {
      if (record.status === undefined) stats.abandoned(record);
    });
    res.setHeader('x-request-id', `req_${randomBytes(16).toString('hex')}`);
    if (org !== undefined) res.setHeader('openai-organization', org);
    res.setHeader('openai-version', '2020-10-01');

    if (!route) return reply(res, record, errors.routeNotFound(req.method, path));
    const fault = faultBook.take({ method: route.method, model, apiKey, organization: org });
    if (fault && applyFault(fault, route, model, res, record)) return;

    if (org === undefined) return reply(res, record, errors.invalidApiKey(apiKey));
    if (body.tooLarge) return reply(res, record, errors.payloadTooLarge(MAX_BODY_BYTES));

    if (route.method === 'models.list') {
      const data = [...models.entries()].filter(([id, spec]) => !withdrawn.isWithdrawn(id, spec)).map(([id, spec]) => modelObject(id, spec));
      return send(res, record, 200, { object: 'list', data });
    }
    const served = (id: string): ModelSpec | undefined => {
      const spec = models.get(id);
      return spec && !withdrawn.isWithdrawn(id, spec) ? spec : undefined;
    };
    if (route.method === 'models.get') {
      const spec = served(route.model!);
      if (!spec) return reply(res, record, errors.modelNotFound(route.model!, models.get(route.model!)?.replacement));
      return send(res, record, 200, modelObject(route.model!, spec));
    }

    if (!json.ok) return reply(res, record, errors.invalidJson());
    if (model === undefined) return reply(res, record, errors.badRequest('you must provide a model parameter'));
    const spec = served(model);
    if (!spec) return reply(res, record, errors.modelNotFound(model, models.get(model)?.replacement));
    const orgSpec = orgs.orgs.get(org);
    const limits = limitsFor(orgSpec, model, spec);
    setRateLimitHeaders(res, org, model, limits);
    if (orgSpec?.wallet === 'empty') return reply(res, record, errors.insufficientQuota());
    if (route.method === 'embeddings' || spec.embeddingDimensions !== undefined) {
      return embed(res, record, route, org, model, spec, limits, json.value);
    }

    // The Responses API: read as the chat completion it amounts to, answered in its own shape (responses-api.ts).
    const responsesBody = route.method === 'responses' && isObject(json.value) ? json.value : undefined;
    const parsed = parseChatRequest(responsesBody === undefined ? json.value : chatBodyOfResponses(responsesBody), spec);
    if (!parsed.ok) return reply(res, record, parsed.answer);
    const request = parsed.value;
    const input = promptTokens(request);
    record.promptTokens = input;
    const asked = input + (request.maxTokens ?? 0);
    if (asked > spec.contextWindow) {
      return reply(res, record, errors.badRequest(
        `This model's maximum context length is ${spec.contextWindow} tokens. However, you requested ${asked} tokens (${input} in the messages, ${request.maxTokens ?? 0} in the completion). Please reduce the length of the messages or completion.`,
        'messages',
        'context_length_exceeded',
      ));
    }

    const booked = bookedTokens(request, input, defaultMaxTokens);
    const admission = quota.admit(org, model, limits, booked);
    setRateLimitHeaders(res, org, model, limits);
    if (!admission.ok) {
      return reply(res, record, errors.rateLimited({
        kind: admission.kind,
        per: admission.per,
        model,
        organization: org,
        limit: admission.limit,
        used: admission.used,
        requested: admission.requested,
        wait: wordedWait(admission.retryAfterMs),
      }));
    }

    await sleeper.sleep(latencyMs);
    if (closing) return;
    const seq = (++answerSeq).toString(36).padStart(8, '0');
    const answer: Answer = {
      id: `chatcmpl-sim${seq}`,
      created: Math.floor(now() / 1000),
      model: spec.snapshot,
      choices: buildChoices(model, request, (i) => `call_sim${seq}${i}`),
      promptTokens: input,
      cachedTokens: spec.cachedTokens ?? 0,
      reasoningTokens: spec.reasoningTokens ?? 0,
    };
    if (settle === 'usage') {
      quota.settle(admission.booking, booked - input - completionTokens(answer.choices) - (spec.reasoningTokens ?? 0));
      setRateLimitHeaders(res, org, model, limits);
    }
    const cutAfter = fault?.kind === 'cut_stream' ? (fault.afterChunks ?? 1) : undefined;
    if (responsesBody !== undefined) {
      const whole = responseObject(answer, request, responsesBody);
      if (!request.stream) return send(res, record, 200, whole);
      stats.streamStarted(record);
      const outcome = await writePacedSse(res, responseEvents(whole, streamChunks), {
        delayMs: streamChunkDelayMs, eol: '\n', cutAfter, shuttingDown: () => closing, frame: (e) => e,
      });
      return stats.streamEnded(record, outcome);
    }
    if (!request.stream) {
      if (cutAfter === undefined && fault?.kind !== 'stream_error') return send(res, record, 200, completionObject(answer, request));
      stats.cutBeforeAnswer(record);
      res.destroy();
      return;
    }
    let events = streamEvents(answer, request, streamChunks);
    if (fault?.kind === 'stream_error') {
      // OpenAI reports a failure mid-stream as an event carrying an error object, then ends.
      const kept = Math.min(fault.afterChunks ?? 1, events.length - 1);
      events = [...events.slice(0, kept), JSON.stringify(errors.serverError().body)];
    }
    stats.streamStarted(record);
    const outcome = await writePacedSse(res, events, { delayMs: streamChunkDelayMs, eol: '\n', cutAfter, shuttingDown: () => closing });
    stats.streamEnded(record, outcome);
  }

  const listening = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://openai-sim');
    const path = decodePath(url.pathname);
    const work = isControlPath(path) ? serveControl(routes, req, res, path) : handleApi(req, res, path);
    work.catch((e: unknown) => {
      // A simulator bug must not look like an OpenAI answer: say so plainly.
      if (!res.headersSent && !res.destroyed) writeRaw(res, 500, 'text/plain', `openai-sim internal error: ${String(e)}`);
    });
  }, opts.port ?? 0, opts.host ?? '127.0.0.1');

  const sim: OpenAISimulator = {
    url: listening.url,
    port: listening.port,
    waitStyle,
    defaultMaxTokens,
    settle,
    setFaults: (faults) => faultBook.set(faults),
    addFault: (fault) => faultBook.add(fault),
    clearFaults: () => faultBook.clear(),
    faults: () => faultBook.list(),
    reset: () => {
      quota.reset();
      stats.reset();
      outside = {};
      faultBook.clear();
    },
    stats: () => ({ ...openaiStats(stats.snapshot()), quota: quota.snapshot(), outside: structuredClone(outside) }),
    setOrganizations: (next) => {
      orgs = resolveOrgs(next);
      orgOptions = structuredClone(next);
    },
    organizations: () => structuredClone(orgOptions),
    setWallet: (organization, wallet) => {
      const spec = orgOptions[organization];
      if (!spec) throw new Error(`openai-sim: no organization ${organization}`);
      sim.setOrganizations({ ...orgOptions, [organization]: { ...spec, wallet } });
    },
    setModels: (next) => {
      models = resolveModels(next);
    },
    models: () => Object.fromEntries(models),
    withdraw: (model) => withdrawn.withdraw(model),
    restore: (model) => withdrawn.restore(model),
    setWithdrawn: (ids) => withdrawn.set(ids),
    withdrawnModels: () => withdrawn.list(models),
    spend: ({ organization, model, requests = 1, tokensEach = 0 }) => {
      const spec = models.get(model);
      if (!orgs.orgs.has(organization)) throw new Error(`openai-sim: no organization ${organization}`);
      if (!spec) throw new Error(`openai-sim: no model ${model}`);
      if (!(Number.isInteger(requests) && requests >= 0 && Number.isInteger(tokensEach) && tokensEach >= 0)) {
        throw new Error('openai-sim: spend needs non-negative integer requests and tokensEach');
      }
      const limits = limitsFor(orgs.orgs.get(organization), model, spec);
      const tally = ((outside[organization] ??= {})[model] ??= { admitted: 0, refused: 0 });
      const result = { admitted: 0, refused: 0 };
      for (let i = 0; i < requests; i++) {
        const ok = quota.admit(organization, model, limits, tokensEach).ok;
        result[ok ? 'admitted' : 'refused'] += 1;
        tally[ok ? 'admitted' : 'refused'] += 1;
      }
      return result;
    },
    close: async () => {
      if (closing) return;
      closing = true;
      sleeper.wakeAll();
      await closeServer(listening.server);
    },
  };
  const routes = controlRoutes(sim);
  return sim;
}

function orgList(body: unknown): OrgOptions {
  if (!isObject(body)) throw new Error('expected {"<organization>": {"keys": [...], "limits"?: {...}, "wallet"?: "funded" | "empty"}}');
  resolveOrgs(body as OrgOptions);
  return body as OrgOptions;
}

/** The /__sim routes (sim-core/control.ts serves them). */
function controlRoutes(sim: OpenAISimulator): ControlRoutes {
  const setOrgs = (body: unknown): unknown => {
    sim.setOrganizations(orgList(body));
    return sim.organizations();
  };
  const setModels = (body: unknown): unknown => {
    sim.setModels(body as ModelOptions);
    return sim.models();
  };
  return {
    ...commonRoutes(sim, parseFaultSpec),
    'GET /organizations': () => sim.organizations(),
    'PUT /organizations': setOrgs,
    'POST /organizations': setOrgs,
    'PUT /wallet': (body) => {
      if (!isObject(body) || typeof body.organization !== 'string' || (body.wallet !== 'funded' && body.wallet !== 'empty')) {
        throw new Error('expected {"organization": "<id>", "wallet": "funded" | "empty"}');
      }
      sim.setWallet(body.organization, body.wallet);
      return sim.organizations();
    },
    'POST /spend': (body) => {
      if (!isObject(body) || typeof body.organization !== 'string' || typeof body.model !== 'string') {
        throw new Error('expected {"organization": "<id>", "model": "<id>", "requests"?: n, "tokensEach"?: n}');
      }
      return sim.spend(body as unknown as OutsideSpend);
    },
    'PUT /models': setModels,
    'POST /models': setModels,
  };
}
