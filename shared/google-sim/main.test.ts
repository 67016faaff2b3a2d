// The CLI entry: environment parsing, the printed URL, and a clean stop on SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

function run(env: Record<string, string>): { proc: ChildProcess; output: Promise<string>; exit: Promise<number | null>; all: () => string } {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let text = '';
  proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  const output = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed; output so far: ${text}`)), 15_000);
    const check = (): void => {
      if (/listening on http:\/\/\S+/.test(text) || proc.exitCode !== null) {
        clearTimeout(timer);
        resolve(text);
      }
    };
    proc.stdout!.on('data', check);
    proc.on('close', check);
  });
  return { proc, output, exit, all: () => text };
}

it('starts on GOOGLE_SIM_PORT with GOOGLE_SIM_KEYS, prints its URL and stops on SIGTERM', async () => {
  const { proc, output, exit } = run({ GOOGLE_SIM_PORT: '0', GOOGLE_SIM_KEYS: JSON.stringify({ 'cli-key': 'cli-project' }) });
  const url = /listening on (http:\/\/\S+)/.exec(await output)?.[1];
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const ok = await fetch(`${url}/v1beta/models/gemma-3-27b-it:generateContent`, {
    method: 'POST',
    headers: { 'x-goog-api-key': 'cli-key' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  expect(ok.status).toBe(200);
  const devKey = await fetch(`${url}/v1beta/models?key=sim-key-a1`);
  expect(devKey.status).toBe(400); // GOOGLE_SIM_KEYS replaced the dev keys
  proc.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 20_000);

it('refuses a malformed GOOGLE_SIM_KEYS with a message and exit code 1', async () => {
  const { output, exit } = run({ GOOGLE_SIM_PORT: '0', GOOGLE_SIM_KEYS: '["not", "an", "object"]' });
  expect(await exit).toBe(1);
  expect(await output).toContain('GOOGLE_SIM_KEYS must be a JSON object');
}, 20_000);

it('takes Google\'s counting from GOOGLE_SIM_WINDOW, _CLOCK_OFFSET_MS, _ARRIVAL_DELAY_MS and _ARRIVAL_JITTER_MS', async () => {
  const { proc, output, exit, all } = run({
    GOOGLE_SIM_PORT: '0',
    GOOGLE_SIM_WINDOW: 'sliding',
    GOOGLE_SIM_CLOCK_OFFSET_MS: '-2000',
    GOOGLE_SIM_ARRIVAL_DELAY_MS: '100',
    GOOGLE_SIM_ARRIVAL_JITTER_MS: '50',
  });
  await output;
  // The counting line comes right after the URL (the signal handlers are set before it).
  for (let i = 0; i < 100 && !all().includes('arrival delay'); i++) await new Promise((r) => setTimeout(r, 50));
  expect(all()).toContain('sliding windows, clock offset -2000 ms, arrival delay 100 ± 50 ms');
  proc.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 20_000);

it('paces streamed answers by GOOGLE_SIM_STREAM_CHUNK_DELAY_MS', async () => {
  const { proc, output, exit, all } = run({ GOOGLE_SIM_PORT: '0', GOOGLE_SIM_STREAM_CHUNK_DELAY_MS: '25' });
  await output;
  for (let i = 0; i < 100 && !all().includes('stream chunks'); i++) await new Promise((r) => setTimeout(r, 50));
  expect(all()).toContain('stream chunks 25 ms apart');
  proc.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 20_000);

it('refuses an unknown GOOGLE_SIM_WINDOW with a message and exit code 1', async () => {
  const { output, exit } = run({ GOOGLE_SIM_PORT: '0', GOOGLE_SIM_WINDOW: 'leaky' });
  expect(await exit).toBe(1);
  expect(await output).toContain('GOOGLE_SIM_WINDOW must be one of fixed, sliding');
}, 20_000);
