-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the reservation CALL reads a step's cooldown cause only when a step rested, and takes
--   set_config's and the flush message's answers by assignment
set check_function_bodies = off;

CREATE OR REPLACE PROCEDURE public.google_ai_reserve_call(IN p_models text[], IN p_estimated_tokens integer, IN p_caller text DEFAULT NULL::text, IN p_token_hash text DEFAULT NULL::text, IN p_request_id text DEFAULT NULL::text, IN p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], IN p_attempt integer DEFAULT 1, IN p_wait_ms integer DEFAULT 0, IN p_metadata jsonb DEFAULT '{}'::jsonb, IN p_idempotent boolean DEFAULT false, IN p_priority text DEFAULT NULL::text, IN p_queue_ticket uuid DEFAULT NULL::uuid, IN p_wait_left_ms integer DEFAULT NULL::integer, IN p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, IN p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, IN p_holder uuid DEFAULT NULL::uuid, IN p_output_tokens integer[] DEFAULT NULL::integer[], IN p_requests integer DEFAULT 1, INOUT o_reservation jsonb DEFAULT NULL::jsonb, INOUT o_quota jsonb DEFAULT NULL::jsonb, INOUT o_cause text DEFAULT NULL::text)
 LANGUAGE plpgsql
AS $procedure$
declare
  -- set_config's and the message's answers, taken by assignments: a perform is a statement of its own
  -- (counted, about 6k instructions more each).
  v_setting text;
  v_lsn pg_lsn;
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
  -- The answer's reads, under no lock.
  o_quota := coalesce(o_reservation -> 'quota', public.google_ai_answer_quota(p_answer => o_reservation,
    p_model => p_models[1], p_exclude_key_ids => p_exclude_key_ids));
  if o_reservation ->> 'limit' = 'cooldown' then
    o_cause := public.google_ai_cooldown_cause(p_model => coalesce(o_reservation ->> 'model', p_models[1]));
  end if;
  o_reservation := o_reservation - 'quota';
  -- Only a cooldown step has a cause to read (google_ai_step_causes leaves every other step as it is); a
  -- chain served by its first model has none (counted, about 80k instructions for an empty list).
  if o_reservation -> 'fallback_from' @> '[{"limit": "cooldown"}]' then
    o_reservation := pg_catalog.jsonb_set(o_reservation, '{fallback_from}',
      public.google_ai_step_causes(p_steps => o_reservation -> 'fallback_from'));
  end if;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the booking's commit written before it. (A transaction
  -- that writes no WAL, or only takes an id, commits without waiting.)
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;
