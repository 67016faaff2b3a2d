// The run's providers as data: each provider's active keys are read by provider and sent to that
// provider's list with that provider's key reader only; a provider the run is not given is not read.
import { describe, expect, it, vi } from "vitest";
import { classifyOpenAiHttpError } from "../_shared/providers/openai/errors.ts";
import type { Provider } from "../_shared/providers/registry.ts";
import { runMaintenance } from "./run.ts";
import type { ActiveKey, KeyCheck, MaintenanceStore } from "./store.ts";
import { type ListOutcome, type ModelLister } from "../_shared/upstream/port.ts";

const KEYS: Record<Provider, ActiveKey[]> = {
  google: [{ id: "00000000-0000-0000-0000-0000000000g1", key_alias: "g1", env_var_name: "GOOGLE_A", quota_group: "p" }],
  openai: [
    { id: "00000000-0000-0000-0000-0000000000o1", key_alias: "o1", env_var_name: "OPENAI_A", quota_group: "org-a" },
    { id: "00000000-0000-0000-0000-0000000000o2", key_alias: "o2", env_var_name: "OPENAI_GONE", quota_group: "org-b" },
  ],
};
const SECRETS: Record<string, string> = { GOOGLE_A: "g-secret", OPENAI_A: "sk-a", OPENAI_GONE: "sk-gone" };

function store() {
  const activeKeys = vi.fn((provider: Provider = "google") => Promise.resolve(KEYS[provider]));
  const s: MaintenanceStore = {
    housekeeping: vi.fn(),
    activeKeys,
    recordKeyCheck: vi.fn((c: KeyCheck) => {
      return Promise.resolve({ ok: true, disabled: c.status === "invalid" && c.disable, removed: 0 });
    }),
    // The catalogue's status is per provider: an OpenAI model no checked OpenAI key lists is unlisted.
    catalogueStatus: vi.fn(() =>
      Promise.resolve([{
        model: "gpt-4-32k",
        is_active: true,
        keys_checked: 2,
        keys_listing: 0,
        quota_groups: [],
        input_token_limit: null,
        output_token_limit: null,
        catalogue_status: "unlisted" as const,
      }])
    ),
    spendYesterday: vi.fn(() =>
      Promise.resolve([{ provider: "openai", day: "2026-11-26", spend_usd: 1.25, calls: 40, calls_unpriced: 0 }])
    ),
    modelLifecycle: vi.fn(() =>
      Promise.resolve({
        checked: true,
        restored: [],
        withdrawn: [{
          model: "gpt-4",
          withdrawn_at: "2026-11-20T00:00:00Z",
          message: null,
          successor: null,
          provider: "openai" as const,
        }],
        missing: ["gpt-4-32k"],
        shutting_down: [],
        unserved: [],
      })
    ),
    cronJobs: vi.fn(() =>
      Promise.resolve([
        { job: "eve-gateway-counters-vacuum", schedule: "10 seconds", present: true },
        { job: "eve-gateway-housekeeping", schedule: "17 * * * *", present: true },
      ])
    ),
    logRun: vi.fn(() => Promise.resolve(1)),
    dryRun: <T>(work: (x: MaintenanceStore) => Promise<T>) => work(s),
  };
  return { store: s, activeKeys };
}

/** A lister that records the keys it was given and answers ok, or 401 for `refuse`. */
function lister(refuse: string | null): ModelLister & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    list: (apiKey: string): Promise<ListOutcome> => {
      seen.push(apiKey);
      if (apiKey === refuse) {
        const body = {
          error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" },
        };
        return Promise.resolve({ ok: false, latencyMs: 1, error: classifyOpenAiHttpError(401, body, new Headers()) });
      }
      return Promise.resolve({ ok: true, latencyMs: 1, models: [] });
    },
  };
}

const options = { housekeeping: false, keys: true, dryRun: false, caller: "unit" };

