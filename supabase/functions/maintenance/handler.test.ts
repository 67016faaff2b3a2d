// The maintenance handler and run with fakes: who may call it, what each key outcome leads to, what is
// logged, and that no key ever appears in an answer or a log.
import { ServiceKeys } from "../_shared/auth.ts";
import { describe, expect, it, vi } from "vitest";
import { GatewayError } from "../_shared/errors.ts";
import { classifyGoogleHttpError } from "../_shared/providers/google/errors.ts";
import { createMaintenanceHandler, type MaintenanceHandlerDeps } from "./handler.ts";
import type { RunSummary } from "./run.ts";
import type { ActiveKey, KeyCheck, MaintenanceStore, RunLogEntry } from "./store.ts";
import { type ListOutcome, type ModelLister, upstreamFailure } from "../_shared/upstream/port.ts";
import { GATEWAY_VERSION } from "./version.ts";

const SERVICE_KEY = "sb_secret_maintenance_unit_test";
const GOOGLE_KEYS: Record<string, string> = {
  KEY_GOOD: "AIzaSyGOOD0000000000000000000000000000",
  KEY_REVOKED: "AIzaSyREVOKED000000000000000000000000",
  KEY_FLAKY: "AIzaSyFLAKY00000000000000000000000000",
};
const KEYS: ActiveKey[] = [
  { id: "00000000-0000-0000-0000-000000000001", key_alias: "good", env_var_name: "KEY_GOOD", quota_group: "proj-a" },
  {
    id: "00000000-0000-0000-0000-000000000002",
    key_alias: "revoked",
    env_var_name: "KEY_REVOKED",
    quota_group: "proj-b",
  },
  { id: "00000000-0000-0000-0000-000000000003", key_alias: "flaky", env_var_name: "KEY_FLAKY", quota_group: "proj-c" },
  {
    id: "00000000-0000-0000-0000-000000000004",
    key_alias: "nosecret",
    env_var_name: "KEY_UNSET",
    quota_group: "proj-d",
  },
];

function fakeStore(overrides: Partial<MaintenanceStore> = {}) {
  const checks: KeyCheck[] = [];
  const logs: RunLogEntry[] = [];
  const store: MaintenanceStore = {
    housekeeping: vi.fn(() =>
      Promise.resolve({
        ok: true,
        status: "succeeded" as const,
        log_id: 41,
        deleted_count: 7,
        more_pending: false,
        failed_steps: [],
      })
    ),
    activeKeys: vi.fn(() => Promise.resolve(KEYS)),
    recordKeyCheck: vi.fn((c: KeyCheck) => {
      checks.push(c);
      return Promise.resolve({
        ok: true,
        disabled: c.status === "invalid" && c.disable,
        removed: c.status === "invalid" ? 2 : 0,
      });
    }),
    cronJobs: vi.fn(() =>
      Promise.resolve([
        { job: "eve-gateway-counters-vacuum", schedule: "10 seconds", present: true },
        { job: "eve-gateway-housekeeping", schedule: "17 * * * *", present: true },
      ])
    ),
    spendYesterday: vi.fn(() =>
      Promise.resolve([{ provider: "openai", day: "2026-11-26", spend_usd: 1.25, calls: 40, calls_unpriced: 0 }])
    ),
    modelLifecycle: vi.fn(() =>
      Promise.resolve({
        checked: true,
        restored: [],
        withdrawn: [{
          model: "gemma-3-27b-it",
          withdrawn_at: "2026-11-23T10:00:00Z",
          message: "gone",
          successor: "gemma-4-31b-it",
          provider: "google",
        }],
        missing: ["gemini-1.0-pro"],
        shutting_down: [{ model: "gemini-2.5-flash", shutdown_date: "2026-12-01", days_left: 8, successor: "gemini-3.5-flash-lite" }],
        unserved: ["gemini-3.8-flash"],
      })
    ),
    catalogueStatus: vi.fn(() =>
      Promise.resolve([
        {
          model: "gemma-3-27b-it",
          is_active: true,
          keys_checked: 1,
          keys_listing: 1,
          quota_groups: ["proj-a"],
          input_token_limit: 131072,
          output_token_limit: 8192,
          catalogue_status: "listed" as const,
        },
        {
          model: "gemini-1.0-pro",
          is_active: true,
          keys_checked: 1,
          keys_listing: 0,
          quota_groups: [],
          input_token_limit: null,
          output_token_limit: null,
          catalogue_status: "unlisted" as const,
        },
      ])
    ),
    logRun: vi.fn((e: RunLogEntry) => {
      logs.push(e);
      return Promise.resolve(42);
    }),
    // In memory there is nothing to roll back: the run sees the same store.
    dryRun: <T>(work: (s: MaintenanceStore) => Promise<T>) => work(store),
    ...overrides,
  };
  return { store, checks, logs };
}

