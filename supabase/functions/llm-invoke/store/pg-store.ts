// GatewayStore over Postgres: each operation is one statement calling one RPC (one round trip):
//   reserve   call public.google_ai_reserve_call: google_ai_reserve_models' arguments (the model and its
//             fallbacks as one array, the service caller's label or the token's hash, the holder's
//             deadlines and id: holder.ts); it commits the booking, then answers with the quota the answer
//             reports (carried by every booking; for a refusal or a stored answer,
//             public.google_ai_answer_quota) once a flush covers the booking; reservations of one caller
//             and chain that arrive while one of theirs is being made go together (call
//             public.google_ai_reserve_calls: one commit, one flush), each answered as alone
//   finalize  a success: while reservations of the worker are under way, in their next CALL
//             (google_ai_reserve_calls' p_finalizes: riders.ts); else call public.google_ai_finalize_call
//             (public.google_ai_finalize_calls committed, its flush waited for after the counter row's lock
//             goes); successes of one counter row (quota group and model) that arrive while one of theirs is
//             being written go together (finalize-queue.ts: one commit instead of one each), one written before its answer (the
//             provider's room near its end) alone, at once; any other outcome (an error, a streamed
//             answer that broke off, a withdrawn model) public.google_ai_finalize, alone; each call's
//             outcome is one record (attempt-outcome.ts)
//   release   public.google_ai_release
//   end       public.google_ai_end_request (a named request that failed frees its request_id)
//   model     public.google_ai_model_traits (capabilities.ts caches it per worker)
//   token     public.google_ai_check_token, before the body is read (token-check.ts caches it)
//   keys      public.google_ai_active_keys, a key for countTokens (exact-count.ts caches it)
//   quota     public.google_ai_quota_report, the quota route (GET llm-invoke/v1/quota)
//   models    public.google_ai_model_list, the model routes (GET …/v1beta/models, …/v1/models)
// Array columns come back as jsonb (to_jsonb): the pool does not look types up (_shared/db.ts), so a
// text[] would arrive as its text form "{a,b}".
// Any database failure becomes GatewayError("unavailable") (503 JSON with Retry-After); the sanitized
// cause goes to the log, never to the caller. Outages (DatabaseUnavailable) are logged by db.ts.
import { GatewayError } from "../../_shared/errors.ts";
import {
  BUDGET_PERIODS,
  type EmbeddingTraits,
  type FallbackStep,
  type FinalizeParams,
  type ModelEntry,
  type ModelProfile,
  type QueuePlace,
  type QuotaKept,
  type QuotaSnapshot,
  type Refusal,
  type Reservation,
  type ReserveParams,
  type ReserveCaller,
  type ServiceTierRow,
  type TokenStatus,
} from "../contract.ts";
import { sanitizeError } from "../../_shared/sanitize.ts";
import { STATED_LIMIT_COLUMNS, type StatedLimits } from "../../_shared/upstream/port.ts";
import type { Provider } from "../../_shared/providers/registry.ts";
import { isOneOf, QUOTA_CAUSES, type QuotaCause, REFUSAL_LIMITS, SERVICE_TIERS } from "../../_shared/vocabulary.ts";
import { type Database, DatabaseUnavailable, DEFAULT_DB_TIMEOUTS, type Sql } from "../../_shared/db.ts";
import { databaseUnavailable } from "../../_shared/envelope.ts";
import type {
  ActiveKey,
  GatewayStore,
  ModelLister,
  QuotaReader,
  QuotaReport,
  StoredResponses,
  TokenChecker,
} from "./store.ts";
import { isObject } from "../../_shared/json.ts";
import { type HolderTimes, holderTimes } from "./holder.ts";
import { coalescingWriterByKey, DEFAULT_MAX_BATCH } from "./finalize-queue.ts";
import { finalizeRidersByKey, type Rider } from "./riders.ts";
import { attemptOutcome } from "./attempt-outcome.ts";

/**
 * One statement on the worker's database, a failure answered as the caller's 503: a GatewayError as it
 * is, the database down as `unavailable`, anything else logged (sanitized) and `unavailable` too.
 */
export function guardedRun(database: Pick<Database, "run">, logError: (message: string) => void) {
  return async <T>(what: string, work: (sql: Sql) => Promise<T>): Promise<T> => {
    try {
      return await database.run(what, work);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      if (error instanceof DatabaseUnavailable) throw databaseUnavailable(error);
      logError(`${what} failed: ${sanitizeError(error)}`);
      throw databaseUnavailable(null);
    }
  };
}