describe("runMaintenance with providers", () => {
  it("sends each key to its own provider's list, read by its own provider's reader", async () => {
    const { store: s, activeKeys } = store();
    const google = lister(null);
    const openai = lister("sk-gone");
    const googleSecret = vi.fn((name: string) => name.startsWith("GOOGLE_") ? SECRETS[name] : undefined);
    const openaiSecret = vi.fn((name: string) => name.startsWith("OPENAI_") ? SECRETS[name] : undefined);
    const summary = await runMaintenance({
      store: s,
      providers: { google: { lister: google, secret: googleSecret }, openai: { lister: openai, secret: openaiSecret } },
    }, options);
    expect(activeKeys.mock.calls).toEqual([["google"], ["openai"]]);
    expect(google.seen).toEqual(["g-secret"]);
    expect(openai.seen.sort()).toEqual(["sk-a", "sk-gone"]);
    expect(googleSecret.mock.calls.flat()).toEqual(["GOOGLE_A"]);
    expect(openaiSecret.mock.calls.flat().sort()).toEqual(["OPENAI_A", "OPENAI_GONE"]);
    expect(summary.keys).toMatchObject({ checked: 3, ok: ["g1", "o1"], disabled: ["o2"] });
    if (summary.keys.status !== "checked") return;
    expect(summary.keys.results.map((r) => [r.key_alias, r.provider, r.status, r.reason])).toEqual([
      ["g1", "google", "ok", null],
      ["o1", "openai", "ok", null],
      ["o2", "openai", "invalid", "invalid_api_key"],
    ]);
    // Another provider's unlisted model is a problem too, and a withdrawn one names who answered 404.
    expect(summary.catalogue).toMatchObject({ unlisted: ["gpt-4-32k"] });
    expect(summary.problems).toEqual(expect.arrayContaining([
      "model gpt-4-32k is configured but no checked key of its provider lists it any more",
      "model gpt-4 is withdrawn (OpenAI answered 404 since 2026-11-20T00:00:00Z)",
    ]));
  });

  it("says which pg_cron job is missing, in the schedule and the problems", async () => {
    const { store: s } = store();
    s.cronJobs = vi.fn(() =>
      Promise.resolve([
        { job: "eve-gateway-counters-vacuum", schedule: "10 seconds", present: true },
        { job: "eve-gateway-housekeeping", schedule: "17 * * * *", present: false },
      ])
    );
    const summary = await runMaintenance({ store: s, providers: {} }, { ...options, keys: false });
    expect(summary.schedule).toMatchObject({ status: "checked", missing: ["eve-gateway-housekeeping"] });
    expect(summary.problems).toEqual([
      "pg_cron job eve-gateway-housekeeping (17 * * * *) is not scheduled: enable pg_cron and schedule it as " +
      "docs/maintenance.md says (\"The schedule\")",
    ]);
    expect(summary.status, "a missing job is a problem to see, not a failed run").toBe("succeeded");
  });

  it("lists every model row that disagrees with its provider's stated limit among the problems", async () => {
    const { store: s } = store();
    s.limitDisagreements = vi.fn(() =>
      Promise.resolve([
        { model: "gpt-4o", quota_group: "org-a", limit: "rpm", mode: "keep" as const, row: 500, provider: 60,
          said_at: "2026-11-29T10:00:00Z", disagreement: "above" as const },
        { model: "claude-sonnet-4-5", quota_group: "org-c", limit: "rpm", mode: "follow" as const, row: 50,
          provider: 1000, said_at: null, disagreement: "ceiling" as const },
      ])
    );
    const summary = await runMaintenance({ store: s, providers: {} }, { ...options, keys: false });
    expect(summary.problems).toEqual([
      "model gpt-4o in quota group org-a keeps its own rpm 500, above what the provider states rpm 60 " +
      "(said 2026-11-29T10:00:00Z)",
      "model claude-sonnet-4-5 in quota group org-c follows its provider but its ceiling holds rpm below it: " +
      "the provider states rpm 1000",
    ]);
    expect(summary.status, "a disagreement is a problem to see, not a failed run").toBe("succeeded");
  });

  it("reads no other provider's keys when the run is given Google's only", async () => {
    const { store: s, activeKeys } = store();
    const google = lister(null);
    await runMaintenance({ store: s, providers: { google: { lister: google, secret: (n) => SECRETS[n] } } }, options);
    expect(activeKeys.mock.calls).toEqual([["google"]]);
    expect(google.seen).toEqual(["g-secret"]);
  });
});