const lister: ModelLister = {
  list: vi.fn((apiKey: string): Promise<ListOutcome> => Promise.resolve(listOutcome(apiKey))),
};

function listOutcome(apiKey: string): ListOutcome {
  if (apiKey === GOOGLE_KEYS.KEY_GOOD) {
    return {
      ok: true,
      latencyMs: 5,
      models: [{
        model: "gemma-3-27b-it",
        display_name: "Gemma",
        version: "001",
        input_token_limit: 131072,
        output_token_limit: 8192,
        supported_methods: ["generateContent"],
      }],
    };
  }
  if (apiKey === GOOGLE_KEYS.KEY_REVOKED) {
    return {
      ok: false,
      latencyMs: 3,
      error: classifyGoogleHttpError(400, {
        error: {
          code: 400,
          status: "INVALID_ARGUMENT",
          message: `API key not valid. Please pass a valid API key. (${apiKey})`,
          details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" }],
        },
      }, { secrets: [apiKey] }),
    };
  }
  return {
    ok: false,
    latencyMs: 9,
    error: upstreamFailure("timeout", "Google did not answer within 15000 ms."),
  };
}

function build(overrides: Partial<MaintenanceHandlerDeps> = {}, store = fakeStore()) {
  const lines: string[] = [];
  const handler = createMaintenanceHandler({
    serviceKeys: new ServiceKeys([SERVICE_KEY]),
    store: () => store.store,
    providers: () => Promise.resolve({ providers: { google: { lister, secret: (name) => GOOGLE_KEYS[name] } } }),
    newRequestId: () => "rid-m",
    log: (l) => lines.push(l),
    ...overrides,
  });
  return { handler, lines, ...store };
}

