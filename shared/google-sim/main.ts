// CLI: `tsx shared/google-sim/main.ts` starts the simulator for the local stack.
//   GOOGLE_SIM_PORT  default 54329 (0 = any free port)
//   GOOGLE_SIM_HOST  default 127.0.0.1
//   GOOGLE_SIM_KEYS  JSON {"<api key>": "<project id>"}; default: DEV_KEYS (see README.md)
//   GOOGLE_SIM_LATENCY_MS  optional fixed latency for successful generations
//   GOOGLE_SIM_STREAM_CHUNK_DELAY_MS  pause between the SSE chunks of a streamed answer (default 0)
//   GOOGLE_SIM_WINDOW  fixed (default: calendar minutes at :00) | sliding (60 s over arrivals)
//   GOOGLE_SIM_CLOCK_OFFSET_MS  Google's clock minus ours for windows and the day (may be negative)
//   GOOGLE_SIM_ARRIVAL_DELAY_MS, GOOGLE_SIM_ARRIVAL_JITTER_MS  network delay ± uniform jitter
//     before a request is counted
// Prints one line `google-sim listening on <url>` once ready; SIGINT/SIGTERM close it cleanly.

import { parseMinuteWindow } from '../sim-core/windows.ts';
import { DEV_KEYS, startGoogleSimulator } from './server.ts';

function parseKeys(raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw.trim() === '') return { ...DEV_KEYS };
  const parsed: unknown = JSON.parse(raw);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('GOOGLE_SIM_KEYS must be a JSON object of api key -> project id');
  }
  for (const [key, project] of Object.entries(parsed)) {
    if (typeof project !== 'string') throw new Error(`GOOGLE_SIM_KEYS: project for "${key}" must be a string`);
  }
  return parsed as Record<string, string>;
}

function parseNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

function parseInteger(name: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return n;
}

try {
  const sim = await startGoogleSimulator({
    port: parseNumber('GOOGLE_SIM_PORT', 54329),
    host: process.env.GOOGLE_SIM_HOST || '127.0.0.1',
    keys: parseKeys(process.env.GOOGLE_SIM_KEYS),
    latencyMs: parseNumber('GOOGLE_SIM_LATENCY_MS', 0),
    streamChunkDelayMs: parseNumber('GOOGLE_SIM_STREAM_CHUNK_DELAY_MS', 0),
    window: parseMinuteWindow('GOOGLE_SIM_WINDOW', process.env.GOOGLE_SIM_WINDOW),
    clockOffsetMs: parseInteger('GOOGLE_SIM_CLOCK_OFFSET_MS'),
    arrivalDelayMs: parseNumber('GOOGLE_SIM_ARRIVAL_DELAY_MS', 0),
    arrivalJitterMs: parseNumber('GOOGLE_SIM_ARRIVAL_JITTER_MS', 0),
  });
  // The handlers before any line: a caller that stops it on a line it printed stops it cleanly.
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`google-sim listening on ${sim.url}`);
  const keys = sim.keys();
  console.log(`google-sim: ${Object.keys(keys).length} keys in ${new Set(Object.values(keys)).size} projects`);
  const c = sim.counting();
  console.log(`google-sim: ${c.window} windows, clock offset ${c.clockOffsetMs} ms, arrival delay ${c.arrivalDelayMs} ± ${c.arrivalJitterMs} ms`);
  console.log(`google-sim: stream chunks ${sim.streamChunkDelayMs} ms apart`);
} catch (e) {
  console.error(`google-sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
