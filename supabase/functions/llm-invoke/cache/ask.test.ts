import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import { cacheAskOf, cacheHeaders } from "./ask.ts";

const ask = (headers: Record<string, string>) => cacheAskOf(new Headers(headers));

describe("what a request asks of the response cache", () => {
  it("on, refresh, no-store, or the owner's default when it says nothing; a lifetime in seconds", () => {
    expect(ask({})).toEqual({ mode: "default" });
    expect(ask({ "x-eve-cache": "ON" })).toEqual({ mode: "on" });
    expect(ask({ "x-eve-cache": "refresh", "x-eve-cache-ttl": "600" })).toEqual({ mode: "refresh", ttlS: 600 });
    expect(ask({ "x-eve-cache": "no-store" })).toEqual({ mode: "no-store" });
  });

  it("anything else is a 400 naming the header", () => {
    const bad: Record<string, string>[] = [
      { "x-eve-cache": "yes" },
      { "x-eve-cache-ttl": "1.5" },
      { "x-eve-cache-ttl": "0" },
      { "x-eve-cache-ttl": "99999999999" },
    ];
    for (const headers of bad) {
      let error: unknown;
      try {
        ask(headers);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).code).toBe("invalid_request");
      expect((error as GatewayError).message).toContain(Object.keys(headers)[0]!);
    }
  });

  it("the answer says the status, and a hit's age", () => {
    expect(cacheHeaders({ status: "hit", ageS: 12 })).toEqual({ "x-eve-cache-status": "hit", "x-eve-cache-age": "12" });
    expect(cacheHeaders({ status: "bypass" })).toEqual({ "x-eve-cache-status": "bypass" });
  });
});
