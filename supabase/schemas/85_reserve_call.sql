-- The call llm-invoke makes to reserve: google_ai_reserve_models (58_admission.sql) in its own
-- transaction, committed without waiting for the disk, then a second transaction that waits for a
-- flush covering it. A booking holds its quota group's counter row until its transaction ends; with a
-- synchronous commit that is until the flush, so every admission of a group waited for the one before
-- it to reach the disk. Here the lock goes at the first commit, and the flush the caller waits for is
-- shared with every other worker's (PostgreSQL flushes the WAL in order, up to the newest record asked
-- for). A crash between the two loses only bookings whose answer never left: the CALL returns after the
-- flush.
set check_function_bodies = off;

-- What a reservation's answer reads after its commit, under no lock: the quota it reports (o_quota: the
-- booking's own, or google_ai_answer_quota read after it), for a cooldown refusal why the group rests
-- (o_cause: google_ai_cooldown_cause), and each passed-over step's cause (google_ai_step_causes); the
-- answer itself less its quota (o_reservation). p_model: the request's first model; p_exclude_key_ids: its.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[],
    OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text) RETURNS record
    LANGUAGE plpgsql
    AS $$
begin
  o_quota := coalesce(p_reservation -> 'quota', public.google_ai_answer_quota(p_answer => p_reservation,
    p_model => p_model, p_exclude_key_ids => p_exclude_key_ids));
  if p_reservation ->> 'limit' = 'cooldown' then
    o_cause := public.google_ai_cooldown_cause(p_model => coalesce(p_reservation ->> 'model', p_model));
  end if;
  o_reservation := p_reservation - 'quota';
  -- Only a cooldown step has a cause to read (google_ai_step_causes leaves every other step as it is); a
  -- chain served by its first model has none (counted, about 80k instructions for an empty list).
  if o_reservation -> 'fallback_from' @> '[{"limit": "cooldown"}]' then
    o_reservation := pg_catalog.jsonb_set(o_reservation, '{fallback_from}',
      public.google_ai_step_causes(p_steps => o_reservation -> 'fallback_from'));
  end if;
end
$$;

-- A procedure, so that it can COMMIT: invoker, with no SET clause and every name schema-qualified (a
-- SET clause or SECURITY DEFINER forbids a COMMIT), called alone (`call …` as its own statement, never
-- inside a transaction block: a CALL there cannot COMMIT and fails). Its arguments are
-- google_ai_reserve_models'; it answers that entry's answer less its quota (o_reservation, with each
-- passed-over step's cause: google_ai_step_causes), the quota the answer reports (o_quota: the
-- booking's own, or google_ai_answer_quota read after it) and, for a cooldown refusal, why the group
-- rests (o_cause: google_ai_cooldown_cause). The reads run in the second transaction, outside the lock.
CREATE OR REPLACE PROCEDURE public.google_ai_reserve_call(IN p_models text[], IN p_estimated_tokens integer,
    IN p_caller text DEFAULT NULL::text, IN p_token_hash text DEFAULT NULL::text,
    IN p_request_id text DEFAULT NULL::text, IN p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[],
    IN p_attempt integer DEFAULT 1, IN p_wait_ms integer DEFAULT 0, IN p_metadata jsonb DEFAULT '{}'::jsonb,
    IN p_idempotent boolean DEFAULT false, IN p_priority text DEFAULT NULL::text,
    IN p_queue_ticket uuid DEFAULT NULL::uuid, IN p_wait_left_ms integer DEFAULT NULL::integer,
    IN p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    IN p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    IN p_holder uuid DEFAULT NULL::uuid, IN p_output_tokens integer[] DEFAULT NULL::integer[],
    IN p_requests integer DEFAULT 1, INOUT o_reservation jsonb DEFAULT NULL::jsonb,
    INOUT o_quota jsonb DEFAULT NULL::jsonb, INOUT o_cause text DEFAULT NULL::text)
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting and v_lsn are assigned and never read by design, as said below.)
declare
  -- set_config's and the message's answers, taken by assignments: a perform is a statement of its own
  -- (counted, about 6k instructions more each).
  v_setting text;
  v_lsn pg_lsn;
  v_reads record;  -- google_ai_reserve_reads'