export interface PgStoreOptions {
  /** The worker's database (_shared/db.ts): deadlines, fail-fast while down, one retry of a stale connection. */
  database: Pick<Database, "run">;
  /** The database's client-side deadline of one statement (_shared/db.ts): a reservation's reply_by follows from it. */
  deadlineMs?: number;
  logError?: (message: string) => void;
  /** The most successes' finalizes written in one statement (finalize-queue.ts). */
  finalizeBatch?: number;
  /** The most reservations of one caller and chain booked in one statement (google_ai_reserve_calls): 2 to 16. */
  reserveBatch?: number;
}

/**
 * The most reservations of a chain of `models` booked in one transaction (google_ai_reserve_calls takes
 * 16). Each is a subtransaction, with one inside it for the group it booked and one for each model its
 * chain tried: about 2 + models - 1 ids that stay (counted: 2 for one model, 3 for a chain served by its
 * second), and a backend lists 64 in shared memory before every other session's snapshot has to look
 * them up on disk: one of the 64 is left for the finalizes that ride with the batch (their own subtransaction).
 */
export function reserveBatchFor(models: number): number {
  return Math.min(16, Math.floor(63 / (1 + models)));
}

export function createPgStore(
  options: PgStoreOptions,
): GatewayStore & TokenChecker & QuotaReader & ModelLister & StoredResponses {
  const logError = options.logError ?? ((m: string) => console.error(`[llm-invoke] ${m}`));
  const deadlineMs = options.deadlineMs ?? DEFAULT_DB_TIMEOUTS.deadlineMs;

  const run = guardedRun(options.database, logError);
  // Successes go through one CALL (86_finalize_call.sql) that commits their finalizes without waiting
  // for the disk, then answers once a flush covers them: the counter row each settles is not held
  // through a flush, so the group's admissions never wait for a finalize's disk. Sent alone: a CALL
  // inside a transaction block cannot commit.
  const finalizeCalls = (what: string, calls: readonly FinalizeParams[]) =>
    run(what, async (sql) => {
      const rows = await sql<{ o_answers: unknown }[]>`
        call public.google_ai_finalize_call(p_calls => ${jsonbText(calls.map(finalizeCall))}::text::jsonb)`;
      const answers = rows[0]?.o_answers;
      if (!Array.isArray(answers)) throw new Error("google_ai_finalize_call returned no array");
      return answers;
    });
  const finalizeOne = (what: string, p: FinalizeParams) => finalizeCalls(what, [p]).then((answers) => answers[0] as unknown);
  const finalizeSuccess = coalescingWriterByKey<FinalizeParams, unknown>({
    writeOne: (p) => finalizeOne("finalize", p),
    writeMany: (calls) => finalizeCalls("finalize batch", calls),
    // Keyed by the counter row it settles. One that carries the provider's room goes too: a batch reads
    // each call's margin before it locks the row (google_ai_finalize_calls).
  }, (p) => p.booked ? `${p.booked.quotaGroup}\n${p.booked.model}` : undefined, options.finalizeBatch);
  // A success the answer waits for (attempt/room.ts) goes at once, alone: it is on the caller's path.
  const finalizeBeforeAnswer = (p: FinalizeParams) => finalizeOne("finalize before answer", p);
  // Any other success rides with its caller's next reservation CALL while the caller's reservations are
  // under way in this worker (riders.ts, 87_calls_together.sql), else goes as above. The caller of each
  // reservation answered here, until its finalize (at most RIDING_KNOWN: one forgotten goes as above).
  const riders = finalizeRidersByKey<FinalizeParams, unknown>(finalizeSuccess, options.finalizeBatch ?? DEFAULT_MAX_BATCH);
  const callerOfReservation = new Map<string, string>();
  const noteCaller = (r: Reserved, caller: string) => {
    if (!r.ok) return;
    if (callerOfReservation.size >= RIDING_KNOWN) callerOfReservation.delete(callerOfReservation.keys().next().value!);
    callerOfReservation.set(r.reservationId, caller);
  };
  const callerOfFinalize = (reservationId: string) => {
    const caller = callerOfReservation.get(reservationId);
    callerOfReservation.delete(reservationId);
    return caller;
  };

  // One CALL (85_reserve_call.sql): the booking commits without waiting for the disk, then the
  // answer's quota (the booking's own, or read after it), a cooldown's cause and each passed-over
  // step's, and a flush that covers the booking; the CALL answers after it. Sent alone: a CALL inside
  // a transaction block cannot commit.
  const reserveAlone = (p: ReserveParams) =>
    run("reserve", async (sql) => {
      // Timed from now: a retry on a fresh connection is a new statement with its own deadline.
      const r = reservationRecord(p, holderTimes(Date.now(), deadlineMs, p.claim));
      const rows = await sql<{ o_reservation: unknown; o_quota: unknown; o_cause: unknown }[]>`
        call public.google_ai_reserve_call(
        p_models => ${sql.array(r.models)}::text[],
        p_estimated_tokens => ${r.estimated_tokens}::integer,
        p_caller => ${r.caller}, p_token_hash => ${r.token_hash},
        p_request_id => ${r.request_id}, p_exclude_key_ids => ${sql.array(r.exclude_key_ids)}::uuid[],
        p_attempt => ${r.attempt}::integer, p_wait_ms => ${r.wait_ms}::integer,
        p_metadata => ${jsonbText(r.metadata)}::text::jsonb,
        p_idempotent => ${r.idempotent}::boolean, p_priority => ${r.priority},
        p_queue_ticket => ${r.queue_ticket}::uuid,
        p_wait_left_ms => ${r.wait_left_ms}::integer,
        p_reply_by => ${r.reply_by}::timestamptz, p_hold_until => ${r.hold_until}::timestamptz,
        p_holder => ${r.holder}::uuid,
        p_output_tokens => ${integerArray(r.output_tokens ?? [])}::integer[],
        p_requests => ${r.requests}::integer)`;
      return reservationOf(rows[0]);
    });
  // Reservations of one caller and chain that met while one of theirs was being made: one CALL
  // (google_ai_reserve_calls) books them in one transaction, one commit and one flush, each answered as
  // alone. One the database answers {"alone": true} (it would have waited for a lock another transaction
  // holds) is made again by itself, after the batch has answered the others (reserve, below). A batch
  // that fails fails each of its calls, and the store does not send them again: the batch may have
  // committed before its answer was lost (db.ts retries once on a connection lost, as for any call).
  // The finalizes waiting to ride go with it (p_finalizes): written in the same commit, after the bookings;
  // those the CALL could not write (o_finalized null, or the CALL failed) are written by themselves.
  const reserveCalls = (ps: readonly ReserveParams[], riding: readonly Rider<FinalizeParams, unknown>[]) => {
    let taken = riding;
    let finalizes: string | null = null;
    try {
      if (taken.length > 0) finalizes = jsonbText(taken.map((r) => finalizeCall(r.item)));
    } catch {
      // (An outcome that cannot be sent is its own caller's failure, written by itself: not the reservations'.)
      riders.settle(taken, null);
      taken = [];
    }
    const written = run(ps.length === 1 ? "reserve" : "reserve batch", async (sql) => {
      const startedAt = Date.now();
      const calls = ps.map((p) => reservationRecord(p, holderTimes(startedAt, deadlineMs, p.claim)));
      const rows = await sql<{ o_answers: unknown; o_finalized: unknown }[]>`
        call public.google_ai_reserve_calls(p_calls => ${jsonbText(calls)}::text::jsonb,
          p_finalizes => ${finalizes}::text::jsonb)`;
      const answers = rows[0]?.o_answers;
      if (!Array.isArray(answers) || answers.length !== ps.length) {
        throw new Error("google_ai_reserve_calls returned no answer per call");
      }
      const finalized = rows[0]?.o_finalized;
      if (taken.length > 0 && !Array.isArray(finalized)) {
        logError(`finalizes riding a reservation were written by themselves: ${JSON.stringify(finalized ?? null)}`);
      }
      return {
        answers: answers.map((a): Reserved | typeof ALONE => isObject(a) && a.alone === true ? ALONE : reservationOf(a)),
        finalized: Array.isArray(finalized) ? finalized as unknown[] : null,
      };
    });
    written.then((w) => riders.settle(taken, w.finalized), () => riders.settle(taken, null));
    return written.then((w) => w.answers);
  };
  const reserveMany = (ps: readonly ReserveParams[]) => reserveCalls(ps, riders.take(callerKey(ps[0]!.caller)));
  // One alone: the single CALL, unless finalizes wait to ride (then the batch's CALL, with one reservation).
  const reserveOne = (p: ReserveParams): Promise<Reserved> => {
    const taken = riders.take(callerKey(p.caller));
    if (taken.length === 0) return reserveAlone(p);
    return reserveCalls([p], taken).then(([a]) => a === ALONE || a === undefined ? reserveAlone(p) : a);
  };
  const reserveTogether = coalescingWriterByKey<ReserveParams, Reserved | typeof ALONE>(
    { writeOne: reserveOne, writeMany: reserveMany, failTogether: true },
    (p) => `${callerKey(p.caller)}\n` +
      [p.model, ...p.fallbackModels].join("\n"),
    (p) => Math.max(2, Math.min(16, options.reserveBatch ?? reserveBatchFor(1 + p.fallbackModels.length))),
  );
  const reserveCoalesced = async (p: ReserveParams): Promise<Reserved> => {
    const caller = callerKey(p.caller);
    const end = riders.begin(caller);
    try {
      const answer = await reserveTogether(p);
      const reserved = answer === ALONE ? await reserveOne(p) : answer;
      noteCaller(reserved, caller);
      return reserved;
    } finally {
      end();
    }
  };

  return {
    checkToken: (tokenHash, refusals) =>
      run("token check", async (sql) => {
        const [row] = await sql<{ r: { status: TokenStatus; max_output_tokens?: number; models?: string[] } }[]>`
          select public.google_ai_check_token(p_token_hash => ${tokenHash}, p_refusals => ${refusals}::integer) as r`;
        const { status, max_output_tokens, models } = row!.r;
        return {
          status,
          ...(typeof max_output_tokens === "number" ? { maxOutputTokens: max_output_tokens } : {}),
          ...(Array.isArray(models) ? { models } : {}),
        };
      }),

    serviceTiers: () =>
      run("service tiers", async (sql) => {
        const [row] = await sql<{ r: unknown }[]>`select public.google_ai_service_tier_list() as r`;
        return parseServiceTierRows(row?.r);
      }),

    modelProfile: (model) =>
      run("model lookup", async (sql) => {
        const rows = await sql<
          {
            model: string;
            active: boolean;
            sis: boolean;
            json: boolean;
            tools: boolean;
            images: boolean | null;
            fallbacks: string[];
            withdrawn: boolean;
            successor: string | null;
            shut_down: boolean;
            provider: string;
            /** Its provider row's (the foreign key holds that there is one). */
            dialect: string;
            responses: boolean;
            booked: number | null;
            answer: number | null;
            embedding: Record<string, unknown> | null;
            refusesBudget: boolean;
            refusesSampling: boolean;
          }[]
        >`
          select p.model, p.is_active as active, p.supports_system_instruction as sis, p.supports_json_mode as json,
                 p.supports_tools as tools, p.supports_images as images,
                 p.refuses_thinking_budget as "refusesBudget", p.refuses_sampling as "refusesSampling",
                 coalesce(to_jsonb(p.fallback_models), '[]'::jsonb) as fallbacks, p.withdrawn, p.successor, p.shut_down,
                 v.provider, v.booked_output_tokens as booked, v.answer_tokens as answer,
                 d.dialect, d.has_responses_api as responses,
                 public.google_ai_embedding_traits(p_model => p.model) as embedding
          from public.google_ai_model_traits(p_model => ${model}) p
          cross join lateral public.google_ai_model_provider(p_model => p.model) v
          left join lateral (select d.dialect, d.has_responses_api from public.google_ai_provider_list() d
                             where d.name = v.provider) d on true`;
        const row = rows[0];
        return row === undefined ? null : ({
          model: row.model,
          active: row.active,
          supportsSystemInstruction: row.sis,
          supportsJsonMode: row.json,
          supportsTools: row.tools,
          supportsImages: row.images,
          ...(row.refusesBudget ? { refusesThinkingBudget: true } : {}),
          ...(row.refusesSampling ? { refusesSampling: true } : {}),
          fallbackModels: row.fallbacks,
          ...(row.withdrawn ? { withdrawn: true, successor: row.successor } : {}),
          ...(row.shut_down ? { shutDown: true, successor: row.successor } : {}),
          // A google_ai_providers row's name (the database's foreign key).
          provider: row.provider as Provider,
          dialect: row.dialect,
          ...(row.responses ? { hasResponsesApi: true } : {}),
          ...(row.embedding === null ? {} : { embedding: embeddingTraitsOf(row.embedding) }),
          ...(row.booked === null ? {} : { bookedOutputTokens: row.booked }),
          ...(row.answer === null ? {} : { answerTokens: row.answer }),
        } satisfies ModelProfile);
      }),

    reserve: reserveCoalesced,

    quotaReport: (caller) =>
      run("quota report", async (sql) => {
        // A service caller's budget is its label's, the one its reservations book under (p_caller).
        const tokenHash = caller.kind === "token" ? caller.tokenHash : null;
        const label = caller.kind === "service" ? caller.name : null;
        const [row] = await sql<{ r: unknown }[]>`
          select public.google_ai_quota_report(p_token_hash => ${tokenHash}, p_caller => ${label}) as r`;
        return parseQuotaReport(row?.r);
      }),

    // A success's finalize runs after the answer (waitUntil): those that meet are written together. One
    // the answer waits for goes alone, its flush after the counter row's lock is gone.
    finalize: (p: FinalizeParams) => {
      const caller = callerOfFinalize(p.reservationId);
      return p.outcome === "succeeded"
        ? (p.beforeAnswer === true ? finalizeBeforeAnswer(p) : riders.finalize(caller, p)).then(() => undefined)
        : run("finalize", async (sql) => {
          await sql`select public.google_ai_finalize(p_reservation_id => ${p.reservationId}::uuid,
            p_outcome => ${jsonbText(attemptOutcome(p))}::text::jsonb) as r`;
        });
    },

    release: (reservationId, reason) => {
      callerOfFinalize(reservationId); // (a released reservation has no finalize to ride)
      return run("release", async (sql) => {
        await sql`select public.google_ai_release(p_reservation_id => ${reservationId}::uuid, p_reason => ${reason}) as r`;
      });
    },

    endRequest: (reservationId) =>
      run("end request", async (sql) => {
        await sql`select public.google_ai_end_request(p_reservation_id => ${reservationId}::uuid) as r`;
      }),

    modelList: () =>
      run("model list", async (sql) => {
        const rows = await sql<{
          model: string;
          aliases: string[];
          display_name: string | null;
          input_token_limit: number | null;
          output_token_limit: number | null;
          rpm: number | null;
          tpm: number | null;
          rpd: number | null;
          supports_system_instruction: boolean;
          supports_json_mode: boolean;
          supports_tools: boolean;
          provider: string;
        }[]>`
          select m.model, coalesce(to_jsonb(m.aliases), '[]'::jsonb) as aliases, m.display_name,
                 m.input_token_limit, m.output_token_limit, m.rpm, m.tpm, m.rpd, m.supports_system_instruction,
                 m.supports_json_mode, m.supports_tools, v.provider
          from public.google_ai_model_list() m
          cross join lateral public.google_ai_model_provider(p_model => m.model) v`;
        return rows.map((r): ModelEntry => ({
          model: r.model,
          aliases: r.aliases,
          displayName: r.display_name,
          inputTokenLimit: r.input_token_limit,
          outputTokenLimit: r.output_token_limit,
          rpm: r.rpm,
          tpm: r.tpm,
          rpd: r.rpd,
          supportsSystemInstruction: r.supports_system_instruction,
          supportsJsonMode: r.supports_json_mode,
          supportsTools: r.supports_tools,
          provider: r.provider as Provider,
        }));
      }),

    saveResponse: (caller, id, stored) =>
      run("store response", async (sql) => {
        const { tokenHash, label } = credentialOf(caller);
        const [row] = await sql<{ r: boolean }[]>`
          select public.google_ai_store_response(p_token_hash => ${tokenHash}, p_caller => ${label}, p_id => ${id},
            p_model => ${stored.model}, p_response => ${jsonbText(stored.response)}::text::jsonb,
            p_conversation => ${jsonbText(stored.conversation)}::text::jsonb) as r`;
        return row?.r === true;
      }),

    loadResponse: (caller, id) =>
      run("stored response", async (sql) => {
        const { tokenHash, label } = credentialOf(caller);
        const [row] = await sql<{ r: unknown }[]>`
          select public.google_ai_stored_response(p_token_hash => ${tokenHash}, p_caller => ${label}, p_id => ${id}) as r`;
        const r = row?.r;
        if (!isObject(r) || typeof r.model !== "string" || !isObject(r.response)) return null;
        return { model: r.model, response: r.response, conversation: r.conversation };
      }),

    deleteResponse: (caller, id) =>
      run("delete stored response", async (sql) => {
        const { tokenHash, label } = credentialOf(caller);
        const [row] = await sql<{ r: boolean }[]>`
          select public.google_ai_delete_stored_response(p_token_hash => ${tokenHash}, p_caller => ${label},
            p_id => ${id}) as r`;
        return row?.r === true;
      }),

    activeKeys: (provider) =>
      run("active keys", async (sql) => {
        const rows = await sql<{ id: string; key_alias: string; env_var_name: string; quota_group: string }[]>`
          select k.id, k.key_alias, k.env_var_name, k.quota_group
          from public.google_ai_active_keys(p_provider => ${provider}::text) k`;
        return rows.map((r): ActiveKey => ({
          keyId: r.id,
          keyAlias: r.key_alias,
          envVarName: r.env_var_name,
          quotaGroup: r.quota_group,
        }));
      }),
  };
}

