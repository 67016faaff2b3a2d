// An offline stand-in for https://generativelanguage.googleapis.com (Gemini API v1beta), for the
// gateway's tests, benchmarks and local stack. It speaks what @google/genai sends (key in
// `x-goog-api-key` or `?key=`), enforces per-project/per-model quotas like Google, answers with
// Google's error shapes, and can inject faults. See README.md.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEV_KEYS, modelResource, resolveModels, type ModelOptions, type ModelSpec } from './config.ts';
import { controlRoutes, type SimControl, type SimulatorStats } from './control.ts';
import { isControlPath, serveControl } from '../sim-core/control.ts';
import * as errors from './errors.ts';
import { FaultBook, type ApiMethod, type Fault, type FaultSpec } from './faults.ts';
import { checkInputLimit, generate, inputTokens, parseCountTokens, parseGenerateRequest } from './generate.ts';
import { closeServer, decodePath, listen, parseJson, readBody, Sleeper, writeJson, writeRaw, writeSse } from '../sim-core/http.ts';
import { writePacedSse } from '../sim-core/streaming.ts';
import { arrivalDelays } from '../sim-core/arrival.ts';
import { embedAnswer, parseEmbed } from './embeddings.ts';
import { MINUTE_WINDOWS, QUOTA_IDS, QuotaTracker, minuteStart, violation, type MinuteWindow } from './quota.ts';
import { StatsRecorder, type RequestRecord } from '../sim-core/stats.ts';
import { googleStats } from './stats.ts';
import { ThoughtSigner } from './signatures.ts';
import { QuotaCauses, type QuotaCauseOptions } from './quota-causes.ts';
import { SERVED_TIER_HEADER, ServiceTiers, type ServiceTierOptions } from './service-tiers.ts';
import { WithdrawnModels } from '../sim-core/withdrawn.ts';

export type { ModelOptions, ModelSpec } from './config.ts';
export { DEFAULT_MODELS, DEV_KEYS } from './config.ts';
export type { SimControl, SimulatorStats } from './control.ts';
export type { ApiMethod, Fault, FaultKind, FaultSpec } from './faults.ts';
export { MINUTE_WINDOWS, QUOTA_IDS, nextPacificMidnight, pacificDay, type MinuteWindow } from './quota.ts';
export { seededRandom } from '../sim-core/arrival.ts';
export { arrivalsByMinute, type ArrivalWindow } from './windows.ts';
export type { Counter, RequestRecord, StreamCounts } from './stats.ts';
export type { StreamCut } from '../sim-core/streaming.ts';
export { countRequestTokens, tokensForText } from './tokens.ts';
export { SIM_THOUGHTS_TOKENS } from './generation-config.ts';
export { FUNCTION_ARG_STRING } from './tools.ts';
export { UNREADABLE_IMAGE_MESSAGE } from './images.ts';
export { CORRUPTED_SIGNATURE_MESSAGE, SKIP_SIGNATURE_VALUES, missingSignatureMessage, type ThoughtSignatureMode } from './signatures.ts';
export type { LimitZeroSpec, QuotaCauseOptions, QuotaCauseState, SpendCapSpec } from './quota-causes.ts';
export { SERVED_TIER_HEADER, type ServiceTier, type ServiceTierOptions, type ServiceTierState } from './service-tiers.ts';

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** api key -> Google Cloud project id. Default: DEV_KEYS. */
  keys?: Record<string, string>;
  /** Per-model overrides merged over DEFAULT_MODELS; new ids add models. */
  models?: ModelOptions;
  /** Clock in epoch ms, for quota windows and stats. Default Date.now. */
  now?: () => number;
  /**
   * How RPM/TPM are counted: "fixed" (default) calendar minutes at :00, or "sliding" 60 s windows
   * over arrival times. Google does not publish which; the gateway must hold under both.
   */
  window?: MinuteWindow;
  /**
   * Google's clock minus ours, in ms: windows, the Pacific day and stats use `now() + clockOffsetMs`.
   * Default 0. +2000 means Google's minute starts 2 s before ours.
   */
  clockOffsetMs?: number;
  /** Network delay before a request arrives (and is counted). Default 0. */
  arrivalDelayMs?: number;
  /** Uniform ± jitter around arrivalDelayMs. Default 0. */
  arrivalJitterMs?: number;
  /** [0, 1) source for the jitter (tests); default Math.random, or seeded by `seed`. */
  random?: () => number;
  /** Seed for a deterministic jitter when `random` is not given. */
  seed?: number;
  /** Fixed delay before each successful generateContent / stream answer. Default 0. */
  latencyMs?: number;
  /** How many SSE chunks a streamed answer is split into. Default 3. */
  streamChunks?: number;
  /**
   * Pause between SSE chunks of a streamed answer (none before the first). Default 0: all at once.
   * With a pause, a caller hanging up mid-stream is seen and recorded (`stats().streams`).
   */
  streamChunkDelayMs?: number;
  /** Fault rules active from the start. */
  faults?: FaultSpec[];
  /** Truncate RetryInfo.retryDelay to whole seconds ("10s"), as Google sometimes does. Default false. */
  retryDelayWholeSeconds?: boolean;
  /** `limit: 0` per (project, model) and spend caps per project, from the start (quota-causes.ts). */
  quotaCauses?: QuotaCauseOptions;
  /** Flex shedding and the priority limit (service-tiers.ts). Default: nothing shed, no priority limit. */
  serviceTiers?: ServiceTierOptions;
}

