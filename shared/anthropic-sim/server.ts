// An offline stand-in for https://api.anthropic.com (Messages, token counting, Models), for the
// gateway's tests, benchmarks and local stack. It speaks what `@anthropic-ai/sdk` sends (key in
// `x-api-key`, `anthropic-version`), counts per organization and pool of models in three buckets
// refilling continuously (RPM, ITPM, OTPM), answers with anthropic-ratelimit-* headers and
// Anthropic's error bodies worded as drawn for the run, keeps a prompt cache per organization, and
// can inject faults. See README.md.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { arrivalDelays } from '../sim-core/arrival.ts';
import { commonRoutes, isControlPath, serveControl, type ControlRoutes } from '../sim-core/control.ts';
import { closeServer, decodePath, listen, parseJson, readBody, Sleeper, writeJson, writeRaw } from '../sim-core/http.ts';
import { isObject } from '../sim-core/json.ts';
import { StatsRecorder, type RequestRecord, type SimStats } from '../sim-core/stats.ts';
import { writePacedSse } from '../sim-core/streaming.ts';
import { WithdrawnModels } from '../sim-core/withdrawn.ts';
import { BucketTracker, type BucketSnapshot } from './buckets.ts';
import { DEV_ORGS, limitsFor, modelObject, resolveModels, resolveOrgs, WALLETS, type ModelOptions, type ModelSpec, type OrgOptions, type Wallet } from './config.ts';
import * as errors from './errors.ts';
import { FaultBook, parseFaultSpec, type ApiMethod, type Fault, type FaultSpec } from './faults.ts';
import { buildAnswer, countInput, messageObject, parseMessagesRequest, streamEvents, type Answer } from './messages.ts';

export { DEFAULT_MODELS, DEV_ORGS, WALLETS, type ModelOptions, type ModelSpec, type OrgOptions, type OrgSpec, type PoolLimits, type Wallet } from './config.ts';
export type { ApiMethod, Fault, FaultKind, FaultSpec } from './faults.ts';
export { countInput, parseMessagesRequest } from './messages.ts';

/** Anthropic's request size limit for the Messages API. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const RECEIVED_LIMIT = 200;

export interface AnthropicSimulatorOptions {
  port?: number;
  host?: string;
  organizations?: OrgOptions;
  models?: ModelOptions;
  now?: () => number;
  /** Each bucket's size as a share of its minute's limit, unless a pool names its own. Default 1. */
  capacityRatio?: number;
  arrivalDelayMs?: number;
  arrivalJitterMs?: number;
  random?: () => number;
  seed?: number;
  latencyMs?: number;
  /** Pieces per content block in a stream. Default 3. */
  streamChunks?: number;
  streamChunkDelayMs?: number;
  faults?: FaultSpec[];
}

/** A body the simulator received, as it received it (what the gateway sent). */
export interface ReceivedBody {
  at: number;
  method: ApiMethod | 'unknown';
  apiKey: string | undefined;
  /** Where the key came: x-api-key (Anthropic's docs) or authorization (Bearer, as the SDK 1.x sends it). */
  credentialHeader: 'x-api-key' | 'authorization' | undefined;
  anthropicVersion: string | undefined;
  body: unknown;
}

export interface AnthropicSimulatorStats extends Omit<SimStats<ApiMethod>, 'byGroup'> {
  byOrganization: SimStats['byGroup'];
  /** Bucket levels per organization, per pool, now. */
  buckets: Record<string, Record<string, BucketSnapshot>>;
  /** The last bodies received (up to 200), oldest first. */
  received: ReceivedBody[];
}

export interface AnthropicSimulator {
  /** e.g. http://127.0.0.1:54331; the SDK's baseURL is this url (it adds /v1). */
  readonly url: string;
  readonly port: number;
  readonly capacityRatio: number;
  setFaults(faults: FaultSpec[]): Fault[];
  addFault(fault: FaultSpec): Fault;
  clearFaults(): void;
  faults(): Fault[];
  /** Clears buckets, caches, stats and faults; keeps organizations and models. */
  reset(): void;
  stats(): AnthropicSimulatorStats;
  setOrganizations(orgs: OrgOptions): void;
  organizations(): OrgOptions;
  setWallet(organization: string, wallet: Wallet): void;
  setModels(models: ModelOptions): void;
  models(): Record<string, ModelSpec>;
  withdraw(model: string): void;
  restore(model: string): void;
  setWithdrawn(models: readonly string[]): void;
  withdrawnModels(): string[];
  close(): Promise<void>;
}

