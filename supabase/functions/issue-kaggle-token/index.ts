// issue-kaggle-token: trades a Kaggle client secret for a short-lived scoped token. Wiring only;
// the handler lives in handler.ts, the RPC call in store.ts.
import { workerDatabase } from "../_shared/db.ts";
import { createIssueTokenHandler } from "./handler.ts";
import { createPostgresMint } from "./store.ts";
import { serveFunction } from "../_shared/serve.ts";

const env = (name: string) => Deno.env.get(name);

const handler = createIssueTokenHandler({
  // The worker's database (_shared/db.ts: GATEWAY_DB_URL, else SUPABASE_DB_URL), opened on first use, so
  // a missing or unreachable database answers 503 at once instead of failing the deployment.
  mint: (params) => workerDatabase(env, "issue-kaggle-token").run("mint", (sql) => createPostgresMint(sql)(params)),
  publicUrl: env("EVE_GATEWAY_URL") ?? env("SUPABASE_URL"),
});

serveFunction("issue-kaggle-token", handler);