export interface CountingSettings {
  window: MinuteWindow;
  clockOffsetMs: number;
  arrivalDelayMs: number;
  arrivalJitterMs: number;
}

export interface GoogleSimulator extends SimControl {
  /** e.g. http://127.0.0.1:54329 — pass as httpOptions.baseUrl to @google/genai. */
  readonly url: string;
  readonly port: number;
  /** How this simulator counts (its options, resolved). */
  counting(): CountingSettings;
  /** The pause between SSE chunks of a streamed answer (option streamChunkDelayMs). */
  readonly streamChunkDelayMs: number;
  /** Stops listening, ends every open request (hanging ones included) and frees the port. */
  close(): Promise<void>;
}

interface Route {
  method: ApiMethod;
  model: string | undefined;
}

/** Google's request size limit. */
const MAX_BODY_BYTES = 20 * 1024 * 1024;

const API_PATH = /^\/(?:v1beta|v1)\/models(?:\/([^/:]+)(?::(generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents))?)?$/;

function matchRoute(httpMethod: string | undefined, path: string): Route | undefined {
  const m = API_PATH.exec(path);
  if (!m) return undefined;
  const [, model, verb] = m;
  if (verb) return httpMethod === 'POST' ? { method: verb as ApiMethod, model } : undefined;
  if (httpMethod !== 'GET') return undefined;
  return model ? { method: 'models.get', model } : { method: 'models.list', model: undefined };
}

