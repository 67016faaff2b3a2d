// The expected wait a queued request is told matches the wait it gets. Over HTTP with the real
// function, PostgreSQL and the simulator: requests queue on the native stream (the events the Python
// client's `progress=True` prints), and each one's first `queued` event names when its turn is
// expected; the database records when it was booked. The two agree within one interval (the window
// over the limit: the time between two slots), behind a window filled at once and behind a spread one.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, someoneWaits, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const MODEL = "gemma-3-27b-it";
/** The gateway's window: 60 s and the default minute guard. */
const WINDOW_MS = 61_000;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_expected_wait", {
    keys: [{ alias: "ew-key", project: "proj-ew", priority: 1, simKey: "sim-key-ew" }],
  });
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_attempts`;
});

/** The model's limit, and no share: only the window (and its spread) decides here. */
async function limitOnly(rpm: number, spreadBurst: number | null): Promise<void> {
  await s.setLimit({ model: MODEL, rpm, spreadBurst });
  // After the limit: a change of the limit derives the class shares again.
  await s.sql`delete from public.google_ai_quota_shares where model = ${MODEL}`;
}

interface Queued {
  requestId: string;
  /** The first `queued` event's expected turn (null: admitted without waiting). */
  expectedAt: number | null;
  /** Why it waited, as the first `queued` event said. */
  cause: string | null;
  done: boolean;
}

/** One WAIT request on the native stream: its first `queued` event and whether it ended in `done`. */
async function streamOnce(requestId: string, priority?: "batch"): Promise<Queued> {
  const res = await fetch(s.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
    body: JSON.stringify({ model: MODEL, prompt: `wait ${requestId}`, stream: true, max_wait_ms: 90_000, request_id: requestId, priority }),
  });
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const out: Queued = { requestId, expectedAt: null, cause: null, done: false };
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const bytes of res.body!) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      buffer = buffer.slice(end + 2);
      if (data === "") continue;
      const event = JSON.parse(data) as { type: string; expected_at?: string; cause?: string };
      if (event.type === "queued" && out.expectedAt === null) {
        out.expectedAt = Date.parse(event.expected_at!);
        out.cause = event.cause ?? null;
      }
      if (event.type === "done") out.done = true;
    }
  }
  return out;
}

/** When the database booked each request (its attempt row's time), by request id. */
async function bookedAt(): Promise<Map<string, number>> {
  const rows = await s.sql<{ request_id: string; booked_at: Date }[]>`
    select request_id, min(created_at) as booked_at from public.google_ai_attempts
    where model = ${MODEL} and status not in ('refused', 'released') group by request_id`;
  return new Map(rows.map((r) => [r.request_id, r.booked_at.getTime()]));
}

describe("the expected wait a queued request is told", () => {
  it("behind a window filled at once: the turn expected about a window later is the turn it gets, within one interval", async () => {
    const rpm = 20;
    const interval = WINDOW_MS / rpm;
    await limitOnly(rpm, null);
    const fill = await Promise.all(Array.from({ length: rpm }, (_, i) =>
      s.call({ model: MODEL, prompt: `fill ${i}`, mode: "NO_WAIT", request_id: `fill-${i}` })));
    expect(fill.map((r) => r.status)).toEqual(Array(rpm).fill(200));

    const waiter = await streamOnce("waiter");
    expect(waiter.done).toBe(true);
    expect(waiter.expectedAt).not.toBeNull();
    expect(waiter.cause).toBe("window_full");
    const booked = await bookedAt();
    const firstFill = Math.min(...Array.from({ length: rpm }, (_, i) => booked.get(`fill-${i}`)!));
    // It waited for the window (the slot of the first fill comes back), and was told so.
    expect(booked.get("waiter")! - firstFill).toBeGreaterThanOrEqual(WINDOW_MS - interval);
    expect(Math.abs(booked.get("waiter")! - waiter.expectedAt!)).toBeLessThanOrEqual(interval);
  }, 150_000);

  it("behind a spread window while requests wait: five at once, each told its own step, each booked within one interval of it", async () => {
    const rpm = 30;
    const interval = WINDOW_MS / rpm;
    await limitOnly(rpm, 1);
    const leave = await someoneWaits(s.sql, MODEL);
    // Batch requests (the first class is not held by the schedule).
    const waiters = await Promise.all(Array.from({ length: 5 }, (_, i) => streamOnce(`spread-${i}`, "batch")));
    await leave();
    expect(waiters.every((w) => w.done)).toBe(true);
    const booked = await bookedAt();
    // One goes at once; the other four queue for the schedule's next steps.
    const queued = waiters.filter((w) => w.expectedAt !== null);
    expect(queued.length).toBeGreaterThanOrEqual(4);
    for (const w of queued) {
      expect(w.cause).toBe("spread");
      expect(Math.abs(booked.get(w.requestId)! - w.expectedAt!), w.requestId).toBeLessThanOrEqual(interval);
    }
  }, 150_000);
});
