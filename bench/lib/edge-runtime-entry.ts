// llm-invoke as Supabase's Edge Runtime runs it, under plain Deno: this entry defines the one Edge
// Runtime global the function reads, `EdgeRuntime.waitUntil`, then imports the function's own
// index.ts unchanged. With the global present the function takes its production path: a success's
// finalize is handed to waitUntil and runs after the response, and serveFunction calls
// `Deno.serve(handler)` without a port (the listener comes from DENO_SERVE_ADDRESS here, from the
// platform on Supabase).
//
// waitUntil keeps each task referenced until it settles and logs a rejection. On SIGTERM the entry
// lets the tasks still running finish (as the Edge Runtime does before a worker goes), then prints
// one line, `waitUntil {"handed":n,"settled":n,"rejected":n}`, read by the benchmark to count the
// work that ran off the caller's path.
import { sanitizeError } from "../../supabase/functions/_shared/sanitize.ts";

declare const Deno: {
  addSignalListener(signal: "SIGTERM", handler: () => void): void;
  exit(code: number): never;
};

/** How long a stopping process waits for unfinished tasks. */
const DRAIN_MS = 3_000;

const running = new Set<Promise<void>>();
const counts = { handed: 0, settled: 0, rejected: 0 };

(globalThis as unknown as { EdgeRuntime: { waitUntil(task: Promise<unknown>): void } }).EdgeRuntime = {
  waitUntil(task) {
    counts.handed++;
    const kept: Promise<void> = Promise.resolve(task).then(
      () => {},
      (error) => {
        counts.rejected++;
        console.error(`waitUntil: a task rejected: ${sanitizeError(error, { maxLength: 300 })}`);
      },
    ).finally(() => {
      counts.settled++;
      running.delete(kept);
    });
    running.add(kept);
  },
};

Deno.addSignalListener("SIGTERM", () => {
  const drained = Promise.allSettled([...running]);
  const timeout = new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
  void Promise.race([drained, timeout]).then(() => {
    console.log(`waitUntil ${JSON.stringify(counts)}`);
    Deno.exit(0);
  });
});

// After the global is set: the function's modules see it when they are evaluated.
await import(new URL("../../supabase/functions/llm-invoke/index.ts", import.meta.url).href);
