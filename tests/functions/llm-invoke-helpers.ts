// Shared set-up of the llm-invoke integration tests: a fresh database per test file with the test's
// own key rows and limits, the offline Google and OpenAI simulators (each key row's secret is a key of
// its provider's simulator), and llm-invoke served over HTTP by the local stack. Every response is kept, so a test can scan all
// of them (and every table) for secrets at the end. `startClaudeStack` adds an Anthropic simulator of the
// test's own, its keys and their rows.
//
// What the provider was sent: `sent("google" | "openai")`, the bodies of the generation calls its
// simulator received (each simulator keeps the body of its last 1000 requests, `stats().recent[].body`,
// its JSON parsed), so a test asserts the gateway's request itself rather than an effect of it.
// Counting: Google's simulator counts a request's input tokens on arrival and cuts an answer at
// maxOutputTokens; OpenAI's books input plus max_tokens (else its model's default) on arrival and keeps
// it (`settle: 'arrival'`, its default; `openaiSimulator: { settle: 'usage' }` gives the unused part back).
import { echoDatabaseTrouble, TEST_STACK_DB_ENV } from "../support/stack-env.ts";
import type { Sql } from "../../shared/db/migrate.ts";
import type { GoogleSimulator, SimulatorOptions } from "../../shared/google-sim/server.ts";
import { type AnthropicSimulator, type AnthropicSimulatorOptions, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import type { OpenAISimulator, OpenAISimulatorOptions, OrgOptions } from "../../shared/openai-sim/server.ts";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import type { Dialect, Provider } from "../../supabase/functions/_shared/providers/registry.ts";

/** The provider a test key or model row names when it names none (the database's column default). */
const DEFAULT_PROVIDER = "google" satisfies Dialect;

/**
 * The dialects whose simulators the stack starts (scripts/local-stack.ts). A test of another dialect
 * starts its own server and inserts its rows (a provider row with that server's URL, key and model rows).
 */
export type StackDialect = Extract<Dialect, "google" | "openai">;

export interface TestKey {
  alias: string;
  /** Whose key (google_ai_api_keys.provider): a stack dialect's own provider row, served by its simulator; default google. */
  provider?: StackDialect;
  /** Quota group in the database (google_ai_api_keys.project_id): a Google project, an OpenAI organization. */
  project: string;
  priority: number;
  /** The key value the function reads from its env var; a key of its provider's simulator (sk-sim-a1, …). */
  simKey: string;
  /**
   * The simulator's project (Google) or organization (OpenAI) for that key: quota is counted per each.
   * Default `sim-<project>`.
   */
  simProject?: string;
  /** Leave the env var unset (a key row whose secret is missing). */
  noSecret?: boolean;
}

export interface ModelLimit {
  model: string;
  rpm?: number | null;
  tpm?: number | null;
  rpd?: number | null;
  /** google_ai_model_limits.spread_burst (null: not spread). */
  spreadBurst?: number | null;
  /** google_ai_model_limits.provider: a provider row's name. */
  provider?: Provider;
  /** google_ai_model_limits.booked_output_tokens (null: TPM counts input only, as Google). */
  bookedOutputTokens?: number | null;
}

export interface Seen {
  status: number;
  headers: Record<string, string>;
  text: string;
}

export interface CallResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
  ms: number;
}

