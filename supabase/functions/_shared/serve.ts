// Starts a function's HTTP handler. Under Supabase's Edge Runtime the platform owns the listener;
// under plain Deno (the local functions server, tests) it listens on PORT, on loopback only.
export function serveFunction(name: string, handler: (req: Request) => Response | Promise<Response>): void {
  if ("EdgeRuntime" in globalThis) {
    Deno.serve(handler);
    return;
  }
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? "8000"),
    onListen: ({ port }) => console.log(`${name} listening on http://127.0.0.1:${port}`),
  }, handler);
}