/** One call of public.google_ai_finalize_calls: the reservation and its outcome (the one mapper's). */
function finalizeCall(p: FinalizeParams) {
  return { reservation_id: p.reservationId, outcome: attemptOutcome(p) };
}

/** The limits a following row's booking applied (google_ai_book_group's `followed`: an array in STATED_LIMIT_COLUMNS' order). */
function followedOf(value: unknown): { followed?: StatedLimits } {
  if (!Array.isArray(value)) return {};
  const followed: StatedLimits = {};
  STATED_LIMIT_COLUMNS.forEach((c, i) => {
    const v = value[i];
    if (typeof v === "number" && Number.isFinite(v)) followed[c] = v;
  });
  return { followed };
}

/** google_ai_embedding_traits's answer in the gateway's words. */
function embeddingTraitsOf(r: Record<string, unknown>): EmbeddingTraits {
  return {
    dimensions: Number(r.dimensions),
    shortenable: r.shortenable === true,
    maxBatch: Number(r.max_batch),
    maxInputTokens: Number(r.max_input_tokens),
    countsEachInput: r.counts_each_input === true,
  };
}

/** A credential as the SQL functions take it: a token by its hash, a service caller by its label. */
function credentialOf(caller: ReserveCaller): { tokenHash: string | null; label: string | null } {
  return caller.kind === "token" ? { tokenHash: caller.tokenHash, label: null } : { tokenHash: null, label: caller.name };
}

