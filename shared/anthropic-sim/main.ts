// CLI: `tsx shared/anthropic-sim/main.ts` starts the Anthropic simulator for the local stack.
//   ANTHROPIC_SIM_PORT  default 54331 (0 = any free port)
//   ANTHROPIC_SIM_HOST  default 127.0.0.1
//   ANTHROPIC_SIM_ORGS  JSON {"<organization>": {"keys": [...], "limits"?: {"<pool>": {...}}, "wallet"?: ...}};
//                       default: DEV_ORGS (see README.md)
//   ANTHROPIC_SIM_CAPACITY_RATIO  each bucket's size as a share of its minute's limit (default 1)
//   ANTHROPIC_SIM_LATENCY_MS, ANTHROPIC_SIM_STREAM_CHUNK_DELAY_MS  (default 0)
//   GOOGLE_SIM_WORDING_SEED  the run's wording seed, shared with the other simulators
// Prints one line `anthropic-sim listening on <url>` once ready; SIGINT/SIGTERM close it cleanly.

import { DEV_ORGS, startAnthropicSimulator, type OrgOptions } from './server.ts';

function number(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

try {
  const raw = process.env.ANTHROPIC_SIM_ORGS;
  const organizations = raw === undefined || raw.trim() === '' ? (structuredClone(DEV_ORGS) as OrgOptions) : (JSON.parse(raw) as OrgOptions);
  const sim = await startAnthropicSimulator({
    port: number('ANTHROPIC_SIM_PORT', 54331),
    host: process.env.ANTHROPIC_SIM_HOST || '127.0.0.1',
    organizations,
    capacityRatio: number('ANTHROPIC_SIM_CAPACITY_RATIO', 1),
    latencyMs: number('ANTHROPIC_SIM_LATENCY_MS', 0),
    streamChunkDelayMs: number('ANTHROPIC_SIM_STREAM_CHUNK_DELAY_MS', 0),
  });
  // The handlers before any line: a caller that stops it on a line it printed stops it cleanly.
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`anthropic-sim listening on ${sim.url}`);
} catch (e) {
  console.error(`anthropic-sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
