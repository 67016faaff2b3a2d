// maintenance: housekeeping on demand, key health and the model catalogue. Wiring only: the HTTP
// side is handler.ts, the run run.ts, the database store.ts, Google's models.list google-models.ts.
import { serviceKeysFromEnv } from "../_shared/auth.ts";
import { googleKeyReader } from "../_shared/google/key-reader.ts";
import { workerPool } from "../_shared/db.ts";
import { GatewayError } from "../_shared/errors.ts";
import { googleBaseUrlFromEnv } from "../_shared/google/client.ts";
import { createModelLister } from "./google-models.ts";
import { createMaintenanceHandler } from "./handler.ts";
import { createPgMaintenanceStore } from "./store.ts";
import { serveFunction } from "../_shared/serve.ts";

const env = (name: string) => Deno.env.get(name);

const handler = createMaintenanceHandler({
  serviceKeys: serviceKeysFromEnv(env),
  // The worker's pool (_shared/db.ts: GATEWAY_DB_URL, else SUPABASE_DB_URL), opened on first use, so
  // a missing or unreachable database answers 503 per request instead of failing the deployment.
  store: () => {
    const sql = workerPool(env, "maintenance");
    if (sql === null) {
      throw new GatewayError("unavailable", "No database is configured (SUPABASE_DB_URL or GATEWAY_DB_URL).");
    }
    return createPgMaintenanceStore(sql);
  },
  lister: createModelLister({ baseUrl: googleBaseUrlFromEnv(env) }),
  // Google keys by each key row's env_var_name (never SUPABASE_* or other project credentials).
  secret: googleKeyReader(env),
});

serveFunction("maintenance", handler);