export interface InvokeStack {
  db: TestDatabase;
  sql: Sql;
  stack: LocalStack;
  sim: GoogleSimulator;
  /** The OpenAI simulator: the functions' OPENAI_BASE_URL; it holds the OpenAI keys' organizations. */
  openaiSim: OpenAISimulator;
  url: string;
  serviceKey: string;
  keys: TestKey[];
  /** key alias -> key id */
  keyIds: Record<string, string>;
  /** Every response this stack answered to `call`/`raw`. */
  seen: Seen[];
  /** Every line the functions logged. */
  logs: string[];
  call(body: unknown, options?: { headers?: Record<string, string>; auth?: string | null }): Promise<CallResult>;
  raw(init: RequestInit & { path?: string }): Promise<CallResult>;
  /**
   * The bodies of the generation calls (generateContent and its stream; chat completions) the provider's
   * simulator received since the last reset, oldest first, their JSON parsed: what the gateway sent.
   */
  sent(provider: StackDialect): any[];
  /** Fresh minute for the test: both simulators' quota/stats/faults, counters and cooldowns cleared. */
  reset(): Promise<void>;
  /** Updates the model's row (a row the seed does not have is inserted, its provider's). */
  setLimit(limit: ModelLimit): Promise<void>;
  close(): Promise<void>;
}

/** Simulator limits far above the database's, so only the gateway's own admission decides. */
export const GENEROUS_SIM_MODELS = {
  "gemma-3-27b-it": { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 },
  "gemini-2.5-flash": { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 },
};

/** OpenAI's simulator limits far above the database's, as GENEROUS_SIM_MODELS is for Google's. */
export const GENEROUS_OPENAI_SIM_MODELS = {
  "gpt-4o": { rpm: 100_000, tpm: 100_000_000 },
  "gpt-4o-mini": { rpm: 100_000, tpm: 100_000_000 },
};

/** A key row's secret name, inside its provider's pattern (supabase/functions/_shared/providers/key-reader.ts). */
const envVarOf = (k: Pick<TestKey, "alias" | "provider">) =>
  `${(k.provider ?? DEFAULT_PROVIDER).toUpperCase()}_TEST_KEY_${k.alias.replace(/[^A-Za-z0-9]/g, "_").toUpperCase()}`;