/** The RPC's jsonb answer, checked field by field (a surprise is a 503, not a crash later). */
/** google_ai_service_tier_list's answer; a row that is not the expected shape is left out. */
export function parseServiceTierRows(value: unknown): ServiceTierRow[] {
  const list = typeof value === "string" ? safeJson(value) : value;
  if (!Array.isArray(list)) return [];
  return list.flatMap((r) => {
    const o = r as Record<string, unknown> | null;
    if (o === null || typeof o !== "object" || typeof o.model !== "string" || typeof o.priority_class !== "string") {
      return [];
    }
    if (!isOneOf(SERVICE_TIERS, o.service_tier)) return [];
    return [{
      model: o.model,
      priorityClass: o.priority_class,
      serviceTier: o.service_tier,
      standardOnShed: o.standard_on_shed === true,
    }];
  });
}

/** google_ai_cooldown_cause's answer: one of the causes, else null (an unreadable cause is "not known"). */
function quotaCauseOrNull(value: unknown): QuotaCause | null {
  return isOneOf(QUOTA_CAUSES, value) ? value : null;
}

/** An integer[] literal of whole numbers and nulls (NULL: not known); none at all: null. */
function integerArray(values: readonly (number | null)[]): string | null {
  if (values.length === 0) return null;
  return `{${values.map((n) => (n === null ? "NULL" : String(wholeOrNull(n)))).join(",")}}`;
}

