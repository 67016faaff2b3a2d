// Runs rate-limiter-flexible in several real child processes (Node + tsx), as several gateway
// instances or workers would, all on one Postgres table and one key.
import { fork } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRlflexTable } from "./rlflex.ts";
import type { WorkerMessage, WorkerTask } from "./rlflex-worker.ts";

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), "rlflex-worker.ts");
// tsx's loader by absolute URL, so the children start whatever the current directory is.
const TSX = import.meta.resolve("tsx");

type ProcHandle = ReturnType<typeof start>;

function start(task: WorkerTask) {
  const child = fork(WORKER, [], { execArgv: ["--import", TSX], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const queue: WorkerMessage[] = [];
  const waiters: ((m: WorkerMessage) => void)[] = [];
  child.on("message", (m: WorkerMessage) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  child.on("exit", (code) => {
    const m: WorkerMessage = { type: "error", error: `worker exited with code ${code}` };
    for (const w of waiters.splice(0)) w(m);
    queue.push(m);
  });
  child.send(task);
  return {
    child,
    next: () => new Promise<WorkerMessage>((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve))),
  };
}

/** The limiter's table in each database the workers use, created before any of them starts. */
async function createTables(tasks: WorkerTask[]): Promise<void> {
  for (const url of new Set(tasks.map((t) => t.url))) await createRlflexTable(url);
}

async function expect<T extends WorkerMessage["type"]>(p: ProcHandle, type: T): Promise<Extract<WorkerMessage, { type: T }>> {
  const m = await p.next();
  if (m.type !== type) throw new Error(`rate-limiter-flexible worker: expected ${type}, got ${m.type}${m.type === "error" ? `: ${m.error}` : ""}`);
  return m as Extract<WorkerMessage, { type: T }>;
}

function killAll(procs: ProcHandle[]): void {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill();
}

/** Every process opens its pool, then all fire their callers at once on a signal. */
export async function rlflexBurst(tasks: Extract<WorkerTask, { kind: "burst" }>[]) {
  await createTables(tasks);
  const procs = tasks.map(start);
  try {
    await Promise.all(procs.map((p) => expect(p, "ready")));
    for (const p of procs) p.child.send({ go: true });
    return await Promise.all(procs.map((p) => expect(p, "burst-done")));
  } finally {
    killAll(procs);
  }
}

/** Starts the WAIT workers; resolves once all are ready, with a promise of their records. */
export async function rlflexWaitStart(tasks: Extract<WorkerTask, { kind: "wait" }>[]) {
  await createTables(tasks);
  const procs = tasks.map(start);
  await Promise.all(procs.map((p) => expect(p, "ready")));
  return {
    done: async () => {
      try {
        const out = await Promise.all(procs.map((p) => expect(p, "wait-done")));
        return out.flatMap((m) => m.records);
      } finally {
        killAll(procs);
      }
    },
    close: async () => killAll(procs),
  };
}
