// Each provider's day end on the maintenance function's /metrics route, served by Deno against a real
// database: a provider added by rows whose day turns in UTC (kiwiai, neither Google nor OpenAI) ends its
// day at the next 00:00Z, Google at the next Pacific midnight, each under its row's name; the callers'
// Pacific day end stays beside them; and a model's day count carries its provider, the label the
// daily-quota alert (docs/prometheus/eve-gateway-alerts.yml) matches it with its provider's day end by.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionsServer } from "../../scripts/serve-functions.ts";
import { type Exposition, parseExposition } from "../../shared/prometheus/exposition.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { serveMaintenance } from "./serve-maintenance.ts";

const SERVICE_KEY = "sb_secret_maintenance_day_end_test_0123456789";
const HOUR = 3600;

let db: TestDatabase;
let server: FunctionsServer;
let url: string;

beforeAll(async () => {
  db = await freshDatabase("maintenance_day_end");
  await db.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
               values ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC')`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, priority, project_id)
               values ('kiwi-key', 'kiwiai', 'KIWI_KEY', 1, 'org-kiwi')`;
  await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, rpd) values ('kiwi-1', 'kiwiai', 60, 100)`;
  ({ server, url } = await serveMaintenance({ dbUrl: db.url, serviceKey: SERVICE_KEY, env: {} }));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

async function scrape(): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${SERVICE_KEY}` } });
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** The next midnight of `zone` after `at`, in s since the epoch (the zones here move by whole hours). */
function nextMidnight(at: Date, zone: string): number {
  const clock = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  for (let t = Math.floor(at.getTime() / (HOUR * 1000)) * HOUR * 1000 + HOUR * 1000; ; t += HOUR * 1000) {
    if (clock.format(new Date(t)) === "00:00") return t / 1000;
  }
}

const dayEnds = (e: Exposition) =>
  Object.fromEntries(e.samples.filter((s) => s.name === "eve_gateway_provider_day_end_timestamp_seconds")
    .map((s) => [s.labels.provider!, s.value]));

describe("a provider's day end on /metrics", () => {
  it("each provider's day ends at its row's zone's next midnight: kiwiai (UTC) at 00:00Z, Google at Pacific's", async () => {
    const before = new Date();
    const m = await scrape();
    const after = new Date();
    // The day ends the scrape may show (two only if it straddled that zone's midnight).
    const ends = (zone: string) => [nextMidnight(before, zone), nextMidnight(after, zone)];
    const shown = dayEnds(m);
    expect(Object.keys(shown).sort()).toEqual(["anthropic", "google", "kiwiai", "openai"]);
    expect(ends("UTC")).toContain(shown.kiwiai);
    expect(ends("UTC")).toContain(shown.openai);
    expect(ends("America/Los_Angeles")).toContain(shown.google);
    // Not the same instant: Pacific midnight is 7 or 8 hours after a UTC midnight.
    expect([7, 8].map((h) => h * HOUR)).toContain((shown.google! - shown.kiwiai! + 24 * HOUR) % (24 * HOUR));
    // The callers' budgets keep the owner's Pacific day, whatever the providers' days.
    const pacific = m.samples.filter((s) => s.name === "eve_gateway_pacific_day_end_timestamp_seconds");
    expect(pacific).toHaveLength(1);
    expect(ends("America/Los_Angeles")).toContain(pacific[0]!.value);
    expect(m.types.eve_gateway_provider_day_end_timestamp_seconds).toBe("gauge");
  });

  it("a model's day count and limit carry its provider's row name, the label its day end has", async () => {
    const m = await scrape();
    const kiwi = m.samples.filter((s) => s.name.startsWith("eve_gateway_quota_") &&
      s.labels.model === "kiwi-1" && s.labels.window === "day");
    expect(kiwi.map((s) => [s.name, s.labels.provider, s.labels.quota_group, s.value]).sort()).toEqual([
      ["eve_gateway_quota_limit", "kiwiai", "org-kiwi", 100],
      ["eve_gateway_quota_used", "kiwiai", "org-kiwi", 0],
    ]);
    const gemma = m.samples.find((s) => s.name === "eve_gateway_quota_limit" && s.labels.model === "gemma-3-27b-it");
    expect(gemma?.labels.provider).toBe("google");
  });

  // At 06:00Z kiwiai's day ends 18 hours later, Google's 2 hours later in winter (PST), 1 in summer (PDT).
  it("at one instant, in winter and in summer", async () => {
    const at = async (instant: string) =>
      Object.fromEntries((await db.sql<{ labels: string; value: string }[]>`
        select labels, value::text from public.google_ai_metric_quota(${instant}::timestamptz)
        where family = 'eve_gateway_provider_day_end_timestamp_seconds'`)
        .map((r) => [r.labels, new Date(Number(r.value) * 1000).toISOString()]));
    expect(await at("2026-11-28T06:00:00Z")).toMatchObject({
      'provider="kiwiai"': "2026-11-29T00:00:00.000Z",
      'provider="google"': "2026-11-28T08:00:00.000Z",
    });
    expect(await at("2026-07-01T06:00:00Z")).toMatchObject({
      'provider="kiwiai"': "2026-07-02T00:00:00.000Z",
      'provider="google"': "2026-07-01T07:00:00.000Z",
    });
  });
});
