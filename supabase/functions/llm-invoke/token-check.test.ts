import { describe, expect, it } from "vitest";
import { cachedTokenCheck, type TokenCheck, type TokenChecker } from "./token-check.ts";

class CountingChecker implements TokenChecker {
  calls: Array<[string, number]> = [];
  constructor(private answers: Record<string, TokenCheck["status"]>) {}
  checkToken(tokenHash: string, refusals: number) {
    this.calls.push([tokenHash, refusals]);
    return Promise.resolve({ status: this.answers[tokenHash] ?? "token_invalid" });
  }
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
