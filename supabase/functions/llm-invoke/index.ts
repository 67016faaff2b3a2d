// llm-invoke: the one door to Google AI. Wiring only; the handler lives in _shared/handler.ts.
import { serviceKeysFromEnv } from "../_shared/auth.ts";
import { GatewayError } from "../_shared/errors.ts";
import { createHandler } from "../_shared/handler.ts";

const env = (name: string) => Deno.env.get(name);

const handler = createHandler({
  serviceKeys: serviceKeysFromEnv(env),
  // The attempt loop over the database (reserve -> Google -> finalize) is the next stage.
  invoke: () => Promise.reject(new GatewayError("unavailable", "llm-invoke is not connected to the database yet.")),
});

// Under Supabase's Edge Runtime the platform owns the listener; under plain Deno (local server,
// tests) we listen on PORT, on loopback only.
if ("EdgeRuntime" in globalThis) {
  Deno.serve(handler);
} else {
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(env("PORT") ?? "8000"),
    onListen: ({ port }) => console.log(`llm-invoke listening on http://127.0.0.1:${port}`),
  }, handler);
}
