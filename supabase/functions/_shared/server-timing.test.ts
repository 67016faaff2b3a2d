import { describe, expect, it } from "vitest";
import { envelope } from "./envelope.ts";
import { GatewayError } from "./errors.ts";
import { parseServerTiming, PHASES, ServerTiming, untimed } from "./server-timing.ts";

/** A clock the test moves by hand. */
function manualClock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("ServerTiming", () => {
  it("lists only the phases reached, in a fixed order, then the total since it began", () => {
    const clock = manualClock();
    const timing = new ServerTiming(clock.now);
    clock.advance(1);
    let mark = timing.mark();
    clock.advance(2.5);
    timing.add("upstream", mark);
    mark = timing.mark();
    clock.advance(0.25);
    timing.add("auth", mark);
    expect(timing.header()).toBe("auth;dur=0.25, upstream;dur=2.5, total;dur=3.75");
  });

  it("sums a phase timed more than once (a reservation per attempt)", () => {
    const clock = manualClock();
    const timing = new ServerTiming(clock.now);
    for (const ms of [1.5, 2, 0.5]) {
      const mark = timing.mark();
      clock.advance(ms);
      timing.add("reserve", mark);
    }
    expect(parseServerTiming(timing.header())).toEqual({ reserve: 4, total: 4 });
  });

  it("names a phase reached in no time, rounds to two decimals and never goes negative", () => {
    const clock = manualClock();
    const timing = new ServerTiming(clock.now);
    timing.add("body", timing.mark());
    const mark = timing.mark();
    clock.advance(1 / 3);
    timing.add("wait", mark);
    timing.add("finalize", clock.now() + 5); // a mark from a clock that went back
    expect(timing.header()).toBe("body;dur=0, wait;dur=0.33, finalize;dur=0, total;dur=0.33");
  });

  it("follows the header's grammar: name;dur=<ms> entries, comma-separated", () => {
    const timing = new ServerTiming();
    for (const phase of PHASES) timing.add(phase, timing.mark());
    const value = timing.header();
    expect(value).toMatch(/^([a-z]+;dur=\d+(\.\d{1,2})?, )*total;dur=\d+(\.\d{1,2})?$/);
    expect(Object.keys(parseServerTiming(value))).toEqual(
      ["auth", "body", "reserve", "wait", "upstream", "finalize", "total"],
    );
    expect(PHASES).toEqual(["auth", "body", "reserve", "wait", "upstream", "finalize"]);
  });

  it("times work however it ends, and hands its result or its error on", async () => {
    const clock = manualClock();
    const timing = new ServerTiming(clock.now);
    await expect(timing.time("reserve", () => (clock.advance(1.5), Promise.resolve("booked")))).resolves.toBe("booked");
    const failure = new Error("refused");
    await expect(timing.time("reserve", () => (clock.advance(0.5), Promise.reject(failure)))).rejects.toBe(failure);
    expect(parseServerTiming(timing.header())).toEqual({ reserve: 2, total: 2 });
    await expect(untimed.time("wait", () => Promise.resolve(7))).resolves.toBe(7);
  });

  it("untimed records nothing", () => {
    expect(() => untimed.add("auth", untimed.mark())).not.toThrow();
  });
});

describe("parseServerTiming", () => {
  it("reads entries with other parameters and without a duration", () => {
    expect(parseServerTiming('db;desc="x";dur=1.25, cache, total;dur=3')).toEqual({ db: 1.25, cache: NaN, total: 3 });
    expect(parseServerTiming(null)).toEqual({});
  });
});

describe("the envelope's Server-Timing", () => {
  const build = (handle: Parameters<typeof envelope>[1], serverTiming = true) => {
    const clock = manualClock();
    const handler = envelope(
      { name: "llm-invoke", serverTiming, timingNow: clock.now, newRequestId: () => "r-1", logLine: () => {} },
      async (req, scope) => {
        clock.advance(1);
        return await handle(req, scope);
      },
    );
    return { handler, clock };
  };
  const post = () => new Request("http://x/", { method: "POST", body: "{}" });

  it("is on a success, with the phases the handler recorded", async () => {
    const { handler } = build((_req, scope) => {
      scope.timing.add("auth", scope.timing.mark());
      return Promise.resolve({ body: { ok: true } });
    });
    const res = await handler(post());
    expect(res.headers.get("server-timing")).toBe("auth;dur=0, total;dur=1");
  });

  it("is on an error answer and on a refused method (405), with the phases reached", async () => {
    const { handler } = build((_req, scope) => {
      scope.timing.add("body", scope.timing.mark());
      throw new GatewayError("invalid_request", "no");
    });
    const res = await handler(post());
    expect(res.status).toBe(400);
    expect(res.headers.get("server-timing")).toBe("body;dur=0, total;dur=1");
    const refused = await handler(new Request("http://x/", { method: "GET" }));
    expect(refused.status).toBe(405);
    expect(refused.headers.get("server-timing")).toBe("total;dur=0");
  });

  it("is on a stream's headers, as it stood when the stream began", async () => {
    const { handler } = build(() => Promise.resolve({ stream: new ReadableStream(), headers: {} }));
    const res = await handler(post());
    expect(res.headers.get("server-timing")).toBe("total;dur=1");
    await res.body?.cancel();
  });

  it("is absent where a function does not ask for it", async () => {
    const { handler } = build(() => Promise.resolve({ body: {} }), false);
    expect((await handler(post())).headers.has("server-timing")).toBe(false);
  });
});