const wholeOrNull = (n: number | null) => n === null ? null : Math.max(0, Math.round(n));

/**
 * A reservation's arguments as the database's google_ai_reservation record names them (the entry's
 * parameters less their p_): the single CALL passes each by name, a batch sends the records as JSON.
 */
function reservationRecord(p: ReserveParams, holder: HolderTimes) {
  return {
    models: [p.model, ...p.fallbackModels], estimated_tokens: p.estimatedTokens,
    caller: p.caller.kind === "service" ? p.caller.name : null,
    token_hash: p.caller.kind === "token" ? p.caller.tokenHash : null,
    request_id: p.requestId, exclude_key_ids: keyIds(p.excludeKeyIds), attempt: p.attempt,
    wait_ms: Math.round(p.waitMs), metadata: p.metadata, idempotent: p.idempotent,
    priority: p.priority ?? null, queue_ticket: p.queueTicket ?? null,
    wait_left_ms: Math.max(0, Math.round(p.waitLeftMs)), reply_by: holder.reply_by,
    hold_until: holder.hold_until ?? null, holder: holder.holder ?? null,
    output_tokens: p.outputTokens.length === 0 ? null : p.outputTokens.map(wholeOrNull),
    requests: p.requests ?? 1,
  };
}

type Reserved = Reservation | Refusal;

