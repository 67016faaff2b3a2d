// What the maintenance run needs from the database, as an interface (tests use fakes), and its
// postgres.js implementation: one RPC per call (the functions' role may call nothing else), the
// logic in SQL. Array columns come back as jsonb: the pool does not look types up (_shared/db.ts).
import type postgres from "postgres";
import type { Database } from "../_shared/db.ts";
import type { Provider } from "../_shared/providers/registry.ts";
import { type CatalogueModel } from "../_shared/upstream/port.ts";

/** public.google_ai_housekeeping()'s answer (the fields the summary uses). */
export interface HousekeepingResult {
  ok: boolean;
  status: "succeeded" | "failed" | "skipped";
  log_id: number;
  deleted_count: number;
  more_pending?: boolean;
  failed_steps?: string[];
  reason?: string;
  /** Where a model row and its provider's stated limit disagree (google_ai_limit_disagreements), in its log. */
  limit_disagreements?: LimitDisagreement[];
}

/** A model row's limit that disagrees with what its provider states for a quota group. */
export interface LimitDisagreement {
  model: string;
  quota_group: string;
  limit: string;
  mode: "keep" | "follow";
  row: number | null;
  provider: number;
  said_at: string | null;
  /** above: a row that keeps its own limits above the provider's; below: under it; ceiling: a row that follows, held below it. */
  disagreement: "above" | "below" | "ceiling";
}

/** One provider's spend on one of its days (google_ai_spend_yesterday). */
export interface SpendDay {
  provider: string;
  day: string;
  /** US dollars, as the database's numeric text's number; calls of unknown cost are not in it. */
  spend_usd: number;
  calls: number;
  calls_unpriced: number;
}

export interface ActiveKey {
  id: string;
  key_alias: string;
  env_var_name: string;
  quota_group: string;
}

export type KeyCheckStatus = "ok" | "invalid" | "missing_secret" | "error";

export interface KeyCheck {
  keyId: string;
  status: KeyCheckStatus;
  httpStatus: number | null;
  reason: string | null;
  /** Already sanitized; the database sanitizes again. */
  message: string | null;
  models: CatalogueModel[];
  /** Take an invalid key out of rotation (false: dry run). */
  disable: boolean;
}

/** public.google_ai_record_key_check()'s answer. */
export interface KeyCheckRecord {
  ok: boolean;
  error?: string;
  disabled?: boolean;
  disabled_reason?: string | null;
  models?: number;
  removed?: number;
}

export interface CatalogueStatus {
  model: string;
  is_active: boolean;
  keys_checked: number;
  keys_listing: number;
  quota_groups: string[];
  input_token_limit: number | null;
  output_token_limit: number | null;
  catalogue_status: "listed" | "unlisted" | "unknown";
}

/** google_ai_model_lifecycle_review's answer: what models.list and the rows say of each model's life cycle. */
export interface ModelLifecycle {
  /** A key whose last check succeeded exists (of some provider): its provider's list could be read. */
  checked: boolean;
  /** Withdrawn models their provider lists again, brought back by this run. */
  restored: string[];
  /** Models still marked withdrawn (their provider answered 404 for them). */
  withdrawn: {
    model: string;
    withdrawn_at: string;
    message: string | null;
    successor: string | null;
    provider: Provider;
  }[];
  /** Active rows no checked key of their provider lists. */
  missing: string[];
  /** Active rows within 14 days of their announced shutdown (or past it). */
  shutting_down: { model: string; shutdown_date: string; days_left: number; successor: string | null }[];
  /** Models a provider lists that no row serves. */
  unserved: string[];
}

/** One pg_cron job the gateway expects (google_ai_cron_jobs): its schedule, and whether it is scheduled. */
export interface CronJob {
  job: string;
  schedule: string;
  present: boolean;
}

export interface RunLogEntry {
  startedAt: Date;
  completedAt: Date;
  status: "succeeded" | "failed";
  tablesAffected: string[];
  deletedCount: number;
  details: Record<string, unknown>;
}

