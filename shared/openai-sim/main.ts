// CLI: `tsx shared/openai-sim/main.ts` starts the OpenAI simulator for the local stack.
//   OPENAI_SIM_PORT  default 54330 (0 = any free port)
//   OPENAI_SIM_HOST  default 127.0.0.1
//   OPENAI_SIM_ORGS  JSON {"<organization>": {"keys": ["<api key>", ...], "limits"?: {...}, "wallet"?: "empty"}};
//                    default: DEV_ORGS (see README.md)
//   OPENAI_SIM_WINDOW  fixed (default) | sliding
//   OPENAI_SIM_SLICE_MS  sub-minute enforcement: slice length in ms (default: none)
//   OPENAI_SIM_DEFAULT_MAX_TOKENS  max_tokens booked when a request sends none (default 4096)
//   OPENAI_SIM_SETTLE  arrival (default: TPM keeps what was booked) | usage (unused tokens given back)
//   OPENAI_SIM_LATENCY_MS, OPENAI_SIM_STREAM_CHUNK_DELAY_MS  (default 0)
//   OPENAI_SIM_ARRIVAL_DELAY_MS, OPENAI_SIM_ARRIVAL_JITTER_MS  network delay ± uniform jitter
//   GOOGLE_SIM_WORDING_SEED  the run's wording seed, shared with google-sim
// Prints one line `openai-sim listening on <url>` once ready; SIGINT/SIGTERM close it cleanly.

import { parseMinuteWindow } from '../sim-core/windows.ts';
import { DEV_ORGS, startOpenAISimulator, type OrgOptions, type Settle } from './server.ts';

function parseOrgs(raw: string | undefined): OrgOptions {
  if (raw === undefined || raw.trim() === '') return structuredClone(DEV_ORGS) as OrgOptions;
  const parsed: unknown = JSON.parse(raw);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('OPENAI_SIM_ORGS must be a JSON object of organization -> {keys: [...]}');
  }
  return parsed as OrgOptions;
}

function parseNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

function parseSettle(raw: string | undefined): Settle {
  if (raw === undefined || raw.trim() === '') return 'arrival';
  if (raw !== 'arrival' && raw !== 'usage') throw new Error(`OPENAI_SIM_SETTLE must be arrival or usage, got "${raw}"`);
  return raw;
}

try {
  const slice = parseNumber('OPENAI_SIM_SLICE_MS', 0);
  const sim = await startOpenAISimulator({
    port: parseNumber('OPENAI_SIM_PORT', 54330),
    host: process.env.OPENAI_SIM_HOST || '127.0.0.1',
    organizations: parseOrgs(process.env.OPENAI_SIM_ORGS),
    window: parseMinuteWindow('OPENAI_SIM_WINDOW', process.env.OPENAI_SIM_WINDOW),
    ...(slice > 0 ? { sliceMs: slice } : {}),
    defaultMaxTokens: parseNumber('OPENAI_SIM_DEFAULT_MAX_TOKENS', 4096),
    settle: parseSettle(process.env.OPENAI_SIM_SETTLE),
    latencyMs: parseNumber('OPENAI_SIM_LATENCY_MS', 0),
    streamChunkDelayMs: parseNumber('OPENAI_SIM_STREAM_CHUNK_DELAY_MS', 0),
    arrivalDelayMs: parseNumber('OPENAI_SIM_ARRIVAL_DELAY_MS', 0),
    arrivalJitterMs: parseNumber('OPENAI_SIM_ARRIVAL_JITTER_MS', 0),
  });
  // The handlers before any line: a caller that stops it on a line it printed stops it cleanly.
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`openai-sim listening on ${sim.url}`);
  const orgs = sim.organizations();
  const keys = Object.values(orgs).reduce((n, o) => n + o.keys.length, 0);
  console.log(`openai-sim: ${keys} keys in ${Object.keys(orgs).length} organizations; rate-limit waits worded "${sim.waitStyle}"; TPM settled on ${sim.settle}`);
} catch (e) {
  console.error(`openai-sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
