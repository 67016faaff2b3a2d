// issue-kaggle-token: trades a Kaggle client secret for a short-lived scoped token. Wiring only;
// the handler lives in handler.ts, the RPC call in store.ts.
import { workerPool } from "../_shared/db.ts";
import { createIssueTokenHandler } from "./handler.ts";
import { createPostgresMint } from "./store.ts";

const env = (name: string) => Deno.env.get(name);

const handler = createIssueTokenHandler({
  // The worker's pool (_shared/db.ts: GATEWAY_DB_URL, else SUPABASE_DB_URL), opened on first use, so
  // a missing or unreachable database answers 503 per request instead of failing the deployment.
  mint: (params) => {
    const sql = workerPool(env, "issue-kaggle-token");
    if (sql === null) return Promise.reject(new Error("no database configured (SUPABASE_DB_URL or GATEWAY_DB_URL)"));
    return createPostgresMint(sql)(params);
  },
  publicUrl: env("EVE_GATEWAY_URL") ?? env("SUPABASE_URL"),
});

// Under Supabase's Edge Runtime the platform owns the listener; under plain Deno (local server,
// tests) we listen on PORT, on loopback only.
if ("EdgeRuntime" in globalThis) {
  Deno.serve(handler);
} else {
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(env("PORT") ?? "8000"),
    onListen: ({ port }) => console.log(`issue-kaggle-token listening on http://127.0.0.1:${port}`),
  }, handler);
}
