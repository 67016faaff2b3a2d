// Finalizes riding with reservations, with a fake writer whose writes the test finishes by hand: one that
// comes while no reservation is under way goes at once by itself; one that comes while one is waits for the
// next CALL to take it, and goes by itself when the last reservation ends untaken; a CALL that could not
// write those it took has each written by itself; per caller, only the caller's own ride with it.
import { describe, expect, it } from "vitest";
import { finalizeRiders, finalizeRidersByKey } from "./riders.ts";

/** Writes by itself, answered by hand: `finish(i)` answers the i-th write. */
function fakeAlone() {
  const writes: { item: number; finish: () => void; fail: (e: Error) => void }[] = [];
  const alone = (item: number) =>
    new Promise<string>((resolve, reject) =>
      writes.push({ item, finish: () => resolve(`alone ${item}`), fail: reject })
    );
  return { writes, alone };
}

const settled = () => new Promise((r) => setTimeout(r, 0));

describe("finalizeRiders", () => {
  it("writes a finalize by itself at once when no reservation is under way", async () => {
    const { writes, alone } = fakeAlone();
    const riders = finalizeRiders(alone, 4);
    const answer = riders.finalize(1);
    expect(writes.map((w) => w.item)).toEqual([1]);
    expect(riders.take()).toEqual([]);
    writes[0]!.finish();
    expect(await answer).toBe("alone 1");
  });

  it("keeps finalizes for the next reservation CALL while one is under way, at most max a CALL, oldest first", async () => {
    const { writes, alone } = fakeAlone();
    const riders = finalizeRiders(alone, 2);
    const end = riders.begin();
    const answers = [1, 2, 3].map((i) => riders.finalize(i));
    expect(writes).toEqual([]);
    const taken = riders.take();
    expect(taken.map((r) => r.item)).toEqual([1, 2]);
    riders.settle(taken, ["rode 1", "rode 2"]);
    expect(await answers[0]).toBe("rode 1");
    expect(await answers[1]).toBe("rode 2");
    // The last reservation ends with one untaken: it goes by itself.
    end();
    end(); // (ending twice counts once)
    await settled();
    expect(writes.map((w) => w.item)).toEqual([3]);
    writes[0]!.finish();
    expect(await answers[2]).toBe("alone 3");
  });

  it("waits for every reservation under way, not the first to end", async () => {
    const { writes, alone } = fakeAlone();
    const riders = finalizeRiders(alone, 4);
    const [a, b] = [riders.begin(), riders.begin()];
    const answer = riders.finalize(7);
    a();
    await settled();
    expect(writes).toEqual([]);
    b();
    await settled();
    expect(writes.map((w) => w.item)).toEqual([7]);
    writes[0]!.finish();
    expect(await answer).toBe("alone 7");
  });

  it("writes by itself each finalize a CALL could not write (no answers, or not one each), each caller hearing its own", async () => {
    const { writes, alone } = fakeAlone();
    const riders = finalizeRiders(alone, 4);
    riders.begin();
    const answers = [1, 2, 3].map((i) => riders.finalize(i));
    const taken = riders.take();
    riders.settle(taken.slice(0, 2), null);
    await settled();
    expect(writes.map((w) => w.item)).toEqual([1, 2]);
    writes[0]!.finish();
    writes[1]!.fail(new Error("bad 2"));
    expect(await answers[0]).toBe("alone 1");
    await expect(answers[1]).rejects.toThrow("bad 2");
    riders.settle(taken.slice(2), ["one", "two"]); // a wrong count: none taken as answered
    await settled();
    expect(writes.map((w) => w.item)).toEqual([1, 2, 3]);
  });
});

describe("finalizeRidersByKey", () => {
  it("lets a caller's finalizes ride only with its own reservations; another caller's, or one of no known caller, goes by itself", async () => {
    const { writes, alone } = fakeAlone();
    const riders = finalizeRidersByKey(alone, 4);
    const end = riders.begin("service bot");
    const own = riders.finalize("service bot", 1);
    const other = riders.finalize("token t1", 2);
    const unknown = riders.finalize(undefined, 3);
    expect(writes.map((w) => w.item)).toEqual([2, 3]);
    expect(riders.take("token t1")).toEqual([]);
    const taken = riders.take("service bot");
    expect(taken.map((r) => r.item)).toEqual([1]);
    riders.settle(taken, ["rode 1"]);
    expect(await own).toBe("rode 1");
    writes.forEach((w) => w.finish());
    expect([await other, await unknown]).toEqual(["alone 2", "alone 3"]);
    // Ended, the caller's riders are gone: its next finalize goes at once.
    end();
    void riders.finalize("service bot", 4);
    expect(writes.map((w) => w.item)).toEqual([2, 3, 4]);
  });
});
