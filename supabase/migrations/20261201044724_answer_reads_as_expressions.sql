-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a reservation's reads after its commit are expressions, not queries
--   (google_ai_reserve_call, google_ai_reserve_calls): no executor start for them
set check_function_bodies = off;

CREATE OR REPLACE PROCEDURE public.google_ai_reserve_call(IN p_models text[], IN p_estimated_tokens integer, IN p_caller text DEFAULT NULL::text, IN p_token_hash text DEFAULT NULL::text, IN p_request_id text DEFAULT NULL::text, IN p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], IN p_attempt integer DEFAULT 1, IN p_wait_ms integer DEFAULT 0, IN p_metadata jsonb DEFAULT '{}'::jsonb, IN p_idempotent boolean DEFAULT false, IN p_priority text DEFAULT NULL::text, IN p_queue_ticket uuid DEFAULT NULL::uuid, IN p_wait_left_ms integer DEFAULT NULL::integer, IN p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, IN p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, IN p_holder uuid DEFAULT NULL::uuid, IN p_output_tokens integer[] DEFAULT NULL::integer[], IN p_requests integer DEFAULT 1, INOUT o_reservation jsonb DEFAULT NULL::jsonb, INOUT o_quota jsonb DEFAULT NULL::jsonb, INOUT o_cause text DEFAULT NULL::text)
 LANGUAGE plpgsql
AS $procedure$
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
$procedure$
;

CREATE OR REPLACE PROCEDURE public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb DEFAULT NULL::jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb, INOUT o_finalized jsonb DEFAULT NULL::jsonb)
 LANGUAGE plpgsql
AS $procedure$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting and v_lsn are assigned and never read by design, as in google_ai_reserve_call.)
declare
  v_setting text;
  v_lsn pg_lsn;
  v_booked jsonb;
  v_answers jsonb[] := '{}'::jsonb[];
begin
  v_setting := pg_catalog.set_config('synchronous_commit', 'off', true);
  v_booked := public.google_ai_reserve_many(p_calls => p_calls);
  if p_finalizes is not null then
    o_finalized := public.google_ai_finalize_riding(p_calls => p_finalizes);
  end if;
  commit;
  for i in 0 .. pg_catalog.jsonb_array_length(v_booked) - 1 loop
    -- (Expressions, not queries: a query's executor start costs more than its work here.)
    v_answers := v_answers || case when v_booked -> i ? 'alone' then v_booked -> i else
      pg_catalog.to_jsonb(public.google_ai_reserve_reads(p_reservation => v_booked -> i,
        p_model => p_calls -> i -> 'models' ->> 0,
        p_exclude_key_ids => coalesce((pg_catalog.jsonb_populate_record(null::public.google_ai_reservation,
          p_calls -> i)).exclude_key_ids, '{}'::uuid[]))) end;
  end loop;
  o_answers := pg_catalog.to_jsonb(v_answers);
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;
