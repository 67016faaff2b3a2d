// One maintenance run: housekeeping (SQL), then every active key checked against its own provider's
// model list (its provider row's, _shared/providers/directory.ts), each answer recorded (key health,
// catalogue, an invalid key out of rotation), then the configured models compared with the catalogue
// per provider. Returns the JSON summary and logs the run in google_ai_maintenance_log. Never holds a
// key longer than its own check; a key goes to its own provider only; no key ever reaches the summary,
// the log or the database (only aliases and env var names).
import { BUILT_IN_PROVIDERS, type Provider } from "../_shared/providers/registry.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import type {
  ActiveKey,
  CatalogueStatus,
  CronJob,
  HousekeepingResult,
  KeyCheck,
  KeyCheckStatus,
  LimitDisagreement,
  MaintenanceStore,
  ModelLifecycle,
  SpendDay,
} from "./store.ts";
import { type ModelLister } from "../_shared/upstream/port.ts";

export interface RunOptions {
  /** Run public.google_ai_housekeeping() first (default true; the pg_cron job sends false). */
  housekeeping: boolean;
  /** Check the keys and refresh the catalogue (default true). */
  keys: boolean;
  /** Check and report, but take no key out of rotation. */
  dryRun: boolean;
  /** Who asked (x-caller label, or the body's `source`), for the log. */
  caller: string;
}

/** How one provider's keys are checked: its model list, and its key reader (_shared/providers/key-reader.ts). */
export interface ProviderAccess {
  lister: ModelLister;
  /** The provider's key named by env_var_name, or undefined (unset, empty, or not one of its names). */
  secret: (envVarName: string) => string | undefined;
  /** Its display name, for messages (default: the provider's name). */
  who?: string;
  /** Why `secret` read no key for a name (key-reader.ts), for the key's message. */
  refusal?: (envVarName: string) => string;
}

export interface RunDeps {
  store: MaintenanceStore;
  /** The providers whose keys are checked (a provider not named here: its keys are left unchecked). */
  providers: Readonly<Record<Provider, ProviderAccess>>;
  /** Provider rows that could not be used, each message naming its row (reported as problems). */
  providerProblems?: readonly string[];
  /** Keys checked at once. */
  concurrency?: number;
  listTimeoutMs?: number;
  now?: () => Date;
}

export type KeyAction = "none" | "disabled" | "would_disable" | "already_inactive";

export interface KeyResult {
  provider: Provider;
  key_alias: string;
  env_var_name: string;
  quota_group: string;
  status: KeyCheckStatus;
  action: KeyAction;
  http_status: number | null;
  reason: string | null;
  message: string | null;
  models: number | null;
  latency_ms: number | null;
}

export interface RunSummary {
  status: "succeeded" | "failed";
  run_id: number | null;
  started_at: string;
  duration_ms: number;
  dry_run: boolean;
  housekeeping:
    | { status: "not_run" }
    | { status: "failed"; error: string }
    | (Pick<HousekeepingResult, "status" | "deleted_count" | "more_pending" | "failed_steps"> & {
      /** The housekeeping's own log row; null in a dry run (rolled back). */
      log_id: number | null;
    });
  keys:
    | { status: "not_run" }
    | { status: "failed"; error: string }
    | {
      status: "checked";
      checked: number;
      ok: string[];
      disabled: string[];
      would_disable: string[];
      missing_secret: string[];
      errors: string[];
      results: KeyResult[];
    };
  catalogue:
    | { status: "not_run" }
    | {
      status: "refreshed" | "failed";
      refreshed_keys: number;
      models: Pick<
        CatalogueStatus,
        "model" | "catalogue_status" | "keys_listing" | "input_token_limit" | "output_token_limit"
      >[];
      /** Configured active models that no checked active key of their provider lists any more. */
      unlisted: string[];
      error?: string;
    };
  /** The models' life cycle after this run's lists, per provider (withdrawn, missing, shutting down, unserved). */
  lifecycle: { status: "not_run" } | { status: "failed"; error: string } | ({ status: "reviewed" } & ModelLifecycle);
  /** What each provider's yesterday cost (null: not read, see problems). */
  spend_yesterday: SpendDay[] | null;
  /**
   * The pg_cron jobs the gateway expects (google_ai_cron_jobs): each present or missing, and the names of
   * the missing ones. A migration cannot say one is missing (`supabase db push` prints no NOTICE): here it is.
   */
  schedule: { status: "checked"; jobs: CronJob[]; missing: string[] } | { status: "failed"; error: string };
  /** What an operator should look at, in words. */
  problems: string[];
}