export async function startInvokeStack(label: string, options: {
  keys: TestKey[];
  limits?: ModelLimit[];
  env?: Record<string, string>;
  /** More environment that depends on the fresh database (a pooler in front of it). */
  dbEnv?: (db: TestDatabase) => Promise<Record<string, string>>;
  /** More simulator options (Google's counting, models); its keys always come from `keys`. */
  simulator?: Omit<SimulatorOptions, "keys">;
  /** More OpenAI simulator options (counting, models); its organizations always come from `keys`. */
  openaiSimulator?: Omit<OpenAISimulatorOptions, "organizations">;
  /**
   * "as seeded": the models keep the seed's spread of the window. By default a stack's models are not
   * spread, so that a test of something else may send its requests at once; the spread is tested
   * where it is the subject (tests/db/spread.test.ts, and with the seed as `npm start` has it).
   */
  spread?: "as seeded";
}): Promise<InvokeStack> {
  const db = await freshDatabase(label);
  const sql = db.sql;
  if (options.spread !== "as seeded") await sql`update public.google_ai_model_limits set spread_burst = null`;
  // The seeded key stays in the table but out of rotation: each test names its own keys.
  await sql`update public.google_ai_api_keys set is_active = false`;
  const keyIds: Record<string, string> = {};
  for (const k of options.keys) {
    const [row] = await sql<{ id: string }[]>`
      insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
      values (${k.alias}, ${k.provider ?? DEFAULT_PROVIDER}, ${envVarOf(k)}, ${k.project}, ${k.priority}, true) returning id`;
    keyIds[k.alias] = row!.id;
  }
  const env: Record<string, string> = {
    ...TEST_STACK_DB_ENV,
    ...options.env,
    ...await options.dbEnv?.(db),
  };
  const simKeys: Record<string, string> = {};
  const organizations: OrgOptions = {};
  // Where each stack simulator holds a key.
  const holdKey: Record<StackDialect, (simKey: string, simProject: string) => void> = {
    google: (key, project) => (simKeys[key] = project),
    openai: (key, project) => (organizations[project] ??= { keys: [] }).keys.push(key),
  };
  for (const k of options.keys) {
    const simProject = k.simProject ?? `sim-${k.project}`;
    holdKey[k.provider ?? DEFAULT_PROVIDER](k.simKey, simProject);
    if (!k.noSecret) env[envVarOf(k)] = k.simKey;
  }
  const logs: string[] = [];
  const stack = await startLocalStack({
    functionsPort: 0,
    databaseUrl: db.url,
    google: "simulator",
    openai: "simulator",
    env,
    simulatorOptions: { models: GENEROUS_SIM_MODELS, ...options.simulator, keys: simKeys },
    openaiSimulatorOptions: { models: GENEROUS_OPENAI_SIM_MODELS, ...options.openaiSimulator, organizations },
    only: ["llm-invoke"],
    log: (line) => {
      logs.push(line);
      echoDatabaseTrouble(label, line);
    },
  });
  const sim = stack.simulator!;
  const openaiSim = stack.openaiSimulator!;
  const url = `${stack.functionsUrl}/functions/v1/llm-invoke`;
  const seen: Seen[] = [];

  async function raw(init: RequestInit & { path?: string }): Promise<CallResult> {
    const started = performance.now();
    const res = await fetch(init.path === undefined ? url : `${stack.functionsUrl}${init.path}`, init);
    const text = await res.text();
    const ms = performance.now() - started;
    seen.push({ status: res.status, headers: Object.fromEntries(res.headers.entries()), text });
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text, ms };
  }

  const it: InvokeStack = {
    db,
    sql,
    stack,
    sim,
    openaiSim,
    url,
    serviceKey: stack.serviceKey,
    keys: options.keys,
    keyIds,
    seen,
    logs,
    raw,
    sent: (provider) => provider === "google"
      ? sim.stats().recent.filter((r) => r.method === "generateContent" || r.method === "streamGenerateContent").map((r) => r.body)
      : openaiSim.stats().recent.filter((r) => r.method === "chat.completions").map((r) => r.body),
    call: (body, opts = {}) => {
      const auth = opts.auth === undefined ? stack.serviceKey : opts.auth;
      return raw({
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(auth === null ? {} : { authorization: `Bearer ${auth}` }),
          ...opts.headers,
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    },
    reset: async () => {
      sim.reset();
      openaiSim.reset();
      await sql`delete from public.google_ai_cooldowns`;
      await sql`delete from public.google_ai_usage_counters`;
    },
    setLimit: async (l) => {
      const updated = await sql`update public.google_ai_model_limits set
        rpm = ${l.rpm === undefined ? sql`rpm` : l.rpm},
        tpm = ${l.tpm === undefined ? sql`tpm` : l.tpm},
        rpd = ${l.rpd === undefined ? sql`rpd` : l.rpd},
        spread_burst = ${l.spreadBurst === undefined ? sql`spread_burst` : l.spreadBurst},
        provider = ${l.provider === undefined ? sql`provider` : l.provider},
        booked_output_tokens = ${l.bookedOutputTokens === undefined ? sql`booked_output_tokens` : l.bookedOutputTokens}
        where model = ${l.model}`;
      if (updated.count > 0) return;
      await sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, spread_burst, booked_output_tokens)
        values (${l.model}, ${l.provider ?? DEFAULT_PROVIDER}, ${l.rpm ?? null}, ${l.tpm ?? null}, ${l.rpd ?? null},
                ${l.spreadBurst ?? null}, ${l.bookedOutputTokens ?? null})`;
    },
    close: async () => {
      await stack.close();
      await db.drop();
    },
  };
  for (const l of options.limits ?? []) await it.setLimit(l);
  return it;
}

/** A Claude key of a test: its secret (a key of an organization of the Anthropic simulator) in ANTHROPIC_TEST_KEY_<name>. */
export interface ClaudeKey {
  name: string;
  secret: string;
  /** Its organization (the row's quota group): the key row `claude-<name>` is inserted, active. Absent: the secret alone. */
  org?: string;
}

/**
 * A stack whose Claude models are served by its own Anthropic simulator (the stack starts Google's and
 * OpenAI's): llm-invoke with a Google key, Claude's keys as `claude` names them, and the simulator. The
 * stack's reset and close reset and close the simulator too.
 */
export async function startClaudeStack(label: string, options: {
  simulator: AnthropicSimulatorOptions;
  claude: ClaudeKey[];
  /** Claude's model rows at RPM 1000, ITPM and OTPM 10M, so only what a test sets binds. Default: as seeded. */
  roomy?: boolean;
  /** Keys besides the Google one. */
  keys?: TestKey[];
  openaiSimulator?: Omit<OpenAISimulatorOptions, "organizations">;
}): Promise<{ s: InvokeStack; sim: AnthropicSimulator }> {
  const sim = await startAnthropicSimulator(options.simulator);
  const env: Record<string, string> = { ANTHROPIC_BASE_URL: sim.url };
  for (const k of options.claude) env[`ANTHROPIC_TEST_KEY_${k.name}`] = k.secret;
  let s: InvokeStack;
  try {
    s = await startInvokeStack(label, {
      keys: [{ alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" }, ...options.keys ?? []],
      openaiSimulator: options.openaiSimulator,
      env,
    });
  } catch (error) {
    await sim.close();
    throw error;
  }
  for (const k of options.claude.filter((k) => k.org !== undefined)) {
    await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
                values (${`claude-${k.name.toLowerCase()}`}, 'anthropic', ${`ANTHROPIC_TEST_KEY_${k.name}`}, ${k.org!}, 1, true)`;
  }
  if (options.roomy) {
    await s.sql`update public.google_ai_model_limits set rpm = 1000, itpm = 10000000, otpm = 10000000
                where provider = 'anthropic'`;
  }
  return {
    sim,
    s: {
      ...s,
      reset: async () => {
        await s.reset();
        sim.reset();
      },
      close: async () => {
        await s.close();
        await sim.close();
      },
    },
  };
}

export { mintToken, newToken, sha256 } from "../../shared/db/scoped-token.ts";

/** Every row of every table in the public schema, as text (all columns, jsonb included). */
export async function allRowsAsText(sql: Sql): Promise<{ table: string; text: string }[]> {
  const tables = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1`;
  const out: { table: string; text: string }[] = [];
  for (const { name } of tables) {
    const rows = await sql.unsafe(`select t::text as row from public."${name.replaceAll('"', '""')}" t`);
    for (const r of rows) out.push({ table: name, text: String(r.row) });
  }
  return out;
}

