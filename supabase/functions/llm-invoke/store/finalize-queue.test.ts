// The coalescer with a fake writer whose writes the test finishes by hand: nothing waits that finds
// nothing in flight, calls that meet a write go together in the next, a batch is capped, and a failed
// batch is written again call by call so only the bad call rejects (or, for a writer that says so, fails
// each of its calls, none written again).
import { describe, expect, it } from "vitest";
import { coalescingWriter, coalescingWriterByKey } from "./finalize-queue.ts";

interface Write {
  kind: "one" | "many";
  items: number[];
  finish: () => void;
  fail: (error: Error) => void;
}

/** A writer that answers each item doubled once its write is finished; `bad` items fail wherever they go. */
function fakeWriter(bad: ReadonlySet<number> = new Set()) {
  const writes: Write[] = [];
  const start = <R>(kind: Write["kind"], items: number[], answer: () => R) =>
    new Promise<R>((resolve, reject) => {
      writes.push({
        kind,
        items,
        finish: () => (items.some((i) => bad.has(i)) ? reject(new Error(`bad ${items.join(",")}`)) : resolve(answer())),
        fail: reject,
      });
    });
  return {
    writes,
    writer: {
      writeOne: (item: number) => start("one", [item], () => item * 2),
      writeMany: (items: readonly number[]) => start("many", [...items], () => items.map((i) => i * 2)),
    },
  };
}

const settled = () => new Promise((r) => setTimeout(r, 0));

describe("coalescingWriter", () => {
  it("writes a call that finds nothing in flight at once, alone, and those arriving during it in one second write", async () => {
    const { writes, writer } = fakeWriter();
    const write = coalescingWriter(writer);
    const first = write(1);
    // At once: no timer, no tick.
    expect(writes.map((w) => [w.kind, w.items])).toEqual([["one", [1]]]);
    const later = [write(2), write(3), write(4)];
    expect(writes).toHaveLength(1);
    writes[0]!.finish();
    expect(await first).toBe(2);
    await settled();
    expect(writes.map((w) => [w.kind, w.items])).toEqual([["one", [1]], ["many", [2, 3, 4]]]);
    writes[1]!.finish();
    expect(await Promise.all(later)).toEqual([4, 6, 8]);
    // Nothing in flight again: the next goes at once, alone.
    void write(5);
    expect(writes.at(-1)!.kind).toBe("one");
    expect(writes.at(-1)!.items).toEqual([5]);
  });

  it("caps a statement at maxBatch: the rest go in the next write", async () => {
    const { writes, writer } = fakeWriter();
    const write = coalescingWriter(writer, 3);
    const all = [1, 2, 3, 4, 5, 6].map((i) => write(i));
    writes[0]!.finish();
    await settled();
    expect(writes.map((w) => w.items)).toEqual([[1], [2, 3, 4]]);
    writes[1]!.finish();
    await settled();
    expect(writes.map((w) => w.items)).toEqual([[1], [2, 3, 4], [5, 6]]);
    writes[2]!.finish();
    expect(await Promise.all(all)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it("writes a failed batch again call by call: the others land, the bad one rejects alone", async () => {
    const { writes, writer } = fakeWriter(new Set([3]));
    const write = coalescingWriter(writer);
    const first = write(1);
    const batch = [write(2), write(3), write(4)].map((p) => p.then((v) => ({ v }), (e: Error) => ({ e: e.message })));
    writes[0]!.finish();
    await first;
    await settled();
    writes[1]!.finish(); // the batch holds 3: it fails
    await settled();
    expect(writes.slice(2).map((w) => [w.kind, w.items])).toEqual([["one", [2]], ["one", [3]], ["one", [4]]]);
    // A call arriving meanwhile waits for the retries (one round at a time).
    const after = write(7);
    expect(writes).toHaveLength(5);
    for (const w of writes.slice(2)) w.finish();
    expect(await Promise.all(batch)).toEqual([{ v: 4 }, { e: "bad 3" }, { v: 8 }]);
    await settled();
    expect(writes.at(-1)!.items).toEqual([7]);
    writes.at(-1)!.finish();
    expect(await after).toBe(14);
  });

  it("with failTogether, fails each call of a failed batch and writes none again (a reservation is never booked twice)", async () => {
    const { writes, writer } = fakeWriter(new Set([3]));
    const write = coalescingWriter({ ...writer, failTogether: true });
    const first = write(1);
    const batch = [write(2), write(3), write(4)].map((p) => p.then((v) => ({ v }), (e: Error) => ({ e: e.message })));
    writes[0]!.finish();
    await first;
    await settled();
    writes[1]!.finish();
    expect(await Promise.all(batch)).toEqual([{ e: "bad 2,3,4" }, { e: "bad 2,3,4" }, { e: "bad 2,3,4" }]);
    expect(writes).toHaveLength(2);
    const after = write(5); // the writer goes on
    await settled();
    writes.at(-1)!.finish();
    expect(await after).toBe(10);
  });

  it("rejects a lone call with its own error and keeps writing the calls after it", async () => {
    const { writes, writer } = fakeWriter();
    const write = coalescingWriter(writer);
    const first = write(1);
    const second = write(2);
    writes[0]!.fail(new Error("database down"));
    await expect(first).rejects.toThrow("database down");
    await settled();
    expect(writes[1]!.items).toEqual([2]);
    expect(writes[1]!.kind).toBe("one");
    writes[1]!.finish();
    expect(await second).toBe(4);
  });

  it("survives a writer that throws before it returns a promise", async () => {
    const write = coalescingWriter<number, number>({
      writeOne: (i) => {
        if (i === 1) throw new Error("sync");
        return Promise.resolve(i);
      },
      writeMany: (items) => Promise.resolve([...items]),
    });
    await expect(write(1)).rejects.toThrow("sync");
    expect(await write(2)).toBe(2);
  });
});

describe("coalescingWriterByKey", () => {
  it("never writes two keys' calls together; each key's calls go in flight beside the other's; no key: alone", async () => {
    const { writes, writer } = fakeWriter();
    // Odd and even items stand for two counter rows; 0 has none.
    const write = coalescingWriterByKey(writer, (i: number) => (i === 0 ? undefined : i % 2 === 1 ? "odd" : "even"));
    const all = [1, 2, 3, 4, 5, 6, 0].map((i) => write(i));
    // Both keys' first calls at once, side by side, and the keyless call alone at once too.
    expect(writes.map((w) => [w.kind, w.items])).toEqual([["one", [1]], ["one", [2]], ["one", [0]]]);
    for (const w of [...writes]) w.finish();
    await settled();
    expect(writes.slice(3).map((w) => [w.kind, w.items])).toEqual([["many", [3, 5]], ["many", [4, 6]]]);
    for (const w of writes.slice(3)) w.finish();
    expect(await Promise.all(all)).toEqual([2, 4, 6, 8, 10, 12, 0]);
  });
});
