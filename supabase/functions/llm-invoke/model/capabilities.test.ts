// The model-row cache with an injected clock and a store whose answers the test releases: only a
// model's first use waits; a stale row is answered at once and refreshed once in the background; a
// failed refresh keeps the old row and is retried by a later request; unknown names are not kept.
import { describe, expect, it } from "vitest";
import { cachedProfiles } from "./capabilities.ts";
import type { ModelProfile } from "../contract.ts";

const TTL = 30_000;

const profile = (model: string, fallbackModels: string[] = []): ModelProfile => ({
  model,
  provider: "google",
  dialect: "google",
  active: true,
  supportsSystemInstruction: true,
  supportsJsonMode: true,
  supportsTools: true,
  fallbackModels,
});

/** A store whose every call waits until the test settles it (in call order). */
function heldStore() {
  const calls: { model: string; resolve: (v: ModelProfile | null) => void; reject: (e: Error) => void }[] = [];
  return {
    calls,
    modelProfile: (model: string) =>
      new Promise<ModelProfile | null>((resolve, reject) => calls.push({ model, resolve, reject })),
  };
}

function setup() {
  let t = 1_000_000;
  const store = heldStore();
  const get = cachedProfiles(store, { now: () => t }, TTL);
  return { store, get, advance: (ms: number) => void (t += ms) };
}

/** Lets settled store answers reach the cache. */
const settle = () => new Promise((r) => setTimeout(r, 0));

/** What `answer` settled to without the store answering anything: "waiting" if it waits for the store. */
const atOnce = <T>(answer: Promise<T>) => Promise.race([answer, settle().then(() => "waiting" as const)]);

/** The cache's row for `model`, warmed by one first use. */
async function warmed(model = "gemma") {
  const s = setup();
  const first = s.get(model);
  s.store.calls[0]!.resolve(profile(model));
  expect(await first).toEqual(profile(model));
  return s;
}

describe("cachedProfiles", () => {
  it("waits for a model's first use, then answers from the cache until the row is ttl old", async () => {
    const { store, get, advance } = await warmed();
    advance(TTL - 1);
    expect(await get("gemma")).toEqual(profile("gemma"));
    expect(store.calls).toHaveLength(1);
  });

  it("answers a stale row at once, without waiting for its refresh, and refreshes it exactly once", async () => {
    const { store, get, advance } = await warmed();
    advance(TTL);
    // The refresh is held: the answer cannot have waited for it.
    expect(await atOnce(get("gemma"))).toEqual(profile("gemma"));
    expect(store.calls).toHaveLength(2);

    store.calls[1]!.resolve(profile("gemma", ["gemini-2.5-flash"]));
    await settle();
    expect(await get("gemma")).toEqual(profile("gemma", ["gemini-2.5-flash"]));
    expect(store.calls).toHaveLength(2); // refreshed: fresh for another ttl
  });

  it("makes one refresh call for many concurrent stale hits", async () => {
    const { store, get, advance } = await warmed();
    advance(TTL + 5_000);
    const answers = await atOnce(Promise.all(Array.from({ length: 20 }, () => get("gemma"))));
    expect(answers).toEqual(Array.from({ length: 20 }, () => profile("gemma")));
    expect(store.calls).toHaveLength(2);
  });

  it("keeps serving the old row when a refresh fails, and a later request refreshes again", async () => {
    const { store, get, advance } = await warmed();
    advance(TTL);
    expect(await atOnce(get("gemma"))).toEqual(profile("gemma"));
    store.calls[1]!.reject(new Error("database unavailable"));
    await settle();
    // Still the old row, answered at once; this request starts the next refresh.
    expect(await atOnce(get("gemma"))).toEqual(profile("gemma"));
    expect(store.calls).toHaveLength(3);
    store.calls[2]!.resolve(profile("gemma", ["gemma-3-12b"]));
    await settle();
    expect(await get("gemma")).toEqual(profile("gemma", ["gemma-3-12b"]));
    expect(store.calls).toHaveLength(3);
  });

  it("keeps serving the old row when the store throws instead of rejecting", async () => {
    let t = 0;
    let calls = 0;
    const get = cachedProfiles(
      {
        modelProfile: (model) => {
          if (++calls > 1) throw new Error("driver threw");
          return Promise.resolve(profile(model));
        },
      },
      { now: () => t },
      TTL,
    );
    await get("gemma");
    t += TTL;
    expect(await get("gemma")).toEqual(profile("gemma"));
    await settle();
    expect(await get("gemma")).toEqual(profile("gemma"));
    expect(calls).toBe(3);
  });

  it("shares one look-up among concurrent first uses, and does not keep unknown models", async () => {
    const { store, get } = setup();
    const first = Promise.all([get("gemma"), get("gemma"), get("gemma")]);
    expect(store.calls).toHaveLength(1);
    store.calls[0]!.resolve(profile("gemma"));
    expect((await first).map((p) => p?.model)).toEqual(["gemma", "gemma", "gemma"]);

    const unknown = get("no-such-model");
    store.calls[1]!.resolve(null);
    expect(await unknown).toBeNull();
    const again = get("no-such-model");
    expect(store.calls).toHaveLength(3);
    store.calls[2]!.resolve(null);
    expect(await again).toBeNull();
  });

  it("drops a row that a refresh no longer finds: the next request looks the model up and waits", async () => {
    const { store, get, advance } = await warmed();
    advance(TTL);
    expect(await atOnce(get("gemma"))).toEqual(profile("gemma"));
    store.calls[1]!.resolve(null);
    await settle();
    const next = get("gemma");
    expect(store.calls).toHaveLength(3);
    store.calls[2]!.resolve(null);
    expect(await next).toBeNull();
  });

  it("a first use that fails reaches its caller, and the next request looks the model up again", async () => {
    const { store, get } = setup();
    const failed = get("gemma");
    store.calls[0]!.reject(new Error("database unavailable"));
    await expect(failed).rejects.toThrow("database unavailable");
    const next = get("gemma");
    expect(store.calls).toHaveLength(2);
    store.calls[1]!.resolve(profile("gemma"));
    expect(await next).toEqual(profile("gemma"));
  });

  it("stays bounded: past 100 models it starts over", async () => {
    let calls = 0;
    const get = cachedProfiles(
      {
        modelProfile: (model) => (calls++, Promise.resolve(profile(model))),
      },
      { now: () => 0 },
      TTL,
    );
    for (let i = 0; i <= 100; i++) await get(`m${i}`);
    expect(calls).toBe(101);
    await get("m100");
    expect(calls).toBe(101);
    await get("m0");
    expect(calls).toBe(102);
  });
});