export interface MaintenanceStore {
  housekeeping(): Promise<HousekeepingResult>;
  /** Where model rows and their providers' stated limits disagree (google_ai_limit_disagreements); absent: not read. */
  limitDisagreements?(): Promise<LimitDisagreement[]>;
  /** One provider's active keys (Google's when none is named). */
  activeKeys(provider: Provider): Promise<ActiveKey[]>;
  recordKeyCheck(check: KeyCheck): Promise<KeyCheckRecord>;
  catalogueStatus(): Promise<CatalogueStatus[]>;
  /** After the keys were checked: brings back withdrawn models listed again, reports the life cycle. */
  modelLifecycle(): Promise<ModelLifecycle>;
  /** What each provider's yesterday (its own day: Pacific for Google, UTC for OpenAI) cost. */
  spendYesterday(): Promise<SpendDay[]>;
  /** The pg_cron jobs the gateway expects, each present or missing. */
  cronJobs(): Promise<CronJob[]>;
  /** One google_ai_maintenance_log row (operation 'maintenance_function'); returns its id. */
  logRun(entry: RunLogEntry): Promise<number>;
  /**
   * Runs `work` against a store bound to one transaction that is rolled back afterwards, so a dry
   * run sees exactly what a real run would do and changes nothing. Returns what `work` returned.
   */
  dryRun<T>(work: (store: MaintenanceStore) => Promise<T>): Promise<T>;
}

export const RUN_OPERATION = "maintenance_function";

/** Thrown inside a dry run's transaction to roll it back. */
const ROLLBACK = Symbol("dry run rollback");

/** Every call goes through the worker's database (_shared/db.ts): deadlines, fail-fast while it is down. */
export function createPgMaintenanceStore(db: Pick<Database, "run">): MaintenanceStore {
  return {
    dryRun: (work) =>
      db.run("dry run", async (sql) => {
        let result: Awaited<ReturnType<typeof work>> | undefined;
        try {
          await sql.begin(async (tx) => {
            const inTransaction = {
              run: <T>(_what: string, w: (s: typeof sql) => Promise<T>) => w(tx as unknown as typeof sql),
            };
            result = await work(createPgMaintenanceStore(inTransaction));
            throw ROLLBACK;
          });
        } catch (error) {
          if (error !== ROLLBACK) throw error;
        }
        return result as Awaited<ReturnType<typeof work>>;
      }),
    housekeeping: () =>
      db.run("housekeeping", async (sql) => {
        const [row] = await sql<{ r: HousekeepingResult }[]>`select public.google_ai_housekeeping() as r`;
        return row!.r;
      }),
    activeKeys: (provider) =>
      db.run("active keys", (sql) =>
        sql<ActiveKey[]>`
          select k.id, k.key_alias, k.env_var_name, k.quota_group
          from public.google_ai_active_keys(p_provider => ${provider}::text) k`),
    recordKeyCheck: (check) =>
      db.run("record key check", async (sql) => {
        const [row] = await sql<{ r: KeyCheckRecord }[]>`
          select public.google_ai_record_key_check(
            p_key_id => ${check.keyId}::uuid, p_status => ${check.status}::text,
            p_http_status => ${check.httpStatus}::integer, p_reason => ${check.reason}::text,
            p_message => ${check.message}::text,
            p_models => ${sql.json(check.models as unknown as postgres.JSONValue)}::jsonb,
            p_disable => ${check.disable}::boolean) as r`;
        return row!.r;
      }),
    catalogueStatus: () =>
      db.run("catalogue status", (sql) =>
        sql<CatalogueStatus[]>`
          select model, is_active, keys_checked, keys_listing, coalesce(to_jsonb(quota_groups), '[]'::jsonb) as quota_groups,
                 input_token_limit, output_token_limit, catalogue_status
          from public.google_ai_catalogue_status()`),
    limitDisagreements: () =>
      db.run("limit disagreements", async (sql) => {
        const [row] = await sql<{ r: LimitDisagreement[] }[]>`select public.google_ai_limit_disagreements() as r`;
        return Array.isArray(row?.r) ? row.r : [];
      }),
    modelLifecycle: () =>
      db.run("model life cycle", async (sql) => {
        const [row] = await sql<{ r: ModelLifecycle }[]>`select public.google_ai_model_lifecycle_review() as r`;
        return row!.r;
      }),
    spendYesterday: () =>
      db.run("spend yesterday", async (sql) => {
        const [row] = await sql<{ r: SpendDay[] }[]>`select public.google_ai_spend_yesterday() as r`;
        return row!.r;
      }),
    cronJobs: () =>
      db.run("cron jobs", (sql) =>
        sql<CronJob[]>`select job, schedule, present from public.google_ai_cron_jobs()`),
    logRun: (entry) =>
      db.run("log run", async (sql) => {
        const [row] = await sql<{ id: number }[]>`
          select public.google_ai_log_maintenance_run(
            p_operation => ${RUN_OPERATION}, p_tables_affected => ${entry.tablesAffected}::text[],
            p_deleted_count => ${entry.deletedCount}::integer, p_started_at => ${entry.startedAt}::timestamptz,
            p_completed_at => ${entry.completedAt}::timestamptz, p_status => ${entry.status},
            p_details => ${sql.json(entry.details as postgres.JSONValue)}::jsonb) as id`;
        return row!.id;
      }),
  };
}
