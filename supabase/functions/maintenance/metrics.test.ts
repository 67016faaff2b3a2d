// The metrics route with a fake database: who may scrape (Basic service_role + the service key, or the
// key as bearer), that a refused scraper never reaches the database, and the answer's type.
import { describe, expect, it, vi } from "vitest";
import { ServiceKeys } from "../_shared/auth.ts";
import { createMaintenanceHandler } from "./handler.ts";
import { isMetricsPath, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { createPgMetricsSource } from "./metrics-store.ts";
import { GATEWAY_VERSION } from "./version.ts";
import type { MaintenanceStore } from "./store.ts";

const SERVICE_KEY = "sb_secret_metrics_unit_test";
const URL_ = "http://localhost/functions/v1/maintenance/metrics";
const TEXT = "# HELP eve_gateway_attempts_total x\n# TYPE eve_gateway_attempts_total counter\n";

function handler() {
  const text = vi.fn(() => Promise.resolve(TEXT));
  const store = vi.fn((): MaintenanceStore => {
    throw new Error("the metrics route must not open the maintenance store");
  });
  const handle = createMaintenanceHandler({
    serviceKeys: new ServiceKeys([SERVICE_KEY]),
    store,
    metrics: () => ({ text }),
    providers: () => Promise.resolve({ providers: {} }),
    logRequest: () => {},
    log: () => {},
  });
  return { handle, text, store };
}

const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

describe("GET /maintenance/metrics", () => {
  it("answers Prometheus' text to Basic service_role with the service key, and to the key as bearer", async () => {
    for (const authorization of [basic("service_role", SERVICE_KEY), `Bearer ${SERVICE_KEY}`]) {
      const { handle, text } = handler();
      const res = await handle(new Request(URL_, { headers: { authorization } }));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(await res.text()).toBe(TEXT);
      expect(text).toHaveBeenCalledTimes(1);
    }
  });

  it("refuses anyone else with a JSON 401 and a Basic challenge, before the database", async () => {
    const refused: Record<string, string>[] = [
      {},
      { authorization: basic("service_role", "wrong") },
      { authorization: basic("postgres", SERVICE_KEY) },
      { authorization: basic("service_role", "") },
      { authorization: "Basic !!!not-base64" },
      { authorization: "Bearer evegw_tok_" + "A".repeat(43) },
      { apikey: "sb_publishable_x" },
    ];
    for (const headers of refused) {
      const { handle, text } = handler();
      const res = await handle(new Request(URL_, { headers }));
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
      const body = await res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe("unauthorized");
      expect(body.error.message).not.toContain(SERVICE_KEY);
      expect(text).not.toHaveBeenCalled();
    }
  });

  it("is GET only; the function's own route stays POST", async () => {
    const { handle } = handler();
    const post = await handle(new Request(URL_, { method: "POST", headers: { authorization: `Bearer ${SERVICE_KEY}` } }));
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    const get = await handle(new Request("http://localhost/functions/v1/maintenance", { headers: { authorization: `Bearer ${SERVICE_KEY}` } }));
    expect(get.status).toBe(405);
    expect(isMetricsPath("http://localhost/functions/v1/maintenance/metrics/")).toBe(true);
    expect(isMetricsPath("http://localhost/functions/v1/maintenance")).toBe(false);
  });

  it("a scrape names the gateway's version (eve_gateway_build_info) beside the database's samples", async () => {
    const rows = [{ family: "eve_gateway_attempts_total", sample: "eve_gateway_attempts_total", labels: "", value: "3" }];
    const sql = () => Promise.resolve(rows);
    const source = createPgMetricsSource({ run: (_what, work) => work(sql as never) });
    const text = await source.text();
    expect(text).toContain(`# TYPE eve_gateway_build_info gauge\neve_gateway_build_info{version="${GATEWAY_VERSION}"} 1\n`);
    expect(text).toContain("eve_gateway_attempts_total 3\n");
  });
});