export const DEFAULT_CONCURRENCY = 4;

/** A provider's display name: its access's, else a built-in row's, else its name. */
function whoIs(deps: Pick<RunDeps, "providers">, provider: Provider): string {
  return deps.providers[provider]?.who ?? BUILT_IN_PROVIDERS.find((r) => r.name === provider)?.display_name ?? provider;
}

/** An active key with its provider, and how that provider is reached. */
type ProviderKey = ActiveKey & ProviderAccess & { provider: Provider };

export async function runMaintenance(deps: RunDeps, options: RunOptions): Promise<RunSummary> {
  // A dry run does everything a real run does, inside one transaction that is rolled back: the counts
  // are what a real run would delete now, and no row changes (not even the run's own log row).
  if (options.dryRun) {
    return await deps.store.dryRun((store) => runOnce({ ...deps, store }, options));
  }
  return await runOnce(deps, options);
}

async function runOnce(deps: RunDeps, options: RunOptions): Promise<RunSummary> {
  const now = deps.now ?? (() => new Date());
  const started = now();
  const problems: string[] = [];
  const summary: RunSummary = {
    status: "succeeded",
    run_id: null,
    started_at: started.toISOString(),
    duration_ms: 0,
    dry_run: options.dryRun,
    housekeeping: { status: "not_run" },
    keys: { status: "not_run" },
    catalogue: { status: "not_run" },
    lifecycle: { status: "not_run" },
    spend_yesterday: null,
    schedule: { status: "failed", error: "not read" },
    problems,
  };
  let failed = false;
  const tables = new Set<string>();
  let removed = 0;

  if (options.housekeeping) {
    try {
      const hk = await deps.store.housekeeping();
      summary.housekeeping = {
        status: hk.status,
        log_id: options.dryRun ? null : hk.log_id,
        deleted_count: hk.deleted_count,
        more_pending: hk.more_pending,
        failed_steps: hk.failed_steps,
      };
      if (hk.status === "failed") {
        failed = true;
        problems.push(
          `housekeeping failed in step(s) ${(hk.failed_steps ?? []).join(", ")} (maintenance log id ${hk.log_id})`,
        );
      }
    } catch (error) {
      failed = true;
      const message = sanitizeError(error, { maxLength: 300 });
      summary.housekeeping = { status: "failed", error: message };
      problems.push(`housekeeping could not run: ${message}`);
    }
  }

  if (options.keys) {
    try {
      if (!(await checkKeys(deps, options, summary, tables, (n) => (removed += n)))) failed = true;
    } catch (error) {
      // The database failed under us (the key list, or recording a check): report what is known.
      failed = true;
      const message = sanitizeError(error, { maxLength: 300 });
      summary.keys = { status: "failed", error: message };
      problems.push(`the key checks could not complete: ${message}`);
    }
  }

  try {
    summary.spend_yesterday = await deps.store.spendYesterday();
  } catch (error) {
    problems.push(`yesterday's spend could not be read: ${sanitizeError(error, { maxLength: 300 })}`);
  }

  await listDisagreements(deps, problems);

  try {
    const jobs = await deps.store.cronJobs();
    const missing = jobs.filter((j) => !j.present);
    summary.schedule = { status: "checked", jobs, missing: missing.map((j) => j.job) };
    for (const j of missing) {
      problems.push(
        `pg_cron job ${j.job} (${j.schedule}) is not scheduled: enable pg_cron and schedule it as ` +
          `docs/maintenance.md says ("The schedule")`,
      );
    }
  } catch (error) {
    const message = sanitizeError(error, { maxLength: 300 });
    summary.schedule = { status: "failed", error: message };
    problems.push(`the pg_cron jobs could not be read: ${message}`);
  }

  summary.status = failed ? "failed" : "succeeded";
  const completed = now();
  summary.duration_ms = completed.getTime() - started.getTime();
  if (options.dryRun) return summary; // its log row would be rolled back with everything else
  summary.run_id = await deps.store.logRun({
    startedAt: started,
    completedAt: completed,
    status: summary.status,
    tablesAffected: [...tables].sort(),
    deletedCount: removed,
    details: {
      caller: options.caller,
      dry_run: options.dryRun,
      duration_ms: summary.duration_ms,
      housekeeping: summary.housekeeping,
      keys: summary.keys,
      catalogue: summary.catalogue.status === "not_run" ? summary.catalogue : {
        status: summary.catalogue.status,
        refreshed_keys: summary.catalogue.refreshed_keys,
        unlisted: summary.catalogue.unlisted,
      },
      lifecycle: summary.lifecycle,
      spend_yesterday: summary.spend_yesterday,
      schedule: summary.schedule.status === "checked"
        ? { status: "checked", missing: summary.schedule.missing }
        : summary.schedule,
      problems,
    },
  });
  return summary;
}

