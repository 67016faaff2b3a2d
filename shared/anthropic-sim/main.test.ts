// The CLI entry: environment parsing, the printed URL, the bucket capacity setting, and a clean stop on
// SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

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
      if (/listening on/.test(text) || proc.exitCode !== null) {
        clearTimeout(timer);
        resolve(text);
      }
    };
    proc.stdout!.on('data', check);
    proc.on('close', check);
  });
  return { proc, output, exit };
}

it('starts on ANTHROPIC_SIM_PORT with ANTHROPIC_SIM_ORGS and its capacity ratio, and stops on SIGTERM', async () => {
  const orgs = { 'org-cli': { keys: ['sk-ant-cli'], limits: { 'sonnet-4': { rpm: 4 } } } };
  const { proc, output, exit } = run({ ANTHROPIC_SIM_PORT: '0', ANTHROPIC_SIM_ORGS: JSON.stringify(orgs), ANTHROPIC_SIM_CAPACITY_RATIO: '0.5' });
  const url = /listening on (http:\/\/\S+)/.exec(await output)?.[1];
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const ask = (key: string): Promise<Response> =>
    fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
  // RPM 4 at half capacity: a bucket of 2.
  expect([(await ask('sk-ant-cli')).status, (await ask('sk-ant-cli')).status, (await ask('sk-ant-cli')).status]).toEqual([200, 200, 429]);
  expect((await ask('sk-ant-sim-a1')).status).toBe(401); // ANTHROPIC_SIM_ORGS replaced the dev organizations
  proc.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 20_000);

it('refuses a malformed ANTHROPIC_SIM_ORGS with a message and exit code 1', async () => {
  const { output, exit } = run({ ANTHROPIC_SIM_PORT: '0', ANTHROPIC_SIM_ORGS: JSON.stringify({ 'org-x': { keys: 'not-a-list' } }) });
  expect(await exit).toBe(1);
  expect(await output).toContain('anthropic-sim: organization org-x needs');
}, 20_000);
