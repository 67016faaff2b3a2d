// llm-invoke: the one door to Google AI and OpenAI. Wiring only: the HTTP side is http/handler.ts, the attempt
// loop attempt/invoke.ts, the database store/pg-store.ts over one pool per worker (layers: README.md).
import { serviceKeysFromEnv } from "../_shared/auth.ts";
import { keyReader } from "../_shared/key-reader.ts";
import { invokeOptionsFromEnv, requestLimitsFromEnv } from "./attempt/settings.ts";
import { dbTimeoutsFromEnv, workerDatabase } from "../_shared/db.ts";
import { createGoogleClient, googleBaseUrlFromEnv } from "../_shared/google/client.ts";
import { createOpenAiClient } from "./upstream/openai/client.ts";
import { openAiBaseUrlFromEnv } from "../_shared/openai/endpoint.ts";
import { createHandler } from "./http/handler.ts";
import { createInputCounter, createInvoke } from "./attempt/invoke.ts";
import { createPgStore } from "./store/pg-store.ts";
import { cachedTokenCheck } from "./http/token-check.ts";
import { serveFunction } from "../_shared/serve.ts";

const env = (name: string) => Deno.env.get(name);

// Supabase's Edge Runtime exposes EdgeRuntime.waitUntil: work handed to it may finish after the
// response is sent, so a success's finalize (audit row + token_usage) costs the caller no round trip.
// Under plain Deno (local server, tests) there is none, and finalize is awaited before answering.
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void } }).EdgeRuntime;
const waitUntil = typeof edgeRuntime?.waitUntil === "function"
  ? (promise: Promise<unknown>) => edgeRuntime.waitUntil!(promise)
  : undefined;

const options = invokeOptionsFromEnv(env);
const store = createPgStore({
  database: workerDatabase(env, "llm-invoke"),
  deadlineMs: dbTimeoutsFromEnv(env).deadlineMs,
});

const google = createGoogleClient({ baseUrl: googleBaseUrlFromEnv(env) });
const openai = createOpenAiClient({ baseUrl: openAiBaseUrlFromEnv(env) });
// The database books a model on its provider's keys (the key row's provider); each provider's key is
// read by that provider's secret names only.
const readers = { google: keyReader(env, "google"), openai: keyReader(env, "openai") };
const secret = (envVarName: string, provider: keyof typeof readers) => readers[provider](envVarName);

const handler = createHandler({
  serviceKeys: serviceKeysFromEnv(env),
  acceptTokens: true,
  checkToken: cachedTokenCheck(store),
  quota: (caller) => store.quotaReport(caller),
  models: () => store.modelList(),
  countTokens: createInputCounter({ store, google, secret, options }),
  requestLimits: requestLimitsFromEnv(env, options),
  invoke: createInvoke({ store, google, openai, secret, options, waitUntil }),
});

serveFunction("llm-invoke", handler);