/** Checks every active key, records each answer, then reads the catalogue; false if that read failed. */
async function checkKeys(
  deps: RunDeps,
  options: RunOptions,
  summary: RunSummary,
  tables: Set<string>,
  addRemoved: (n: number) => void,
): Promise<boolean> {
  const problems = summary.problems;
  const access = deps.providers;
  const keys: ProviderKey[] = [];
  for (const [provider, reach] of Object.entries(access)) {
    for (const key of await deps.store.activeKeys(provider)) keys.push({ ...key, provider, ...reach });
  }
  const who = (provider: Provider) => whoIs(deps, provider);
  for (const problem of deps.providerProblems ?? []) problems.push(problem);
  const results = await mapLimited(
    keys,
    deps.concurrency ?? DEFAULT_CONCURRENCY,
    (key) => checkKey(deps, key, options),
  );
  for (const { result, removed } of results) {
    tables.add("google_ai_key_health");
    if (result.status === "ok" || result.status === "invalid") tables.add("google_ai_model_catalogue");
    if (result.action === "disabled") tables.add("google_ai_api_keys");
    addRemoved(removed);
  }
  const by = (pred: (r: KeyResult) => boolean) => results.filter((r) => pred(r.result)).map((r) => r.result.key_alias);
  const keySummary = {
    status: "checked" as const,
    checked: results.length,
    ok: by((r) => r.status === "ok"),
    disabled: by((r) => r.action === "disabled"),
    would_disable: by((r) => r.action === "would_disable"),
    missing_secret: by((r) => r.status === "missing_secret"),
    errors: by((r) => r.status === "error"),
    results: results.map((r) => r.result),
  };
  summary.keys = keySummary;
  if (keys.length === 0) problems.push("no active key: the gateway cannot serve any request");
  for (const r of results.map((x) => x.result)) {
    if (r.action === "disabled") {
      problems.push(
        `key ${r.key_alias} was taken out of rotation: ${
          r.message ?? r.reason ?? `rejected by ${who(r.provider)}`
        }`,
      );
    }
    if (r.action === "would_disable") {
      problems.push(`key ${r.key_alias} is rejected by ${who(r.provider)} (dry run: left active)`);
    }
    if (r.status === "missing_secret") {
      problems.push(
        `key ${r.key_alias}: no Edge secret ${r.env_var_name} (supabase secrets set ${r.env_var_name}=...)`,
      );
    }
    if (r.status === "error") problems.push(`key ${r.key_alias} could not be checked: ${r.message ?? "unknown error"}`);
  }

  try {
    const catalogue = await deps.store.catalogueStatus();
    const unlisted = catalogue.filter((c) => c.is_active && c.catalogue_status === "unlisted").map((c) => c.model);
    summary.catalogue = {
      status: "refreshed",
      refreshed_keys: keySummary.ok.length,
      models: catalogue.map((c) => ({
        model: c.model,
        catalogue_status: c.catalogue_status,
        keys_listing: c.keys_listing,
        input_token_limit: c.input_token_limit,
        output_token_limit: c.output_token_limit,
      })),
      unlisted,
    };
    for (const m of unlisted) {
      problems.push(`model ${m} is configured but no checked key of its provider lists it any more`);
    }
    await reviewLifecycle(deps, summary);
  } catch (error) {
    const message = sanitizeError(error, { maxLength: 300 });
    summary.catalogue = {
      status: "failed",
      refreshed_keys: keySummary.ok.length,
      models: [],
      unlisted: [],
      error: message,
    };
    problems.push(`the catalogue could not be read: ${message}`);
    return false;
  }
  return true;
}