export async function startGoogleSimulator(opts: SimulatorOptions = {}): Promise<GoogleSimulator> {
  const baseNow = opts.now ?? Date.now;
  const clockOffsetMs = opts.clockOffsetMs ?? 0;
  if (!Number.isFinite(clockOffsetMs)) throw new Error('google-sim: clockOffsetMs must be a finite number');
  const window = opts.window ?? 'fixed';
  if (!MINUTE_WINDOWS.includes(window)) throw new Error(`google-sim: window must be one of ${MINUTE_WINDOWS.join(', ')}`);
  /** The simulator's ("Google's") clock. */
  const now = clockOffsetMs === 0 ? baseNow : (): number => baseNow() + clockOffsetMs;
  const nextArrivalDelay = arrivalDelays({
    delayMs: opts.arrivalDelayMs,
    jitterMs: opts.arrivalJitterMs,
    random: opts.random,
    seed: opts.seed,
  });
  const latencyMs = opts.latencyMs ?? 0;
  const streamChunks = Math.max(1, opts.streamChunks ?? 3);
  const streamChunkDelayMs = opts.streamChunkDelayMs ?? 0;
  if (!(Number.isFinite(streamChunkDelayMs) && streamChunkDelayMs >= 0)) {
    throw new Error('google-sim: streamChunkDelayMs must be a non-negative number');
  }
  let keys = new Map(Object.entries(opts.keys ?? DEV_KEYS));
  let models = resolveModels(opts.models);
  const quota = new QuotaTracker(now, window);
  const faultBook = new FaultBook();
  const withdrawn = new WithdrawnModels();
  const stats = new StatsRecorder<ApiMethod>();
  const signer = new ThoughtSigner();
  const causes = new QuotaCauses(now, opts.quotaCauses);
  const tiers = new ServiceTiers(now, opts.serviceTiers);
  faultBook.set(opts.faults ?? []);

  let closing = false;
  let responseSeq = 0;
  /** Latency and arrival sleeps, which close() ends at once. */
  const sleeper = new Sleeper();
  const sleep = (ms: number): Promise<void> => sleeper.sleep(ms);
  // holdAnswers(): admitted calls wait here, after their latency, until released (or close()).
  let hold: { released: Promise<void>; release: () => void } | undefined;
  const answerTime = async (): Promise<void> => {
    await sleep(latencyMs);
    if (hold !== undefined) await hold.released;
  };

  function send(res: ServerResponse, record: RequestRecord<ApiMethod>, status: number, body: unknown): void {
    stats.answered(record, status);
    writeJson(res, status, body);
  }

  function reply(res: ServerResponse, record: RequestRecord<ApiMethod>, answer: errors.SimAnswer): void {
    send(res, record, answer.status, answer.body);
  }

  /** The 429 for a fault of kind rate_limited. */
  function injectedRateLimit(fault: Fault, model: string | undefined): errors.SimAnswer {
    const quotaId = fault.quotaId ?? QUOTA_IDS.rpm;
    const spec = model === undefined ? undefined : models.get(model);
    const limit = quotaId === QUOTA_IDS.tpm ? spec?.tpm : quotaId === QUOTA_IDS.rpd ? spec?.rpd : spec?.rpm;
    const t = now();
    const delay = fault.retryDelay === undefined ? errors.formatDuration(minuteStart(t) + 60_000 - t) : fault.retryDelay;
    return errors.quotaExceeded(
      [violation(quotaId, model ?? 'unknown', fault.quotaValue ?? String(limit ?? 0))],
      delay,
      opts.retryDelayWholeSeconds,
    );
  }

  /** Answers for a matched fault; returns false when the request should carry on normally. */
  function applyFault(fault: Fault, route: Route, res: ServerResponse, record: RequestRecord<ApiMethod>): boolean {
    record.faultId = fault.id;
    switch (fault.kind) {
      case 'http500':
        reply(res, record, errors.internal());
        return true;
      case 'http503':
        reply(res, record, errors.unavailable());
        return true;
      case 'invalid_key':
        reply(res, record, errors.apiKeyInvalid());
        return true;
      case 'bad_request':
        reply(res, record, errors.invalidArgument(fault.message ?? 'Request contains an invalid argument.'));
        return true;
      case 'model_not_found':
        // A model this key does not see (or Google's answer to a misrouted call): the rest still do.
        reply(res, record, fault.message === undefined
          ? errors.modelNotFound(route.model ?? 'unknown', route.method === 'models.get' ? 'get' : route.method,
            route.model === undefined ? undefined : models.get(route.model)?.replacement)
          : errors.answer(404, 'NOT_FOUND', fault.message));
        return true;
      case 'rate_limited':
        reply(res, record, injectedRateLimit(fault, route.model));
        return true;
      case 'malformed':
        stats.answered(record, 200);
        if (route.method === 'streamGenerateContent') {
          writeSse(res, ['{"candidates": [{"content": {"parts": [{"text": "sim'], '\r\n');
        } else {
          writeRaw(res, 200, 'application/json; charset=UTF-8', '{\n  "candidates": [\n    {\n      "content": {\n        "parts": [{"text": "sim');
        }
        return true;
      case 'hang':
        // Never answered: the client's timeout or close() ends it.
        return true;
      case 'cut_stream':
        // The request runs the normal path (checks, quota: Google had accepted it); the cut comes
        // when the answer is written.
        return false;
      case 'day_exhausted':
        // Marks the quota state; the normal path then refuses with the per-day quotaId.
        if (record.group !== undefined && route.model !== undefined) quota.exhaustDay(record.group, route.model);
        return false;
    }
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    // The request is still on the network: nothing is recorded or counted before it arrives.
    await sleep(nextArrivalDelay());
    if (closing) return;
    const route = matchRoute(req.method, path);
    const headerKey = req.headers['x-goog-api-key'];
    const apiKey = (Array.isArray(headerKey) ? headerKey[0] : headerKey) ?? url.searchParams.get('key') ?? undefined;
    const project = apiKey === undefined ? undefined : keys.get(apiKey);
    const record = stats.received({ at: now(), method: route?.method ?? 'unknown', model: route?.model, apiKey, group: project });
    res.on('close', () => {
      if (record.status === undefined) stats.abandoned(record);
    });

    const body = await readBody(req, MAX_BODY_BYTES);
    stats.bodyReceived(record, body.text);
    if (!route) {
      stats.answered(record, 404);
      return writeRaw(res, 404, 'text/html; charset=UTF-8', errors.routeNotFoundPage(path));
    }

    const fault = faultBook.take({ method: route.method, model: route.model, apiKey, project });
    if (fault && applyFault(fault, route, res, record)) return;

    if (project === undefined) return reply(res, record, errors.apiKeyInvalid());
    if (body.tooLarge) return reply(res, record, errors.payloadTooLarge(MAX_BODY_BYTES));

    if (route.method === 'models.list') return listModels(res, record, url);
    const model = route.model!;
    // A withdrawn model is answered as one Google never had (withdrawn.ts).
    const spec = withdrawn.isWithdrawn(model, models.get(model)) ? undefined : models.get(model);
    if (route.method === 'models.get') {
      if (!spec) return reply(res, record, errors.modelNotFound(model, 'get', models.get(model)?.replacement));
      return send(res, record, 200, modelResource(model, spec));
    }

    const json = parseJson(body.text);
    if (!json.ok) return reply(res, record, errors.invalidJson('Unexpected token.'));
    if (!spec) return reply(res, record, errors.modelNotFound(model, route.method, models.get(model)?.replacement));

    if (route.method === 'countTokens') {
      const counted = parseCountTokens(json.value);
      if (!counted.ok) return reply(res, record, counted.answer);
      return send(res, record, 200, { totalTokens: counted.value });
    }

    const refusedForCause = causes.refuse(project, model);
    if (refusedForCause) return reply(res, record, refusedForCause);

    if (route.method === 'embedContent' || route.method === 'batchEmbedContents' || spec.embeddingDimensions !== undefined) {
      if (spec.embeddingDimensions === undefined || !(route.method === 'embedContent' || route.method === 'batchEmbedContents')) {
        return reply(res, record, errors.modelNotFound(model, route.method, undefined));
      }
      const batch = route.method === 'batchEmbedContents';
      const items = parseEmbed(json.value, model, spec.embeddingDimensions, batch);
      if (!items.ok) return reply(res, record, items.answer);
      record.promptTokens = items.value.reduce((n, i) => n + i.tokens, 0);
      // Each request of a batch is a request of the quota (embeddings.ts).
      for (const one of items.value) {
        const admitted = quota.admit(project, model, spec, one.tokens);
        if (!admitted.ok) {
          const delay = errors.formatDuration(admitted.retryAfterMs);
          return reply(res, record, errors.quotaExceeded(admitted.violations, delay, opts.retryDelayWholeSeconds));
        }
      }
      await answerTime();
      if (closing) return;
      return send(res, record, 200, embedAnswer(model, items.value, batch));
    }

    const parsed = parseGenerateRequest(json.value, model, spec);
    if (!parsed.ok) return reply(res, record, parsed.answer);
    const unsigned = signer.check(parsed.value.contents, model, spec);
    if (unsigned) return reply(res, record, unsigned);
    const tokens = inputTokens(parsed.value);
    record.promptTokens = tokens;
    const tooLong = checkInputLimit(tokens, spec);
    if (tooLong) return reply(res, record, tooLong);

    const tier = tiers.decide(project, (json.value as Record<string, unknown>).serviceTier);
    if (!tier.ok) return reply(res, record, tier.answer);

    const admission = quota.admit(project, model, spec, tokens);
    if (!admission.ok) {
      const delay = errors.formatDuration(admission.retryAfterMs);
      return reply(res, record, errors.quotaExceeded(admission.violations, delay, opts.retryDelayWholeSeconds));
    }

    res.setHeader(SERVED_TIER_HEADER, tier.served);
    tiers.answered(tier.served);
    await answerTime();
    if (closing) return;
    const responseId = `sim-${(++responseSeq).toString(36).padStart(8, '0')}`;
    const stream = route.method === 'streamGenerateContent';
    const out = generate(model, spec, parsed.value, tokens, responseId, stream ? streamChunks : 1);
    signer.sign(out.chunks, model, spec);
    const cutAfter = fault?.kind === 'cut_stream' ? (fault.afterChunks ?? 1) : undefined;
    if (!stream) {
      if (cutAfter === undefined) return send(res, record, 200, out.chunks[0]);
      stats.cutBeforeAnswer(record);
      res.destroy();
      return;
    }
    stats.streamStarted(record);
    const outcome = await writePacedSse(
      res,
      out.chunks.map((c) => JSON.stringify(c)),
      { delayMs: streamChunkDelayMs, eol: '\r\n', cutAfter, shuttingDown: () => closing },
    );
    stats.streamEnded(record, outcome);
  }

  function listModels(res: ServerResponse, record: RequestRecord<ApiMethod>, url: URL): void {
    // Paged like Google: pageSize (default 50, max 1000) and an opaque pageToken.
    const all = [...models.entries()]
      .filter(([id, spec]) => !withdrawn.isWithdrawn(id, spec))
      .map(([id, spec]) => modelResource(id, spec));
    const size = Math.min(1000, Math.max(1, Number(url.searchParams.get('pageSize')) || 50));
    const token = url.searchParams.get('pageToken');
    const start = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) || 0 : 0;
    const page: Record<string, unknown> = { models: all.slice(start, start + size) };
    if (start + size < all.length) page.nextPageToken = Buffer.from(String(start + size)).toString('base64url');
    send(res, record, 200, page);
  }

  const listening = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://google-sim');
    const path = decodePath(url.pathname);
    const work = isControlPath(path) ? serveControl(routes, req, res, path) : handleApi(req, res, path, url);
    work.catch((e: unknown) => {
      // A simulator bug must not look like a Google answer: say so plainly.
      if (!res.headersSent && !res.destroyed) writeRaw(res, 500, 'text/plain', `google-sim internal error: ${String(e)}`);
    });
  }, opts.port ?? 0, opts.host ?? '127.0.0.1');

  const sim: GoogleSimulator = {
    url: listening.url,
    port: listening.port,
    streamChunkDelayMs,
    counting: () => ({
      window,
      clockOffsetMs,
      arrivalDelayMs: opts.arrivalDelayMs ?? 0,
      arrivalJitterMs: opts.arrivalJitterMs ?? 0,
    }),
    setFaults: (faults) => faultBook.set(faults),
    addFault: (fault) => faultBook.add(fault),
    clearFaults: () => faultBook.clear(),
    faults: () => faultBook.list(),
    reset: () => {
      quota.reset();
      stats.reset();
      causes.reset();
      tiers.reset();
      faultBook.clear();
    },
    stats: () => ({ ...googleStats(stats.snapshot()), quota: quota.snapshot(), calls: causes.state().calls }),
    setQuotaCauses: (next) => causes.set(next),
    quotaCauses: () => causes.state(),
    setServiceTiers: (next) => tiers.set(next),
    serviceTiers: () => tiers.state(),
    setKeys: (next) => {
      keys = new Map(Object.entries(next));
    },
    keys: () => Object.fromEntries(keys),
    setModels: (next) => {
      models = resolveModels(next);
    },
    models: () => Object.fromEntries(models),
    withdraw: (model) => withdrawn.withdraw(model),
    restore: (model) => withdrawn.restore(model),
    setWithdrawn: (ids) => withdrawn.set(ids),
    withdrawnModels: () => withdrawn.list(models),
    holdAnswers: () => {
      if (hold === undefined) {
        let resolve = (): void => {};
        const released = new Promise<void>((r) => (resolve = r));
        hold = {
          released,
          release: () => {
            hold = undefined;
            resolve();
          },
        };
      }
      return hold.release;
    },
    close: async () => {
      if (closing) return;
      closing = true;
      sleeper.wakeAll();
      hold?.release();
      await closeServer(listening.server);
    },
  };
  const routes = controlRoutes(sim);
  return sim;
}