begin
  -- The booking: its commit does not wait for the disk, so the counter row's lock goes with it.
  v_setting := pg_catalog.set_config('synchronous_commit', 'off', true);
  o_reservation := public.google_ai_reserve_models(p_models => p_models,
    p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
    p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
    p_wait_ms => p_wait_ms, p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
    p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_reply_by => p_reply_by,
    p_hold_until => p_hold_until, p_holder => p_holder, p_output_tokens => p_output_tokens,
    p_requests => p_requests);
  commit;
  -- The answer's reads, under no lock (an assignment, not a query: a query's executor start costs more).
  v_reads := public.google_ai_reserve_reads(p_reservation => o_reservation, p_model => p_models[1],
    p_exclude_key_ids => p_exclude_key_ids);
  o_reservation := v_reads.o_reservation;
  o_quota := v_reads.o_quota;
  o_cause := v_reads.o_cause;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the booking's commit written before it. (A transaction
  -- that writes no WAL, or only takes an id, commits without waiting.)
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;

-- Reservations of one caller that met in one worker while one of theirs was being made (store/pg-store.ts:
-- one caller and one model chain; p_calls: a JSON array of google_ai_reservation records, null fields the
-- entry's defaults), booked in one transaction, each in its turn as google_ai_reserve_models_at books it
-- alone: one commit and one flush for them all, where each alone would wait for a flush of its own. The
-- answer is theirs, in the calls' order. Locks: the first call takes what it needs as a call alone does;
-- the others mostly hold its caller's rows already (token, client, budget: unless the first gave them back
-- with a try it undid), never wait for a counter row or an advisory lock another transaction holds
-- (eve.batch_member: google_ai_counter_locked, google_ai_advisory_lock), and wait at most 50 ms for
-- anything else (lock_timeout): a wait while this transaction holds an earlier call's counter row would
-- break the global lock order (docs/architecture.md, §2). Such a call is undone alone (its own
-- subtransaction) and answered {"alone": true}: the worker makes it again by itself
-- (google_ai_reserve_call). Both settings last this function only, each put back before it answers (a
-- set_config inside a function is kept to the transaction's end unless the function's own SET clause
-- names the variable, and a SET clause may not name a custom one but as a superuser).
CREATE OR REPLACE FUNCTION public.google_ai_reserve_many(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_call public.google_ai_reservation;
  v_answers jsonb[] := '{}'::jsonb[];
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_chain record;          -- the first read of the chain of v_chain_of (google_ai_fallback_chain)
  v_chain_of text[];
begin
  perform pg_catalog.set_config('eve.batch_member', 'off', true); -- the first call waits as one alone does
  if pg_catalog.jsonb_typeof(p_calls) is distinct from 'array' or pg_catalog.jsonb_array_length(p_calls) > 16 then
    raise exception 'p_calls must be an array of at most 16 reservations' using errcode = '22023';
  end if;
  if exists (select from pg_catalog.jsonb_array_elements(p_calls) c
             where (c ->> 'caller', c ->> 'token_hash')
                   is distinct from (p_calls -> 0 ->> 'caller', p_calls -> 0 ->> 'token_hash')) then
    raise exception 'the reservations of p_calls must share one caller' using errcode = '22023';
  end if;
  for v_call in select c.* from pg_catalog.jsonb_populate_recordset(null::public.google_ai_reservation, p_calls) c loop
    -- A chain is read once for the calls that name it without a ticket (its rows do not change under
    -- the batch; counted, 220k instructions less a call in a batch of 8, of 3.54M).
    if v_call.queue_ticket is null and cardinality(v_call.models) between 2 and 4
       and array_position(v_call.models, null) is null and v_call.models is distinct from v_chain_of then
      v_chain := public.google_ai_fallback_chain(v_call.models, v_call.token_hash, null,
        pg_catalog.clock_timestamp(), true);
      v_chain_of := v_call.models;
    end if;
    begin
      v_answers := v_answers || case when v_call.queue_ticket is null and v_call.models = v_chain_of
        then public.google_ai_reserve_models_at(null, v_call, v_chain)
        else public.google_ai_reserve_models_at(null, v_call) end;
    exception when lock_not_available then
      v_answers := v_answers || '{"alone": true}'::jsonb;
    end;
    if cardinality(v_answers) = 1 then
      perform pg_catalog.set_config('lock_timeout', '50ms', true),
        pg_catalog.set_config('eve.batch_member', 'on', true);
    end if;
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true),
    pg_catalog.set_config('eve.batch_member', 'off', true);
  return pg_catalog.to_jsonb(v_answers);
end
$$;