interface Route {
  method: ApiMethod;
  model: string | undefined;
}

function matchRoute(httpMethod: string | undefined, path: string): Route | undefined {
  const p = path.replace(/\/+$/, '');
  if (p === '/v1/messages') return httpMethod === 'POST' ? { method: 'messages', model: undefined } : undefined;
  if (p === '/v1/messages/count_tokens') return httpMethod === 'POST' ? { method: 'count_tokens', model: undefined } : undefined;
  if (p === '/v1/models') return httpMethod === 'GET' ? { method: 'models.list', model: undefined } : undefined;
  const m = /^\/v1\/models\/(.+)$/.exec(p);
  if (m && httpMethod === 'GET') return { method: 'models.get', model: m[1] };
  return undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headers[name];
  return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : undefined;
}

function nonNegative(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!(Number.isFinite(value) && value >= 0)) throw new Error(`anthropic-sim: ${name} must be a non-negative number`);
  return value;
}

export async function startAnthropicSimulator(opts: AnthropicSimulatorOptions = {}): Promise<AnthropicSimulator> {
  const now = opts.now ?? Date.now;
  const capacityRatio = opts.capacityRatio ?? 1;
  if (!(capacityRatio > 0 && capacityRatio <= 1)) throw new Error('anthropic-sim: capacityRatio must be in (0, 1]');
  const latencyMs = nonNegative('latencyMs', opts.latencyMs, 0);
  const streamChunks = Math.max(1, opts.streamChunks ?? 3);
  const streamChunkDelayMs = nonNegative('streamChunkDelayMs', opts.streamChunkDelayMs, 0);
  const nextArrivalDelay = arrivalDelays({ delayMs: opts.arrivalDelayMs, jitterMs: opts.arrivalJitterMs, random: opts.random, seed: opts.seed });

  let orgOptions: OrgOptions = structuredClone(opts.organizations ?? DEV_ORGS);
  let orgs = resolveOrgs(orgOptions);
  let models = resolveModels(opts.models);
  const buckets = new BucketTracker(now);
  const faultBook = new FaultBook();
  faultBook.set(opts.faults ?? []);
  const withdrawn = new WithdrawnModels();
  const stats = new StatsRecorder<ApiMethod>();
  let received: ReceivedBody[] = [];
  /** Per organization: prompt-cache prefix → expiry (epoch ms). */
  let caches = new Map<string, Map<string, number>>();
  const sleeper = new Sleeper();
  let closing = false;
  let seq = 0;

  function send(res: ServerResponse, record: RequestRecord<ApiMethod>, status: number, body: unknown): void {
    stats.answered(record, status);
    writeJson(res, status, body);
  }

  function reply(res: ServerResponse, record: RequestRecord<ApiMethod>, a: errors.SimAnswer): void {
    if (!res.headersSent) for (const [k, v] of Object.entries(a.headers ?? {})) res.setHeader(k, v);
    send(res, record, a.status, a.body);
  }

  function setLimitHeaders(res: ServerResponse, org: string, spec: ModelSpec): void {
    if (res.headersSent) return;
    const { limits, sizes } = limitsFor(orgs.orgs.get(org), spec, capacityRatio);
    for (const [k, v] of Object.entries(buckets.headers(org, spec.pool, limits, sizes))) res.setHeader(k, v);
  }

  function served(id: string): ModelSpec | undefined {
    const spec = models.get(id);
    return spec && !withdrawn.isWithdrawn(id, spec) ? spec : undefined;
  }

  /** Answers a fault; false when the request carries on (cut_stream, stream_error act later). */
  function applyFault(fault: Fault, model: string | undefined, res: ServerResponse, record: RequestRecord<ApiMethod>): boolean {
    record.faultId = fault.id;
    switch (fault.kind) {
      case 'overloaded':
        reply(res, record, errors.overloaded());
        return true;
      case 'api_error':
        reply(res, record, errors.apiError());
        return true;
      case 'rate_limited': {
        const spec = model === undefined ? undefined : served(model);
        const org = record.group ?? 'org-unknown';
        if (spec) setLimitHeaders(res, org, spec);
        const limit = fault.limit ?? 'requests';
        const l = spec ? limitsFor(orgs.orgs.get(org), spec, capacityRatio).limits : { rpm: 0, itpm: 0, otpm: 0 };
        const value = limit === 'requests' ? l.rpm : limit === 'input_tokens' ? l.itpm : l.otpm;
        if (!res.headersSent) res.setHeader(`anthropic-ratelimit-${limit.replace('_', '-')}-remaining`, '0');
        reply(res, record, errors.rateLimited(org, limit, value, fault.waitMs ?? 1000));
        return true;
      }
      case 'acceleration':
        reply(res, record, errors.acceleration(fault.waitMs ?? 1000));
        return true;
      case 'invalid_key':
        reply(res, record, errors.authentication(false));
        return true;
      case 'permission':
        reply(res, record, errors.permission());
        return true;
      case 'no_money':
        reply(res, record, errors.noMoney(fault.wallet ?? 'credit'));
        return true;
      case 'bad_request':
        reply(res, record, errors.invalidRequest(fault.message ?? 'Invalid request.'));
        return true;
      case 'model_not_found':
        reply(res, record, errors.modelNotFound(model ?? 'unknown'));
        return true;
      case 'hang':
        return true;
      case 'cut_stream':
      case 'stream_error':
        return false;
    }
  }

  /**
   * Splits the input by the organization's prompt cache: the longest breakpoint prefix seen within its
   * lifetime is read (refreshing it); each later breakpoint's segment is written at its own lifetime.
   */
  function cacheUsage(org: string, count: ReturnType<typeof countInput>): Pick<Answer['usage'], 'input_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens' | 'cache_creation'> {
    const cache = caches.get(org) ?? new Map<string, number>();
    caches.set(org, cache);
    const t = now();
    const lifetime = (ttl: '5m' | '1h') => (ttl === '1h' ? 3_600_000 : 300_000);
    let hit = -1;
    count.breakpoints.forEach((bp, i) => {
      if ((cache.get(bp.key) ?? 0) > t) hit = i;
    });
    const read = hit < 0 ? 0 : count.breakpoints[hit]!.tokens;
    const written = { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 };
    let covered = read;
    count.breakpoints.forEach((bp, i) => {
      cache.set(bp.key, Math.max(cache.get(bp.key) ?? 0, t + lifetime(bp.ttl)));
      if (i <= hit) return;
      written[bp.ttl === '1h' ? 'ephemeral_1h_input_tokens' : 'ephemeral_5m_input_tokens'] += bp.tokens - covered;
      covered = bp.tokens;
    });
    return {
      input_tokens: count.total - covered,
      cache_creation_input_tokens: covered - read,
      cache_read_input_tokens: read,
      cache_creation: written,
    };
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    await sleeper.sleep(nextArrivalDelay());
    if (closing) return;
    const route = matchRoute(req.method, path);
    // Anthropic's docs name x-api-key; its TypeScript SDK 1.x sends the key as Authorization: Bearer.
    const bearer = /^Bearer\s+(.+)$/i.exec(header(req, 'authorization') ?? '')?.[1]?.trim();
    const apiKey = header(req, 'x-api-key') ?? bearer;
    const credentialHeader = header(req, 'x-api-key') !== undefined ? 'x-api-key' : bearer !== undefined ? 'authorization' : undefined;
    const version = header(req, 'anthropic-version');
    const org = apiKey === undefined ? undefined : orgs.keyOrg.get(apiKey);
    const body = await readBody(req, MAX_BODY_BYTES);
    const json = parseJson(body.text);
    const fields = json.ok && isObject(json.value) ? json.value : {};
    const model = route?.model ?? (typeof fields.model === 'string' ? fields.model : undefined);
    const record = stats.received({ at: now(), method: route?.method ?? 'unknown', model, apiKey, group: org });
    if (req.method === 'POST') {
      received.push({ at: record.at, method: record.method, apiKey, credentialHeader, anthropicVersion: version, body: json.ok ? json.value : body.text });
      if (received.length > RECEIVED_LIMIT) received.shift();
    }
    res.on('close', () => {
      if (record.status === undefined) stats.abandoned(record);
    });
    res.setHeader('request-id', errors.requestId());
    if (org !== undefined) res.setHeader('anthropic-organization-id', org);

    if (!route) return reply(res, record, errors.routeNotFound(req.method, path));
    const fault = faultBook.take({ method: route.method, model, apiKey, organization: org });
    if (fault && applyFault(fault, model, res, record)) return;

    if (apiKey === undefined || org === undefined) return reply(res, record, errors.authentication(apiKey === undefined));
    if (version === undefined) return reply(res, record, errors.versionMissing());
    if (body.tooLarge) return reply(res, record, errors.requestTooLarge());

    if (route.method === 'models.list') {
      const all = [...models.entries()]
        .filter(([id, spec]) => spec.snapshot === id && !withdrawn.isWithdrawn(id, spec))
        .sort(([, a], [, b]) => b.createdAt.localeCompare(a.createdAt))
        .map(([id, spec]) => modelObject(id, spec));
      const limit = Math.min(1000, Math.max(1, Number(query.get('limit') ?? 20) || 20));
      const after = query.get('after_id');
      const start = after ? all.findIndex((m) => m.id === after) + 1 : 0;
      const data = all.slice(start, start + limit);
      return send(res, record, 200, { data, has_more: start + limit < all.length, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null });
    }
    if (route.method === 'models.get') {
      const spec = served(route.model!);
      if (!spec) return reply(res, record, errors.modelNotFound(route.model!));
      return send(res, record, 200, modelObject(route.model!, spec));
    }

    if (!json.ok) return reply(res, record, errors.invalidRequest('There was an error parsing the body of your request'));
    if (model === undefined) return reply(res, record, errors.invalidRequest('model: Field required'));
    const spec = served(model);
    if (!spec) return reply(res, record, errors.modelNotFound(model));
    const counting = route.method === 'count_tokens';
    // API version 2026-10-21 removed the sampling parameters: sending one is a 400 there (2023-06-01 keeps them).
    if (version >= '2026-10-21') {
      const removed = ['temperature', 'top_p', 'top_k'].find((f) => fields[f] !== undefined);
      if (removed) return reply(res, record, errors.invalidRequest(`${removed}: Extra inputs are not permitted`));
    }
    const parsed = parseMessagesRequest(json.value, spec, counting);
    if (!parsed.ok) return reply(res, record, parsed.answer);
    const request = parsed.value;
    const count = countInput(request);
    record.promptTokens = count.total;
    // Counting is free and spends no Messages limits.
    if (counting) return send(res, record, 200, { input_tokens: count.total });

    setLimitHeaders(res, org, spec);
    const wallet = orgs.orgs.get(org)?.wallet ?? 'funded';
    if (wallet !== 'funded') return reply(res, record, errors.noMoney(wallet));
    if (count.total + request.maxTokens > spec.contextWindow) {
      return reply(res, record, errors.invalidRequest(`prompt is too long: ${count.total} tokens > ${spec.contextWindow - request.maxTokens} maximum`));
    }

    const usage = cacheUsage(org, count);
    const { limits, sizes } = limitsFor(orgs.orgs.get(org), spec, capacityRatio);
    // Cache reads do not count toward ITPM on current models; writes and the rest do.
    const admission = buckets.admit(org, spec.pool, limits, sizes, { input: usage.input_tokens + usage.cache_creation_input_tokens, output: request.maxTokens });
    if (!admission.ok) {
      setLimitHeaders(res, org, spec);
      return reply(res, record, errors.rateLimited(org, admission.limit, admission.limitValue, admission.retryAfterMs));
    }

    await sleeper.sleep(latencyMs);
    if (closing) return;
    const n = (++seq).toString(36).padStart(6, '0');
    const answer = buildAnswer(request, `msg_sim${n}${randomBytes(4).toString('hex')}`, spec.snapshot, `toolu_sim${n}`);
    Object.assign(answer.usage, usage);
    buckets.settle(admission.booking, answer.usage.output_tokens);
    setLimitHeaders(res, org, spec);
    const cutAfter = fault?.kind === 'cut_stream' ? (fault.afterChunks ?? 1) : undefined;
    if (!request.stream) {
      if (cutAfter === undefined && fault?.kind !== 'stream_error') return send(res, record, 200, messageObject(answer));
      stats.cutBeforeAnswer(record);
      res.destroy();
      return;
    }
    let events = streamEvents(answer, streamChunks);
    if (fault?.kind === 'stream_error') {
      // After the 200, Anthropic reports a failure as an `error` event, then ends the stream.
      const kept = Math.min(fault.afterChunks ?? 1, events.length - 1);
      const type = fault.errorType ?? 'overloaded_error';
      const message = type === 'overloaded_error' ? String((errors.overloaded().body.error as { message: string }).message) : 'Internal server error';
      events = [...events.slice(0, kept), ['error', JSON.stringify({ type: 'error', error: { type, message } })]];
    }
    stats.streamStarted(record);
    const outcome = await writePacedSse(res, events.map(([name, data]) => `${name}\n${data}`), {
      delayMs: streamChunkDelayMs,
      eol: '\n',
      frame: (e) => {
        const cut = e.indexOf('\n');
        return `event: ${e.slice(0, cut)}\ndata: ${e.slice(cut + 1)}\n\n`;
      },
      cutAfter,
      shuttingDown: () => closing,
    });
    stats.streamEnded(record, outcome);
  }

  const listening = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://anthropic-sim');
    const path = decodePath(url.pathname);
    const work = isControlPath(path) ? serveControl(routes, req, res, path) : handleApi(req, res, path, url.searchParams);
    work.catch((e: unknown) => {
      if (!res.headersSent && !res.destroyed) writeRaw(res, 500, 'text/plain', `anthropic-sim internal error: ${String(e)}`);
    });
  }, opts.port ?? 0, opts.host ?? '127.0.0.1');

  const sim: AnthropicSimulator = {
    url: listening.url,
    port: listening.port,
    capacityRatio,
    setFaults: (f) => faultBook.set(f),
    addFault: (f) => faultBook.add(f),
    clearFaults: () => faultBook.clear(),
    faults: () => faultBook.list(),
    reset: () => {
      buckets.reset();
      stats.reset();
      received = [];
      caches = new Map();
      faultBook.clear();
    },
    stats: () => {
      const { byGroup, ...rest } = stats.snapshot();
      return { ...rest, byOrganization: byGroup, buckets: buckets.snapshot(), received: structuredClone(received) };
    },
    setOrganizations: (next) => {
      orgs = resolveOrgs(next);
      orgOptions = structuredClone(next);
    },
    organizations: () => structuredClone(orgOptions),
    setWallet: (organization, wallet) => {
      const spec = orgOptions[organization];
      if (!spec) throw new Error(`anthropic-sim: no organization ${organization}`);
      sim.setOrganizations({ ...orgOptions, [organization]: { ...spec, wallet } });
    },
    setModels: (next) => {
      models = resolveModels(next);
    },
    models: () => Object.fromEntries(models),
    withdraw: (m) => withdrawn.withdraw(m),
    restore: (m) => withdrawn.restore(m),
    setWithdrawn: (ids) => withdrawn.set(ids),
    withdrawnModels: () => withdrawn.list(models),
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

function controlRoutes(sim: AnthropicSimulator): ControlRoutes {
  const setOrgs = (body: unknown): unknown => {
    if (!isObject(body)) throw new Error('expected {"<organization>": {"keys": [...], "limits"?: {...}, "wallet"?: ...}}');
    sim.setOrganizations(body as OrgOptions);
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
      if (!isObject(body) || typeof body.organization !== 'string' || !WALLETS.includes(body.wallet as Wallet)) {
        throw new Error(`expected {"organization": "<id>", "wallet": ${WALLETS.map((w) => `"${w}"`).join(' | ')}}`);
      }
      sim.setWallet(body.organization, body.wallet as Wallet);
      return sim.organizations();
    },
    'PUT /models': setModels,
    'POST /models': setModels,
  };
}
