-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Reservations of one caller and one chain that meet in a worker are booked in one
--   transaction, one commit and one flush (google_ai_reserve_calls)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_advisory_lock(p_key bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
  if pg_catalog.current_setting('eve.batch_member', true) is distinct from 'on' then
    perform pg_catalog.pg_advisory_xact_lock(p_key);
  elsif not pg_catalog.pg_try_advisory_xact_lock(p_key) then
    raise exception 'an advisory lock another transaction holds' using errcode = '55P03';
  end if;
end
$function$
;

CREATE OR REPLACE PROCEDURE public.google_ai_reserve_calls(IN p_calls jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb)
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
  commit;
  for i in 0 .. pg_catalog.jsonb_array_length(v_booked) - 1 loop
    v_answers := v_answers || case when v_booked -> i ? 'alone' then v_booked -> i else
      (select pg_catalog.to_jsonb(r) from public.google_ai_reserve_reads(p_reservation => v_booked -> i,
         p_model => p_calls -> i -> 'models' ->> 0,
         p_exclude_key_ids => (select coalesce(pg_catalog.array_agg(e::uuid), '{}'::uuid[])
                               from pg_catalog.jsonb_array_elements_text(p_calls -> i -> 'exclude_key_ids') e)) r) end;
  end loop;
  o_answers := pg_catalog.to_jsonb(v_answers);
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_many(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_call public.google_ai_reservation;
  v_answers jsonb[] := '{}'::jsonb[];
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
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
    begin
      v_answers := v_answers || public.google_ai_reserve_models_at(null, v_call);
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[], OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_counter_locked(p_quota_group text, p_model text, p_skip_locked boolean)
 RETURNS public.google_ai_usage_counters
 LANGUAGE plpgsql
AS $function$
declare
  v_row public.google_ai_usage_counters;
begin
  for i in 1 .. 2 loop
    if p_skip_locked then
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update skip locked);
    elsif pg_catalog.current_setting('eve.batch_member', true) = 'on' then
      -- (A batch's later reservation never waits: 37_lock_waits.sql.)
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update nowait);
    else
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update);
    end if;
    exit when v_row.id is not null;
    if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                 where c.quota_group = p_quota_group and c.model = p_model) then
      return v_row;
    end if;
    insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
    values (p_quota_group, p_model, 0, 0, 0)
    on conflict (quota_group, model) where quota_group is not null do nothing;
  end loop;
  if v_row.id is null then
    raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
  end if;
  return v_row;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
  v_retry_ms bigint;
begin
  perform public.google_ai_advisory_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return row(false, 'duplicate', 'duplicate', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
        'retry_after_ms', null, 'retry_at', null))::public.google_ai_admission_verdict;
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      v_retry_ms := greatest(1000, public.google_ai_ms_until(v_held_until, p_now));
      return row(false, 'in_progress', 'in_progress', v_retry_ms, v_held_until, null, null, null, null,
        jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
          'retry_after_ms', v_retry_ms, 'retry_at', v_held_until))::public.google_ai_admission_verdict;
    end if;
  end if;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform public.google_ai_advisory_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, p_class.name, p_request.caller);
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests, waits_for, reply_by)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name),
      p_request.reply_by)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for, reply_by = excluded.reply_by
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$
;

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
  select r.o_reservation, r.o_quota, r.o_cause into o_reservation, o_quota, o_cause
  from public.google_ai_reserve_reads(p_reservation => o_reservation, p_model => p_models[1],
    p_exclude_key_ids => p_exclude_key_ids) r;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the booking's commit written before it. (A transaction
  -- that writes no WAL, or only takes an id, commits without waiting.)
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_advisory_lock(p_key bigint) from public, anon, authenticated, service_role;
revoke all on procedure public.google_ai_reserve_calls(IN p_calls jsonb, INOUT o_answers jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on procedure public.google_ai_reserve_calls(IN p_calls jsonb, INOUT o_answers jsonb) to eve_gateway;
grant execute on procedure public.google_ai_reserve_calls(IN p_calls jsonb, INOUT o_answers jsonb) to service_role;
revoke all on function public.google_ai_reserve_many(p_calls jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_many(p_calls jsonb) to eve_gateway;
grant execute on function public.google_ai_reserve_many(p_calls jsonb) to service_role;
revoke all on function public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[], OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[], OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text) to eve_gateway;
grant execute on function public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[], OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text) to service_role;
