// A child process that runs rate-limiter-flexible for the multi-process tests: own Node process, own
// pg pool, same table and key as its siblings. Driven over IPC by bench/lib/rlflex-procs.ts.
import { createRlflex } from "./rlflex.ts";
import { abortAt, type Burst, driveArrivals, fireAtOnce, waitForAdmission, type WaitRecord } from "./wait-client.ts";

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
  | ({ type: "burst-done" } & Burst)
  | { type: "wait-done"; records: WaitRecord[] }
  | { type: "error"; error: string };

const send = (m: WorkerMessage) => process.send!(m);

process.once("message", async (task: WorkerTask) => {
  try {
    // The parent created the table before starting the workers (createRlflexTable).
    const rl = await createRlflex(task.url, task.connections, task.points, { tableCreated: true });
    try {
      send({ type: "ready" });
      if (task.kind === "burst") {
        await new Promise<void>((resolve) => process.once("message", () => resolve()));
        send({ type: "burst-done", ...(await fireAtOnce(task.callers, () => rl.tryOnce(task.key))) });
      } else {
        const run = abortAt(task.stopAt);
        const policy = { jitterMs: task.jitterMs, maxWaitMs: task.maxWaitMs };
        const records = await driveArrivals(
          task.arrivals,
          (id) => waitForAdmission(id, () => rl.tryOnce(task.key), { ...policy, signal: run.signal }),
          task.ids,
        );
        run.clear();
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
