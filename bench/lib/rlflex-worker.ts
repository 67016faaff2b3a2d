// A child process that runs rate-limiter-flexible for the multi-process tests: own Node process, own
// pg pool, same table and key as its siblings. Driven over IPC by bench/lib/rlflex-procs.ts.
import { setMaxListeners } from "node:events";
import { createRlflex } from "./rlflex.ts";
import { driveArrivals, waitForAdmission, type WaitRecord } from "./wait-client.ts";

export type WorkerTask =
  | { kind: "burst"; url: string; connections: number; points: number; key: string; callers: number }
  | {
    kind: "wait";
    url: string;
    connections: number;
    points: number;
    key: string;
    arrivals: number[];
    ids: number[];
    jitterMs: number;
    maxWaitMs: number;
    stopAt: number;
  };

export type WorkerMessage =
  | { type: "ready" }
  | { type: "burst-done"; admitted: number; refused: number; errors: number; firstError?: string; decidedAt: number[] }
  | { type: "wait-done"; records: WaitRecord[] }
  | { type: "error"; error: string };

const send = (m: WorkerMessage) => process.send!(m);

process.once("message", async (task: WorkerTask) => {
  try {
    // The parent created the table before starting the workers (createRlflexTable).
    const rl = await createRlflex(task.url, task.connections, task.points, { tableCreated: true });
    try {
      if (task.kind === "burst") {
        send({ type: "ready" });
        await new Promise<void>((resolve) => process.once("message", () => resolve()));
        let admitted = 0;
        let refused = 0;
        let errors = 0;
        let firstError: string | undefined;
        const decidedAt: number[] = [];
        await Promise.all(
          Array.from({ length: task.callers }, async () => {
            try {
              const r = await rl.tryOnce(task.key);
              if (r.ok) {
                admitted++;
                decidedAt.push(Date.now());
              } else refused++;
            } catch (error) {
              errors++;
              firstError ??= String(error);
            }
          }),
        );
        send({ type: "burst-done", admitted, refused, errors, ...(firstError ? { firstError } : {}), decidedAt });
      } else {
        send({ type: "ready" });
        const controller = new AbortController();
        setMaxListeners(0, controller.signal); // one listener per sleeping waiter
        const stop = setTimeout(() => controller.abort(), Math.max(0, task.stopAt - Date.now()));
        const records = await driveArrivals(
          task.arrivals,
          (id) => waitForAdmission(id, () => rl.tryOnce(task.key), { jitterMs: task.jitterMs, maxWaitMs: task.maxWaitMs, signal: controller.signal }),
          task.ids,
        );
        clearTimeout(stop);
        send({ type: "wait-done", records });
      }
    } finally {
      await rl.close();
    }
  } catch (error) {
    send({ type: "error", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
  process.disconnect();
});