function post(
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${SERVICE_KEY}` },
  method = "POST",
) {
  return new Request("http://127.0.0.1/maintenance", {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("who may call maintenance", () => {
  it.each([
    ["no credential", {}],
    ["a forged key", { authorization: "Bearer sb_secret_forged" }],
    ["a forged apikey", { apikey: "not-the-key" }],
    ["a scoped Kaggle token", { authorization: `Bearer evegw_tok_${"a".repeat(43)}` }],
    ["a Kaggle client secret", { authorization: `Bearer evegw_cs_${"a".repeat(43)}` }],
  ])("refuses %s with 401 JSON, before touching the database", async (_name, headers) => {
    const { handler, store } = build();
    const res = await handler(post({}, headers as Record<string, string>));
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    const body = await res.json();
    expect(body.error.code).toBe("unauthorized");
    expect(body.request_id).toBe("rid-m");
    expect(store.housekeeping).not.toHaveBeenCalled();
    expect(store.activeKeys).not.toHaveBeenCalled();
  });

  it("accepts the service key as apikey too", async () => {
    const { handler } = build();
    expect((await handler(post(undefined, { apikey: SERVICE_KEY }))).status).toBe(200);
  });

  it.each([
    ["GET", () => post(undefined, { authorization: `Bearer ${SERVICE_KEY}` }, "GET"), 405, "method_not_allowed"],
    ["a non-JSON body", () => post("{oops", { authorization: `Bearer ${SERVICE_KEY}` }), 400, "invalid_json"],
    ["an array", () => post([], { authorization: `Bearer ${SERVICE_KEY}` }), 400, "invalid_json"],
    ["an unknown field", () => post({ everything: true }), 400, "invalid_request"],
    ["a wrong type", () => post({ dry_run: "yes" }), 400, "invalid_request"],
    [
      "text/plain",
      () =>
        new Request("http://127.0.0.1/maintenance", {
          method: "POST",
          headers: { authorization: `Bearer ${SERVICE_KEY}`, "content-type": "text/plain" },
          body: "{}",
        }),
      415,
      "unsupported_media_type",
    ],
    ["a huge body", () => post({ source: "x".repeat(20_000) }), 413, "body_too_large"],
  ])("answers %s with a JSON error", async (_name, request, status, code) => {
    const { handler } = build();
    const res = await handler(request());
    expect(res.status).toBe(status);
    expect((await res.json()).error.code).toBe(code);
  });
});

describe("a maintenance run", () => {
  it("runs housekeeping, checks every key, acts on each outcome, flags unlisted models and logs the run", async () => {
    const { handler, checks, logs, lines } = build();
    const res = await handler(post());
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as RunSummary & { request_id: string };
    expect(body).toMatchObject({ status: "succeeded", run_id: 42, dry_run: false, request_id: "rid-m", version: GATEWAY_VERSION });
    expect(body.housekeeping).toMatchObject({ status: "succeeded", log_id: 41, deleted_count: 7 });
    expect(body.keys).toMatchObject({
      status: "checked",
      checked: 4,
      ok: ["good"],
      disabled: ["revoked"],
      missing_secret: ["nosecret"],
      errors: ["flaky"],
    });
    expect(body.catalogue).toMatchObject({ status: "refreshed", refreshed_keys: 1, unlisted: ["gemini-1.0-pro"] });
    // The life cycle after models.list: in the summary, and in words among the problems.
    expect(body.lifecycle).toMatchObject({ status: "reviewed", unserved: ["gemini-3.8-flash"],
      withdrawn: [{ model: "gemma-3-27b-it", successor: "gemma-4-31b-it" }] });
    expect(body.problems).toEqual(expect.arrayContaining([
      "model gemma-3-27b-it is withdrawn (Google answered 404 since 2026-11-23T10:00:00Z); successor gemma-4-31b-it",
      "model gemini-2.5-flash shuts down on 2026-12-01 (in 8 days); successor gemini-3.5-flash-lite",
    ]));

    checks.sort((a, b) => a.keyId.localeCompare(b.keyId)); // checked in parallel
    expect(checks.map((c) => [c.status, c.disable])).toEqual([["ok", false], ["invalid", true], ["error", false], [
      "missing_secret",
      false,
    ]]);
    expect(checks[0]!.models.map((m) => m.model)).toEqual(["gemma-3-27b-it"]);
    expect(checks[1]).toMatchObject({ httpStatus: 400, reason: "API_KEY_INVALID" });
    expect(checks[2]).toMatchObject({ reason: "timeout" });

    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({
      status: "succeeded",
      deletedCount: 2,
      tablesAffected: ["google_ai_api_keys", "google_ai_key_health", "google_ai_model_catalogue"],
    });
    expect(body.problems.join("\n")).toMatch(/revoked was taken out of rotation/);
    expect(body.problems.join("\n")).toMatch(/supabase secrets set KEY_UNSET=/);

    const everything = text + JSON.stringify(logs) + JSON.stringify(checks) + lines.join("\n");
    for (const key of [...Object.values(GOOGLE_KEYS), SERVICE_KEY]) expect(everything).not.toContain(key);
  });

  it("dry_run checks and reports, but disables nothing", async () => {
    const { handler, checks } = build();
    const body = await (await handler(post({ dry_run: true, housekeeping: false }))).json();
    expect(body.housekeeping).toEqual({ status: "not_run" });
    expect(body.keys.would_disable).toEqual(["revoked"]);
    expect(body.keys.disabled).toEqual([]);
    expect(checks.every((c) => c.disable === false)).toBe(true);
  });

  it("with keys: false only runs the housekeeping", async () => {
    const { handler, store } = build();
    const body = await (await handler(post({ keys: false }))).json();
    expect(body.keys).toEqual({ status: "not_run" });
    expect(store.activeKeys).not.toHaveBeenCalled();
  });

  it("reports a failed housekeeping as a failed run, still checks the keys and logs", async () => {
    const s = fakeStore({
      housekeeping: vi.fn(() =>
        Promise.resolve({
          ok: false,
          status: "failed" as const,
          log_id: 50,
          deleted_count: 0,
          failed_steps: ["expired_cooldowns"],
        })
      ),
    });
    const { handler, logs } = build({}, s);
    const body = await (await handler(post())).json();
    expect(body.status).toBe("failed");
    expect(body.keys.status).toBe("checked");
    expect(logs[0]!.status).toBe("failed");
    expect(body.problems[0]).toMatch(/expired_cooldowns/);
  });

  it("answers 503 when the database is down, and 503 when none is configured", async () => {
    const down = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432 (postgres://u:pw@db/x)"), {
      code: "ECONNREFUSED",
    });
    const s = fakeStore({
      housekeeping: vi.fn(() => Promise.reject(down)),
      activeKeys: vi.fn(() => Promise.reject(down)),
      logRun: vi.fn(() => Promise.reject(down)),
    });
    const { handler, lines } = build({}, s);
    const res = await handler(post());
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5"); // the one outage policy (_shared/envelope.ts)
    expect((await res.json()).error.code).toBe("unavailable");
    expect(lines.join("\n")).not.toContain("pw@");

    const { handler: none } = build({
      store: () => {
        throw new GatewayError("unavailable", "No database is configured (SUPABASE_DB_URL or GATEWAY_DB_URL).");
      },
    });
    expect((await none(post())).status).toBe(503);
  });

  it("answers 500 (logged, sanitized) for a bug", async () => {
    const s = fakeStore({ logRun: vi.fn(() => Promise.reject(new TypeError(`boom ${SERVICE_KEY}`))) });
    const { handler, lines } = build({}, s);
    const res = await handler(post());
    expect(res.status).toBe(500);
    expect((await res.json()).error.code).toBe("internal_error");
    expect(lines.join("\n")).toMatch(/boom/);
    expect(lines.join("\n")).not.toContain(SERVICE_KEY);
  });
});