/**
 * When a model's window next lets something go (60 s + the 1 s guard after an admission): a request
 * with its oldest admission, which is the first of its second; tokens with the last admission of that
 * second, which the others of the second leave with (google_ai_ring_at).
 */
export async function windowFreesAt(sql: Sql, model: string): Promise<{ requests: Date; tokens: Date }> {
  const [row] = await sql<{ requests: Date; tokens: Date }[]>`
    with w as (select a.admitted_at from public.google_ai_attempts a
               where a.model = ${model} and a.admitted_at is not null and a.status not in ('released', 'withdrawn'))
    select min(w.admitted_at) + interval '61 seconds' as requests,
           (select max(x.admitted_at) from w x
            where date_trunc('second', x.admitted_at) = date_trunc('second', min(w.admitted_at))) + interval '61 seconds' as tokens
    from w`;
  return row!;
}

/** Milliseconds until the next minute starts (second :00), by this machine's clock (= the database's). */
export function msToNextMinute(now = Date.now()): number {
  return 60_000 - (now % 60_000);
}

/** Waits, if needed, so that at least `ms` remain before the next :00 (a burst must fit in one minute). */
export async function awayFromMinuteEdge(ms: number): Promise<void> {
  const left = msToNextMinute();
  if (left < ms) await sleep(left + 200);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(50);
  }
}


export { someoneWaits } from "../support/someone-waits.ts";
