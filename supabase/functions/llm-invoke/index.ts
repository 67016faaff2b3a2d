// llm-invoke: the one door to the providers (providers/registry.ts). Wiring only: the HTTP side is http/handler.ts, the attempt
// loop attempt/invoke.ts, the database store/pg-store.ts over one pool per worker (layers: README.md).
import { serviceKeysFromEnv } from "../_shared/auth.ts";
import { invokeOptionsFromEnv, requestLimitsFromEnv } from "./attempt/settings.ts";
import { dbTimeoutsFromEnv, workerDatabase } from "../_shared/db.ts";
import { cachedProviderDirectory, providerRowsFrom } from "../_shared/providers/directory.ts";
import { createHandler } from "./http/handler.ts";
import { createInvoke } from "./attempt/invoke.ts";
import { createInputCounter } from "./attempt/input-counter.ts";
import { createPgStore } from "./store/pg-store.ts";
import { cachedTokenCheck } from "./http/token-check.ts";
import { serveFunction } from "../_shared/serve.ts";
import { createResponseCache } from "./cache/response-cache.ts";
import { createPgCacheStore } from "./cache/pg-cache-store.ts";
import { systemClock } from "./clock.ts";

const env = (name: string) => Deno.env.get(name);

// Supabase's Edge Runtime exposes EdgeRuntime.waitUntil: work handed to it may finish after the
// response is sent, so a success's finalize (audit row + token_usage) costs the caller no round trip.
// Under plain Deno (local server, tests) there is none, and finalize is awaited before answering.
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void } }).EdgeRuntime;
const waitUntil = typeof edgeRuntime?.waitUntil === "function"
  ? (promise: Promise<unknown>) => edgeRuntime.waitUntil!(promise)
  : undefined;

const options = invokeOptionsFromEnv(env);
const database = workerDatabase(env, "llm-invoke");
const store = createPgStore({ database, deadlineMs: dbTimeoutsFromEnv(env).deadlineMs });

// The provider rows, each made its dialect's client at its base URL, read again as the model rows are.
// The database books a model on its provider's keys (the key row's provider); each provider's key is
// read by that provider's secret names only.
const providers = cachedProviderDirectory(providerRowsFrom(database), env, {
  ttlMs: options.capabilitiesTtlMs,
  inBackground: true,
});

// The response cache (cache/): off unless a request or the owner's default asks for it.
const cache = createResponseCache({
  store: createPgCacheStore({ database }),
  clock: systemClock,
  defaultsTtlMs: options.capabilitiesTtlMs,
  logError: (m) => console.error(`[llm-invoke] ${m}`),
});

const handler = createHandler({
  serviceKeys: serviceKeysFromEnv(env),
  acceptTokens: true,
  checkToken: cachedTokenCheck(store),
  quota: (caller) => store.quotaReport(caller),
  models: () => store.modelList(),
  storedResponses: store,
  countTokens: createInputCounter({ store, providers, options }),
  requestLimits: requestLimitsFromEnv(env, options),
  invoke: createInvoke({ store, providers, options, waitUntil, cache }),
});

serveFunction("llm-invoke", handler);
