import { describe, expect, it } from "vitest";
import { cachedTokenCheck } from "./token-check.ts";
import type { TokenCheck, TokenChecker } from "../store/store.ts";

class CountingChecker implements TokenChecker {
  calls: Array<[string, number]> = [];
  constructor(private answers: Record<string, TokenCheck["status"]>) {}
  checkToken(tokenHash: string, refusals: number) {
    this.calls.push([tokenHash, refusals]);
    return Promise.resolve({ status: this.answers[tokenHash] ?? "token_invalid" });
  }
}

/** A checker whose look-ups wait until the test answers them, oldest first. */
class ControlledChecker implements TokenChecker {
  calls: Array<[string, number]> = [];
  private pending: Array<{ resolve: (c: TokenCheck) => void; reject: (e: unknown) => void }> = [];
  checkToken(tokenHash: string, refusals: number) {
    this.calls.push([tokenHash, refusals]);
    return new Promise<TokenCheck>((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  answer(status: TokenCheck["status"]) {
    this.pending.shift()!.resolve({ status });
  }
  fail(error: unknown) {
    this.pending.shift()!.reject(error);
  }
}

/** Lets promise callbacks already due run. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A cache on a controlled checker and clock whose token "good" was looked up (valid) at 0 ms. */
async function checkedOnce(options: { okTtlMs?: number; okStaleMs?: number } = {}) {
  const clock = { t: 0 };
  const checker = new ControlledChecker();
  const check = cachedTokenCheck(checker, { now: () => clock.t, ...options });
  const first = check("good");
  checker.answer("ok");
  expect((await first).status).toBe("ok");
  return { clock, checker, check };
}

describe("cachedTokenCheck", () => {
  it("a valid token's later requests make no round trip until the answer is 30 s old", async () => {
    let t = 0;
    const checker = new CountingChecker({ good: "ok" });
    const check = cachedTokenCheck(checker, { now: () => t });
    for (let i = 0; i < 50; i++) expect((await check("good")).status).toBe("ok");
    expect(checker.calls).toEqual([["good", 1]]);
    t = 30_000;
    await check("good");
    expect(checker.calls).toHaveLength(2);
  });

  it("an answer past its TTL still answers at once while one background look-up, counting nothing, refreshes it", async () => {
    const { clock, checker, check } = await checkedOnce();

    clock.t = 30_000;
    // Stale: answered without waiting, however long the refresh takes; one refresh for all of them.
    for (let i = 0; i < 20; i++) expect((await check("good")).status).toBe("ok");
    expect(checker.calls).toEqual([["good", 1], ["good", 0]]);
    checker.answer("ok");
    await settled();

    // Refreshed at 30 s: fresh again until 60 s.
    clock.t = 59_999;
    await check("good");
    expect(checker.calls).toHaveLength(2);
  });

  it("a refresh that finds the token revoked: the next requests are refused from the cache", async () => {
    const { clock, checker, check } = await checkedOnce();
    clock.t = 31_000;
    expect((await check("good")).status).toBe("ok"); // served stale; its reservation re-checks the token
    checker.answer("token_revoked");
    await settled();
    expect((await check("good")).status).toBe("token_revoked");
    expect((await check("good")).status).toBe("token_revoked");
    expect(checker.calls).toEqual([["good", 1], ["good", 0]]);
    // Those two cached refusals are counted by the next look-up (the refresh itself counted none).
    clock.t = 41_000;
    const next = check("good");
    checker.answer("token_revoked");
    await next;
    expect(checker.calls[2]).toEqual(["good", 3]);
  });

  it("a failed refresh keeps the answer, and a later request tries again", async () => {
    const { clock, checker, check } = await checkedOnce();
    clock.t = 30_000;
    await check("good");
    checker.fail(new Error("database down"));
    await settled();
    clock.t = 30_500;
    expect((await check("good")).status).toBe("ok");
    expect(checker.calls).toEqual([["good", 1], ["good", 0], ["good", 0]]);
  });

  it("after a long pause (TTL + stale window) the look-up is waited for again", async () => {
    const { clock, checker, check } = await checkedOnce({ okTtlMs: 30_000, okStaleMs: 60_000 });
    clock.t = 90_000;
    let done = false;
    const waited = check("good").then((c) => {
      done = true;
      return c;
    });
    await settled();
    expect(done).toBe(false);
    expect(checker.calls).toEqual([["good", 1], ["good", 1]]);
    checker.answer("token_expired");
    expect((await waited).status).toBe("token_expired");
  });

  it("a refused token costs one look-up per TTL, and the next look-up counts the cached refusals", async () => {
    let t = 0;
    const checker = new CountingChecker({ revoked: "token_revoked" });
    const check = cachedTokenCheck(checker, { now: () => t });
    for (let i = 0; i < 100; i++) expect((await check("revoked")).status).toBe("token_revoked");
    expect(checker.calls).toEqual([["revoked", 1]]);
    t = 10_000;
    await check("revoked");
    expect(checker.calls).toEqual([["revoked", 1], ["revoked", 100]]);
  });

  it("stays bounded: the oldest answer goes first", async () => {
    const checker = new CountingChecker({});
    const check = cachedTokenCheck(checker, { now: () => 0, maxEntries: 3 });
    for (const h of ["a", "b", "c", "d"]) await check(h);
    await check("d");
    await check("a"); // evicted when d came in: looked up again
    expect(checker.calls.map(([h]) => h)).toEqual(["a", "b", "c", "d", "a"]);
  });
});
