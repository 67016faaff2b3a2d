// The CLI entry: environment parsing, the printed URL, the wording seed shared with google-sim, and
// a clean stop on SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { pickWording } from '../sim-core/wordings.ts';
import { RATE_LIMIT_WORDINGS, WAIT_STYLES } from './errors.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

function run(env: Record<string, string>): { proc: ChildProcess; output: Promise<string>; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let text = '';
  proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  const output = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed; output so far: ${text}`)), 15_000);
    const check = (): void => {
      if (/waits worded/.test(text) || proc.exitCode !== null) {
        clearTimeout(timer);
        resolve(text);
      }
    };
    proc.stdout!.on('data', check);
    proc.on('close', check);
  });
  return { proc, output, exit };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

it('starts on OPENAI_SIM_PORT with OPENAI_SIM_ORGS, words its 429s as the seed draws, and stops on SIGTERM', async () => {
  const seed = 4242;
  const orgs = { 'org-cli': { keys: ['sk-cli'], limits: { 'gpt-4o': { rpm: 1 } } } };
  const { proc, output, exit } = run({ OPENAI_SIM_PORT: '0', OPENAI_SIM_ORGS: JSON.stringify(orgs), GOOGLE_SIM_WORDING_SEED: String(seed) });
  const text = await output;
  const url = /listening on (http:\/\/\S+)/.exec(text)?.[1];
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const style = pickWording('openai.rate_limit.wait', WAIT_STYLES, seed);
  expect(text).toContain(`waits worded "${style}"`);

  const ask = (key: string): Promise<Response> =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
    });
  expect((await ask('sk-cli')).status).toBe(200);
  expect((await ask('sk-sim-a1')).status).toBe(401); // OPENAI_SIM_ORGS replaced the dev organizations
  const limited = await ask('sk-cli');
  expect(limited.status).toBe(429);
  const message = ((await limited.json()) as { error: { message: string } }).error.message;
  // The run's wording, with the wait in the drawn unit ('mixed' starts with seconds) or absent.
  const word = pickWording('openai.rate_limit', RATE_LIMIT_WORDINGS, seed);
  const facts = { kind: 'requests' as const, per: 'min' as const, model: 'gpt-4o', organization: 'org-cli', limit: 1, used: 1, requested: 1 };
  const unit = style === 'milliseconds' ? '\\d+ms' : style === 'natural' ? '(\\d+ms|[\\d.]+s)' : '[\\d.]+s';
  const expected = style === 'none'
    ? escape(word({ ...facts, wait: undefined }))
    : escape(word({ ...facts, wait: '@WAIT@' })).replace('@WAIT@', unit);
  expect(message).toMatch(new RegExp(`^${expected}$`));

  proc.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 20_000);

it('refuses a malformed OPENAI_SIM_ORGS with a message and exit code 1', async () => {
  const { output, exit } = run({ OPENAI_SIM_PORT: '0', OPENAI_SIM_ORGS: JSON.stringify({ 'org-x': { keys: 'not-a-list' } }) });
  expect(await exit).toBe(1);
  expect(await output).toContain('openai-sim: organization org-x needs');
}, 20_000);
