import { describe, expect, it } from "vitest";
import { withRequestLog } from "./request-log.ts";

describe("withRequestLog", () => {
  it("prints one JSON line per request with the outcome code, and hands the answer on untouched", async () => {
    const lines: string[] = [];
    let t = 0;
    const handler = withRequestLog("issue-kaggle-token", (req) =>
      Promise.resolve(
        req.method === "POST"
          ? new Response(JSON.stringify({ error: { code: "invalid_secret", message: "no" } }), {
            status: 401,
            headers: { "x-request-id": "r-1" },
          })
          : new Response("{}", { status: 200, headers: { "x-request-id": "r-2" } }),
      ), { log: (l) => lines.push(l), now: () => (t += 5) });
    const refused = await handler(new Request("http://x/", { method: "POST", body: "{}" }));
    expect(await refused.json()).toEqual({ error: { code: "invalid_secret", message: "no" } });
    await handler(new Request("http://x/"));
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { function: "issue-kaggle-token", request_id: "r-1", method: "POST", outcome: "invalid_secret", status: 401, latency_ms: 5 },
      { function: "issue-kaggle-token", request_id: "r-2", method: "GET", outcome: "ok", status: 200, latency_ms: 5 },
    ]);
  });
});