/** A batch's answer for a call the database undid, to be made again by itself (google_ai_reserve_many). */
const ALONE = Symbol("alone");

/** The reservations whose caller the store keeps for their finalize to ride (the oldest forgotten past it). */
const RIDING_KNOWN = 10_000;

/** A caller as its reservations are grouped: a service caller by its label, a token by its hash. */
function callerKey(caller: ReserveCaller): string {
  return caller.kind === "service" ? `service ${caller.name}` : `token ${caller.tokenHash}`;
}

/** One reservation's answer as google_ai_reserve_reads gives it: the verdict, its quota and a cooldown's cause. */
function reservationOf(row: unknown): Reserved {
  const r = isObject(row) ? row : {};
  const answer = parseReserveResult(r.o_reservation);
  const cause = answer.ok ? undefined : quotaCauseOrNull(r.o_cause);
  return { ...answer, quota: parseQuotaSnapshot(r.o_quota), ...(cause == null ? {} : { cause }) };
}

export function parseReserveResult(value: unknown): Reservation | Refusal {
  const r = typeof value === "string" ? JSON.parse(value) as unknown : value;
  if (typeof r !== "object" || r === null) throw new Error("reserve returned no object");
  const o = r as Record<string, unknown>;
  if (o.ok === true) {
    const fields = ["reservation_id", "key_id", "key_alias", "env_var_name", "quota_group", "model"] as const;
    for (const f of fields) {
      if (typeof o[f] !== "string") throw new Error(`reserve returned no ${f}`);
    }
    return {
      ok: true,
      reservationId: o.reservation_id as string,
      keyId: o.key_id as string,
      keyAlias: o.key_alias as string,
      envVarName: o.env_var_name as string,
      quotaGroup: o.quota_group as string,
      model: o.model as string,
      minuteBucket: String(o.minute_bucket ?? ""),
      dayBucket: String(o.day_bucket ?? ""),
      ...(typeof o.priority === "string" ? { priority: o.priority } : {}),
      ...(typeof o.booked_usd === "number" ? { bookedUsd: o.booked_usd } : {}),
      ...fallbackFrom(o.fallback_from),
    };
  }
  // A limit the functions do not know is a database newer than them, or a list not kept: the one list
  // is REFUSAL_LIMITS in _shared/vocabulary.ts.
  const limit = o.limit;
  if (!isOneOf(REFUSAL_LIMITS, limit)) {
    throw new Error(
      `reserve refused with a limit not in REFUSAL_LIMITS: ${sanitizeError(String(limit), { maxLength: 50 })}`,
    );
  }
  const retry = o.retry_after_ms;
  return {
    ok: false,
    limit,
    retryAfterMs: typeof retry === "number" && Number.isFinite(retry) ? retry : null,
    retryAt: typeof o.retry_at === "string" ? o.retry_at : null,
    maxTokens: typeof o.max_tokens === "number" ? o.max_tokens : null,
    ...(typeof o.max_output_tokens === "number" ? { maxOutputTokens: o.max_output_tokens } : {}),
    ...(typeof o.requests === "number" && typeof o.max_requests === "number" && (o.per === "minute" || o.per === "day")
      ? { requests: { count: o.requests, max: o.max_requests, per: o.per } }
      : {}),
    recheckAfterMs: typeof o.recheck_after_ms === "number" && Number.isFinite(o.recheck_after_ms)
      ? o.recheck_after_ms
      : null,
    queue: parseQueuePlace(o.queue),
    model: typeof o.model === "string" ? o.model : null,
    refusalCause: typeof o.cause === "string" ? o.cause : null,
    ...(isOneOf(BUDGET_PERIODS, o.period) ? { period: o.period } : {}),
    ...fallbackFrom(o.fallback_from),
    ...(o.limit === "duplicate" ? { response: o.response } : {}),
    ...(o.limit === "withdrawn" ? { successor: typeof o.successor === "string" ? o.successor : null } : {}),
  };
}

