// The floor of a gateway's added latency: an empty Deno.serve that answers through the same path as
// llm-invoke plus one database round trip, and does nothing else (no authentication, no validation,
// no estimate, no second statement). Per request it reads the body, runs one statement in one round
// trip (floor-statement.ts: the least an exact, durable, audited admission writes, committed), then
// calls Google's generateContent with fetch as llm-invoke's Google client does (same URL, headers,
// body, a deadline combined with the request's signal) and answers Google's body.
//
// Run with supabase/functions/_shared/deno.json as config, so `postgres` is the functions' pinned
// postgres.js, and with llm-invoke's environment in the benchmark (llm-invoke.ts functionEnv):
// SUPABASE_DB_URL, GOOGLE_AI_BASE_URL, the simulator's key in GOOGLE_BENCH_SIM_KEY, and PORT. The
// tables are created by the benchmark part (floor.ts). The gateway-overhead part serves it as the
// floor of added latency, the boot part boots it as the floor of a worker's boot.
import postgres from "postgres";
import { FLOOR_STATEMENT } from "./floor-statement.ts";

declare const Deno: {
  env: { get(name: string): string | undefined };
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): unknown;
};

const need = (name: string): string => {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

/** As llm-invoke's attempt deadline (settings.ts). */
const ATTEMPT_TIMEOUT_MS = 45_000;

const apiBase = `${need("GOOGLE_AI_BASE_URL").replace(/\/+$/, "")}/v1beta`;
const apiKey = need("GOOGLE_BENCH_SIM_KEY");

// The pool as the functions open theirs (_shared/db.ts createPool): same size by default, prepared
// statements, the same start-up parameters.
const sql = postgres(need("SUPABASE_DB_URL"), {
  max: 5,
  prepare: true,
  idle_timeout: 20,
  max_lifetime: 60 * 30,
  connect_timeout: 3,
  connection: { application_name: "bench-floor", statement_timeout: 5_000 },
  onnotice: () => {},
});

async function handle(req: Request): Promise<Response> {
  if (req.method !== "POST") return new Response("floor: POST a request", { status: 404 });
  const body = JSON.parse(await req.text()) as { model: string; prompt: string };

  await sql.unsafe(FLOOR_STATEMENT, [], { prepare: true });

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ATTEMPT_TIMEOUT_MS);
  try {
    const google = await fetch(`${apiBase}/models/${encodeURIComponent(body.model)}:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": apiKey },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: body.prompt }] }] }),
      signal: AbortSignal.any([deadline.signal, req.signal]),
    });
    const text = await google.text();
    JSON.parse(text); // read as any gateway must (usage); a body that is not JSON is an error
    return new Response(text, { status: google.status, headers: { "content-type": "application/json" } });
  } finally {
    clearTimeout(timer);
  }
}

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(need("PORT")),
  onListen: ({ port }) => console.log(`floor listening on http://127.0.0.1:${port}`),
}, async (req) => {
  try {
    return await handle(req);
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return Response.json({ error: message.slice(0, 300) }, { status: 502 });
  }
});
