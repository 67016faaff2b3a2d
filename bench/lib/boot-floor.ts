// The floor of a function's boot, run by Deno (bench/boot.ts): an empty Deno.serve that opens one
// database connection with the postgres.js llm-invoke pins (supabase/functions/_shared/deno.json),
// runs `select 1` on the first request (llm-invoke also opens its pool on first use), and answers by
// calling Google (the simulator) with fetch. Whatever llm-invoke needs beyond this is its own cost.
//
// The environment is llm-invoke's: PORT, SUPABASE_DB_URL, GOOGLE_AI_BASE_URL and the key in
// GOOGLE_BENCH_SIM_KEY. Run from the repository root, so the Deno workspace there resolves the
// npm: import from node_modules as it does for the functions.

// @ts-ignore: a Deno npm: specifier, which tsc (Node types) cannot resolve and deno check can
import postgres from "npm:postgres@3.4.9";

// tsc sees this file with Node's types only; under Deno the global is there.
declare const Deno: {
  env: { get(name: string): string | undefined };
  serve(options: { hostname: string; port: number }, handler: (req: Request) => Promise<Response>): unknown;
};

const env = (name: string) => Deno.env.get(name) ?? "";
const googleUrl = env("GOOGLE_AI_BASE_URL").replace(/\/+$/, "");
const googleKey = env("GOOGLE_BENCH_SIM_KEY");

let sql: ((strings: TemplateStringsArray) => Promise<unknown>) | null = null;

async function answer(req: Request): Promise<Response> {
  const { model, prompt } = (await req.json()) as { model: string; prompt: string };
  if (sql === null) {
    sql = postgres(env("SUPABASE_DB_URL"), { max: 1 }) as (strings: TemplateStringsArray) => Promise<unknown>;
    await sql`select 1`;
  }
  const google = await fetch(`${googleUrl}/v1beta/models/${encodeURIComponent(model)}:generateContent`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": googleKey },
    body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: prompt }] }] }),
  });
  return new Response(await google.text(), { status: google.status, headers: { "content-type": "application/json" } });
}

Deno.serve({ hostname: "127.0.0.1", port: Number(env("PORT") || "8000") }, answer);
