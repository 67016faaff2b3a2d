// The circuit alone, with a probe the test answers: refused during the down interval, one probe after
// it that every caller waits for, and waits bounded by probeWaitMs and the caller's deadline.
import { describe, expect, it } from "vitest";
import { Circuit } from "./db-circuit.ts";

function setup(probeWaitMs = 1_000) {
  let t = 0;
  let probes = 0;
  let answer: (up: boolean) => void = () => {};
  const circuit = new Circuit({
    downForMs: 500,
    probeWaitMs,
    now: () => t,
    probe: () => (probes++, new Promise<boolean>((r) => (answer = r))),
  });
  return { circuit, advance: (ms: number) => void (t += ms), probes: () => probes, answer: (up: boolean) => answer(up) };
}

describe("Circuit", () => {
  it("admits every call while up, and refuses at once during the down interval without probing", async () => {
    const { circuit, advance, probes } = setup();
    expect(await circuit.admit()).toBe(true);
    expect(circuit.failed()).toBe(true);
    expect(circuit.failed()).toBe(false); // already down: not a new outage
    expect(await Promise.all([circuit.admit(), circuit.admit()])).toEqual([false, false]);
    advance(300);
    expect(circuit.retryInMs()).toBe(200);
    expect(probes()).toBe(0);
  });

  it("starts one probe after the interval; every caller meanwhile waits and goes on when it answers", async () => {
    const { circuit, advance, probes, answer } = setup();
    circuit.failed();
    advance(500);
    const burst = Array.from({ length: 12 }, () => circuit.admit());
    expect(circuit.state()).toBe("probing");
    answer(true);
    expect(await Promise.all(burst)).toEqual(Array(12).fill(true));
    expect(probes()).toBe(1);
    expect(circuit.state()).toBe("up");
  });

  it("refuses the waiting callers when the probe fails, and probes again only after a new interval", async () => {
    const { circuit, advance, probes, answer } = setup();
    circuit.failed();
    advance(500);
    const burst = Array.from({ length: 3 }, () => circuit.admit());
    answer(false);
    expect(await Promise.all(burst)).toEqual([false, false, false]);
    expect(circuit.state()).toBe("down");
    expect(await circuit.admit()).toBe(false);
    expect(probes()).toBe(1);
    advance(500);
    const next = circuit.admit();
    expect(probes()).toBe(2);
    answer(true);
    expect(await next).toBe(true);
  });

  it("bounds a caller's wait by its own deadline and by probeWaitMs from the probe's start", async () => {
    const { circuit, advance } = setup(20);
    circuit.failed();
    advance(500);
    expect(await circuit.admit(500)).toBe(false); // its deadline is now: no wait at all
    expect(await circuit.admit()).toBe(false); // waited for the probe 20 ms, no answer
    advance(20);
    expect(await circuit.admit()).toBe(false); // the probe is older than probeWaitMs: refused at once
    expect(circuit.state()).toBe("probing");
  });

  it("knows whether the server answered since a given time", () => {
    const { circuit, advance } = setup();
    advance(10);
    circuit.answered();
    expect(circuit.answeredSince(10)).toBe(true);
    expect(circuit.answeredSince(11)).toBe(false);
  });
});