/** The life cycle as models.list now shows it; a failure is reported, not fatal (the catalogue stands). */
async function reviewLifecycle(deps: RunDeps, summary: RunSummary): Promise<void> {
  const problems = summary.problems;
  try {
    const review = await deps.store.modelLifecycle();
    summary.lifecycle = { status: "reviewed", ...review };
    const instead = (successor: string | null) => successor === null ? "" : `; successor ${successor}`;
    for (const m of review.restored) {
      problems.push(`model ${m} is listed by its provider again: its withdrawn mark was cleared`);
    }
    for (const w of review.withdrawn) {
      const who = whoIs(deps, w.provider);
      problems.push(
        `model ${w.model} is withdrawn (${who} answered 404 since ${w.withdrawn_at})${instead(w.successor)}`,
      );
    }
    for (const s of review.shutting_down) {
      const when = s.days_left < 0
        ? `shut down on ${s.shutdown_date}`
        : `shuts down on ${s.shutdown_date} (in ${s.days_left} days)`;
      problems.push(`model ${s.model} ${when}${instead(s.successor)}`);
    }
    // review.unserved (models a provider lists that no row serves) is news, not a problem: it stays in the summary.
  } catch (error) {
    const message = sanitizeError(error, { maxLength: 300 });
    summary.lifecycle = { status: "failed", error: message };
    problems.push(`the model life cycle could not be reviewed: ${message}`);
  }
}

async function checkKey(
  deps: RunDeps,
  key: ProviderKey,
  options: RunOptions,
): Promise<{ result: KeyResult; removed: number }> {
  const base = {
    provider: key.provider,
    key_alias: key.key_alias,
    env_var_name: key.env_var_name,
    quota_group: key.quota_group,
  };
  const apiKey = key.secret(key.env_var_name);
  let check: KeyCheck;
  let latency: number | null = null;
  if (apiKey === undefined) {
    check = {
      keyId: key.id,
      status: "missing_secret",
      httpStatus: null,
      reason: null,
      message: `no usable Edge secret named ${key.env_var_name} (${
        key.refusal?.(key.env_var_name) ?? `unset, empty, or a name never used for ${whoIs(deps, key.provider)} keys`
      })`,
      models: [],
      disable: false,
    };
  } else {
    const outcome = await key.lister.list(apiKey, { timeoutMs: deps.listTimeoutMs });
    latency = outcome.latencyMs;
    if (outcome.ok) {
      check = {
        keyId: key.id,
        status: "ok",
        httpStatus: 200,
        reason: null,
        message: null,
        models: outcome.models,
        disable: false,
      };
    } else {
      const e = outcome.error;
      check = {
        keyId: key.id,
        status: e.class === "invalid_key" ? "invalid" : "error",
        httpStatus: e.httpStatus,
        reason: e.reason ?? e.status ?? (e.kind === "http" ? null : e.kind),
        message: e.message,
        models: [],
        disable: e.class === "invalid_key" && !options.dryRun,
      };
    }
  }
  const recorded = await deps.store.recordKeyCheck(check);
  let action: KeyAction = "none";
  if (check.status === "invalid") {
    action = recorded.disabled === true ? "disabled" : options.dryRun ? "would_disable" : "already_inactive";
  }
  return {
    removed: recorded.removed ?? 0,
    result: {
      ...base,
      status: check.status,
      action,
      http_status: check.httpStatus,
      reason: check.reason,
      message: check.message,
      models: check.status === "ok" ? check.models.length : null,
      latency_ms: latency,
    },
  };
}

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of the results. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Where model rows and their providers' stated limits disagree, among the problems; a failure to read them too. */
async function listDisagreements(deps: RunDeps, problems: string[]): Promise<void> {
  try {
    for (const d of (await deps.store.limitDisagreements?.()) ?? []) problems.push(disagreementLine(d));
  } catch (error) {
    problems.push(`the limits providers state could not be read: ${sanitizeError(error, { maxLength: 300 })}`);
  }
}

/** One disagreement between a model row and its provider's stated limit, as the run's problems say it. */
export function disagreementLine(d: LimitDisagreement): string {
  const where = `model ${d.model} in quota group ${d.quota_group}`;
  const said = `the provider states ${d.limit} ${d.provider}${d.said_at === null ? "" : ` (said ${d.said_at})`}`;
  if (d.disagreement === "ceiling") return `${where} follows its provider but its ceiling holds ${d.limit} below it: ${said}`;
  const row = d.row === null ? "no limit" : String(d.row);
  return `${where} keeps its own ${d.limit} ${row}, ${d.disagreement} what ${said}`;
}
