// The text of a scrape from the database's samples: every family's HELP and TYPE (even with no sample),
// values as the format writes them, sorted, and a family nobody described still exported.
import { describe, expect, it } from "vitest";
import { parseExposition } from "../../../shared/prometheus/exposition.ts";
import { METRIC_FAMILIES, metricsText } from "./metrics-text.ts";

describe("metricsText", () => {
  it("describes every family, even one without a sample", () => {
    const text = metricsText([]);
    const families = Object.keys(METRIC_FAMILIES);
    expect(parseExposition(text).types).toEqual(Object.fromEntries(families.map((f) => [f, METRIC_FAMILIES[f]!.kind])));
    for (const f of families) expect(text).toContain(`# HELP ${f} ${METRIC_FAMILIES[f]!.help}\n`);
  });

  it("writes values without trailing zeros, +Inf for infinity, samples sorted after their TYPE", () => {
    const text = metricsText([
      {
        family: "eve_gateway_wait_seconds",
        sample: "eve_gateway_wait_seconds_sum",
        labels: 'model="b"',
        value: "1.500",
      },
      {
        family: "eve_gateway_wait_seconds",
        sample: "eve_gateway_wait_seconds_bucket",
        labels: 'model="b",le="+Inf"',
        value: "3",
      },
      {
        family: "eve_gateway_wait_seconds",
        sample: "eve_gateway_wait_seconds_bucket",
        labels: 'model="a",le="+Inf"',
        value: "2",
      },
      { family: "eve_gateway_quota_limit", sample: "eve_gateway_quota_limit", labels: "", value: "Infinity" },
      {
        family: "eve_gateway_metrics_live_rows",
        sample: "eve_gateway_metrics_live_rows",
        labels: "",
        value: "100.000",
      },
      { family: "eve_gateway_keys", sample: "eve_gateway_keys", labels: 'health="ok"', value: "100" },
      { family: "eve_gateway_keys", sample: "eve_gateway_keys", labels: 'health="error"', value: "NaN" },
    ]);
    const lines = text.split("\n");
    const at = (line: string) => lines.indexOf(line);
    expect(at("eve_gateway_quota_limit +Inf")).toBe(at("# TYPE eve_gateway_quota_limit gauge") + 1);
    expect(at("eve_gateway_metrics_live_rows 100")).toBe(at("# TYPE eve_gateway_metrics_live_rows gauge") + 1);
    // An integer keeps its zeros; NaN is the format's own word.
    const keys = at("# TYPE eve_gateway_keys gauge");
    expect(lines.slice(keys + 1, keys + 3)).toEqual([
      'eve_gateway_keys{health="error"} NaN',
      'eve_gateway_keys{health="ok"} 100',
    ]);
    const wait = at("# TYPE eve_gateway_wait_seconds histogram");
    expect(lines.slice(wait + 1, wait + 4)).toEqual([
      'eve_gateway_wait_seconds_bucket{model="a",le="+Inf"} 2',
      'eve_gateway_wait_seconds_bucket{model="b",le="+Inf"} 3',
      'eve_gateway_wait_seconds_sum{model="b"} 1.5',
    ]);
    const types = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(types).toEqual([...types].sort());
  });

  it("exports the provider's families under their neutral names only", () => {
    const text = metricsText([]);
    expect(text).toContain("# TYPE eve_gateway_upstream_429_total counter\n");
    expect(text).not.toContain("eve_gateway_google_");
  });

  it("exports a family it has no description of as untyped rather than drop it", () => {
    const text = metricsText([{ family: "eve_gateway_new", sample: "eve_gateway_new", labels: 'a="1"', value: "7" }]);
    expect(text).toContain('# TYPE eve_gateway_new untyped\neve_gateway_new{a="1"} 7\n');
    expect(text).not.toContain("# HELP eve_gateway_new");
  });
});