/**
 * google_ai_answer_quota's answer. Seeing the quota must never fail a request: anything that is not
 * the expected shape is "not known" (null), not an error.
 */
export function parseQuotaSnapshot(value: unknown): QuotaSnapshot | null {
  const q = typeof value === "string" ? safeJson(value) : value;
  if (typeof q !== "object" || q === null) return null;
  const o = q as Record<string, unknown>;
  if (typeof o.model !== "string" || typeof o.quota_group !== "string") return null;
  const count = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? Math.max(0, v) : null);
  return {
    model: o.model,
    quotaGroup: o.quota_group,
    rpm: count(o.rpm),
    requestsLeft: count(o.requests_left),
    requestsResetMs: count(o.requests_reset_ms),
    tpm: count(o.tpm),
    tokensLeft: count(o.tokens_left),
    tokensResetMs: count(o.tokens_reset_ms),
    rpd: count(o.rpd),
    dayLeft: count(o.day_left),
    dayResetMs: count(o.day_reset_ms),
    kept: parseQuotaKept(o.kept, count),
    ...followedOf(o.followed),
  };
}

/** google_ai_quota_kept's object inside an answer's quota; null when absent or not an object. */
function parseQuotaKept(value: unknown, count: (v: unknown) => number | null): QuotaKept | null {
  if (typeof value !== "object" || value === null) return null;
  const k = value as Record<string, unknown>;
  return {
    rpmForOthers: count(k.rpm_for_others),
    rpmForYou: count(k.rpm_for_you),
    rpdForOthers: count(k.rpd_for_others),
    rpdForYou: count(k.rpd_for_you),
  };
}

