// The alert rules (docs/prometheus/eve-gateway-alerts.yml) with Prometheus' own tool: they load
// (`promtool check rules`), their unit tests pass (`promtool test rules`), and every alert has a
// unit test where it fires and one where it stays quiet. Without promtool: skipped, or failed in CI.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";
import { inCi, prometheusBinary } from "../support/prometheus.ts";

const dir = path.join(repoRoot, "docs", "prometheus");
const rulesFile = path.join(dir, "eve-gateway-alerts.yml");
const testsFile = path.join(dir, "eve-gateway-alerts.test.yml");
const promtool = prometheusBinary("promtool");

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(promtool!, args, { cwd: dir, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(promtool === null && !inCi)("alert rules", () => {
  it("promtool is installed (.ci/run installs Debian's prometheus package)", () => {
    expect(promtool, "promtool not found: apt-get install prometheus").not.toBeNull();
  });

  it("load in Prometheus (promtool check rules)", () => {
    const r = run(["check", "rules", rulesFile]);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it("pass their unit tests (promtool test rules)", () => {
    const r = run(["test", "rules", testsFile]);
    expect(r.output).toContain("SUCCESS");
    expect(r.status, r.output).toBe(0);
  });

  it("every alert has a unit test where it fires and one where it stays quiet", () => {
    const alerts = [...readFileSync(rulesFile, "utf8").matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]!);
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    // Each alert_rule_test entry: its alertname, then either `exp_alerts: []` or a list of alerts.
    const cases = [...readFileSync(testsFile, "utf8").matchAll(/alertname: (\w+)\n\s+exp_alerts:( \[\])?/g)]
      .map((m) => ({ alert: m[1]!, fires: m[2] === undefined }));
    const missing = alerts.flatMap((a) => [
      ...(cases.some((c) => c.alert === a && c.fires) ? [] : [`${a} never fires`]),
      ...(cases.some((c) => c.alert === a && !c.fires) ? [] : [`${a} never stays quiet`]),
    ]);
    expect(missing).toEqual([]);
  });
});
