// maintenance: housekeeping on demand, key health and the model catalogue. Wiring only: the HTTP
// side is handler.ts, the run run.ts, the database store.ts, each provider row's model list its
// dialect's (_shared/providers/directory.ts).
import { serviceKeysFromEnv } from "../_shared/auth.ts";
import { DEFAULT_DB_TIMEOUTS, workerDatabase } from "../_shared/db.ts";
import { cachedProviderDirectory, providerRowsFrom } from "../_shared/providers/directory.ts";
import { createMaintenanceHandler } from "./handler.ts";
import { createPgMaintenanceStore } from "./store.ts";
import { createPgMetricsSource } from "./metrics-store.ts";
import { serveFunction } from "../_shared/serve.ts";

const env = (name: string) => Deno.env.get(name);
const HOUSEKEEPING_TIMEOUTS = { ...DEFAULT_DB_TIMEOUTS, statementTimeoutMs: 60_000, deadlineMs: 61_000 };
const database = () => workerDatabase(env, "maintenance", HOUSEKEEPING_TIMEOUTS);
// The provider rows, read again at most once a minute (a run is rare; a row added shows in the next one).
const directory = cachedProviderDirectory(() => providerRowsFrom(database())(), env, { ttlMs: 60_000 });

const handler = createMaintenanceHandler({
  serviceKeys: serviceKeysFromEnv(env),
  // The worker's database (_shared/db.ts: GATEWAY_DB_URL, else SUPABASE_DB_URL), opened on first use, so
  // a missing or unreachable database answers 503 at once instead of failing the deployment.
  // Housekeeping deletes in batches and may legitimately run longer than a reservation: 60 s.
  store: () => createPgMaintenanceStore(database()),
  // The same worker database (one pool): a scrape is one call of well under a second.
  metrics: () => createPgMetricsSource(database()),
  // Each provider's keys by each key row's env_var_name, read as llm-invoke reads them (never SUPABASE_*
  // or other project credentials, nor another provider's keys): each provider's key rows are checked
  // against that provider's list only (google_ai_active_keys(p_provider)), at its row's base URL.
  providers: async () => {
    const { upstreams, problems } = await directory();
    return {
      providers: Object.fromEntries(upstreams.map((u) => [u.provider, {
        lister: u.lister(),
        secret: u.key,
        who: u.who,
        refusal: u.key.refusal,
      }])),
      providerProblems: problems,
    };
  },
});

serveFunction("maintenance", handler);
