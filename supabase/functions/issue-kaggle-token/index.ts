// issue-kaggle-token: trades a Kaggle client secret for a short-lived scoped token. Wiring only;
// the handler lives in handler.ts, the RPC call in store.ts.
import postgres from "postgres";
import { createIssueTokenHandler } from "./handler.ts";
import { createPostgresMint } from "./store.ts";

const env = (name: string) => Deno.env.get(name);

// SUPABASE_DB_URL is set by the platform (a direct connection). Opened lazily by postgres.js, so a
// missing or unreachable database answers 503 per request instead of failing the deployment.
const dbUrl = env("SUPABASE_DB_URL");
const sql = dbUrl ? postgres(dbUrl, { max: 3, idle_timeout: 30, connect_timeout: 10, prepare: false }) : null;

const handler = createIssueTokenHandler({
  mint: sql === null ? () => Promise.reject(new Error("SUPABASE_DB_URL is not set")) : createPostgresMint(sql),
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