const TOKEN_STATUSES = ["token_invalid", "token_expired", "token_revoked"] as const;

/** google_ai_quota_report's answer: the report without its `ok`, or the token's status. */
export function parseQuotaReport(value: unknown): QuotaReport {
  const r = typeof value === "string" ? JSON.parse(value) as unknown : value;
  if (typeof r !== "object" || r === null) throw new Error("quota report returned no object");
  const { ok, status, ...report } = r as Record<string, unknown>;
  if (ok === true) return { ok: true, report };
  const known = TOKEN_STATUSES.find((s) => s === status);
  if (known === undefined) throw new Error("quota report refused without a known status");
  return { ok: false, status: known };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A chain's passed-over models (absent unless the reservation went through a chain and passed some over). */
function fallbackFrom(value: unknown): { fallbackFrom?: FallbackStep[] } {
  if (!Array.isArray(value) || value.length === 0) return {};
  return {
    fallbackFrom: value.flatMap((v): FallbackStep[] => {
      if (typeof v !== "object" || v === null) return [];
      const s = v as Record<string, unknown>;
      if (typeof s.model !== "string" || typeof s.limit !== "string") return [];
      return [{
        model: s.model,
        limit: s.limit,
        cause: typeof s.cause === "string" ? s.cause : null,
        retryAfterMs: typeof s.retry_after_ms === "number" ? s.retry_after_ms : null,
      }];
    }),
  };
}

function parseQueuePlace(value: unknown): QueuePlace | null {
  if (typeof value !== "object" || value === null) return null;
  const q = value as Record<string, unknown>;
  if (typeof q.ticket !== "string" || !UUID.test(q.ticket)) throw new Error("reserve queued without a ticket");
  return {
    ticket: q.ticket,
    position: typeof q.position === "number" ? q.position : 0,
    expectedAt: typeof q.expected_at === "string" ? q.expected_at : "",
    priority: typeof q.priority === "string" ? q.priority : "",
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Only well-formed key ids reach the uuid[] parameter (they come from the database, but a cast error would be a 503). */
function keyIds(ids: readonly string[]): string[] {
  return ids.filter((id) => UUID.test(id));
}

/**
 * A JSON value as text jsonb accepts. JSON allows what jsonb rejects: "\u0000" and unpaired UTF-16
 * surrogates. Caller metadata may hold either, so strings and keys are cleaned: NUL removed, lone
 * surrogates replaced by U+FFFD. JSON.stringify writes a NUL as the escape \u0000 and a lone
 * surrogate as one such as \ud800 (a paired one stays raw), so text without such an escape needs no
 * cleaning and is sent as it is: the value is walked once, by JSON.stringify. Text with one (or with
 * a backslash-u the caller wrote as text, which also matches) is cleaned and written again.
 * Sent as `${jsonbText(v)}::text::jsonb`: a parameter the server types as jsonb would be written
 * by postgres.js as JSON once more (a string holding the text).
 */
export function jsonbText(value: unknown): string {
  const text = JSON.stringify(value);
  return MAY_NEED_CLEANING.test(text) ? JSON.stringify(clean(value)) : text;
}

const MAY_NEED_CLEANING = /\\u(?:0000|d[89a-f])/i;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function cleanString(s: string): string {
  return s.replaceAll("\u0000", "").replace(LONE_SURROGATE, "\uFFFD");
}

function clean(value: unknown): unknown {
  if (typeof value === "string") return cleanString(value);
  if (Array.isArray(value)) return value.map(clean);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, cleanString(k), {
        value: clean(v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}
