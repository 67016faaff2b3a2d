-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_finalize_calls settles the calls of one counter row in hand and writes the row
--   once (google_ai_settle_calls; google_ai_settle_admission and google_ai_settle_call split into
--   google_ai_admission_settled, google_ai_write_settled and google_ai_call_counted)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_admission_settled(p_row public.google_ai_usage_counters, p_model public.google_ai_model_limits, p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS public.google_ai_usage_counters
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -p_att.requests else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  v_window_us numeric;
  -- The tokens a bucket gets back: what was booked less what was used.
  v_input_back integer;
  v_output_back integer;
  v_new public.google_ai_usage_counters := p_row;
begin
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(p_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  v_at.day := p_att.day_bucket;  -- (the day it counted in, which its owners' shares give back: its row's)
  -- The token buckets (itpm, otpm: google_ai_schedule_place) get back what the admission booked (its answer,
  -- booked_output_tokens, and its input, the rest of estimated_tokens where the row books answers in its
  -- tokens) less what the call used, as Anthropic corrects its estimates at the end: the answer's input (its
  -- cache reads left out unless the row counts them) and output. Released: all of it. No count from the
  -- provider: the input stays, the answer goes back when the settled count (p_tokens) gave it back (a call
  -- refused before generating). A call that used more than it booked takes nothing more. What goes back
  -- moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was taken; no limit
  -- (after the margin, as the booking took it: google_ai_request_limits), or nothing back: as it was.
  if p_att.booked_output_tokens is not null then
    v_input_back := p_att.estimated_tokens - case when p_model.booked_output_tokens is not null
                                                  then p_att.booked_output_tokens else 0 end;
    v_output_back := p_att.booked_output_tokens;
    if not p_released and p_att.input_tokens is not null then
      v_input_back := v_input_back - (p_att.input_tokens
        - case when p_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end);
      v_output_back := v_output_back - coalesce(p_att.output_tokens, 0);
    elsif not p_released then
      v_input_back := 0;
      v_output_back := case when p_tokens < p_att.estimated_tokens then v_output_back else 0 end;
    end if;
    p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
    p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
    v_window_us := extract(epoch from v_at.minute) * 1000000;
    if p_model.itpm is not null and coalesce(v_input_back, 0) > 0 then
      v_new.input_until := p_row.input_until
        - floor(v_window_us * v_input_back / p_model.itpm) * interval '1 microsecond';
    end if;
    if p_model.otpm is not null and coalesce(v_output_back, 0) > 0 then
      v_new.output_until := p_row.output_until
        - floor(v_window_us * v_output_back / p_model.otpm) * interval '1 microsecond';
    end if;
  end if;

  if p_released and p_row.minute_bucket = p_att.minute_bucket then
    v_new.rpm_used := greatest(0, p_row.rpm_used - p_att.requests);
  end if;
  if p_row.minute_bucket = p_att.minute_bucket then
    v_new.tpm_used := greatest(0, p_row.tpm_used + v_delta);
  end if;
  if p_released and p_row.day_bucket = p_att.day_bucket then
    v_new.rpd_used := greatest(0, p_row.rpd_used - p_att.requests);
    if v_at.near_end then
      v_new.rpd_next_used := greatest(0, p_row.rpd_next_used - p_att.requests);
    end if;
    if v_at.near_start then
      v_new.rpd_prev_used := greatest(0, p_row.rpd_prev_used - p_att.requests);
    end if;
  end if;
  v_new.ring := v_at.ring;
  v_new.window_requests := v_at.sum_requests;
  v_new.window_tokens := v_at.sum_tokens;
  if p_released and p_row.share_use is not null then
    v_new.share_use := public.google_ai_share_use_counted(p_row.share_use, null,
      array(select s.id from public.google_ai_quota_shares s
            where s.model = p_att.model and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
      v_at, v_requests);
  end if;
  return v_new;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_call_counted(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_outcome.room_until is not null then
    v_model := public.google_ai_room_bucket_model(p_att, p_outcome.room_requests, p_outcome.room_tokens,
      p_outcome.room_until);
  end if;
  if v_model.model is not null then
    v_rpm := public.google_ai_group_rpm(v_model, p_att.quota_group);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_outcome.room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_outcome.room_until - 60000.0 / greatest(v_model.rpm, v_rpm) * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_outcome.room_until + v_step.tolerance;
  elsif p_outcome.room_until is not null then
    perform public.google_ai_room_rest(p_att, p_outcome.room_requests, p_outcome.room_tokens, p_outcome.room_until);
  end if;

  v_counted := p_outcome.input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null)
    then coalesce(p_outcome.output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_outcome.settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(row(p_att.caller, p_att.client_id, p_att.token_id)::public.google_ai_caller,
      p_att.created_at, public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  return greatest(0, coalesce(v_counted, p_att.estimated_tokens));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_calls(p_atts public.google_ai_attempts[], p_outcomes public.google_ai_attempt_outcome[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_tokens integer;
  v_model public.google_ai_model_limits;
  v_held public.google_ai_usage_counters;  -- the counter row in hand (locked), settled so far
begin
  for i in 1 .. coalesce(cardinality(p_atts), 0) loop
    v_att := p_atts[i];
    if (p_outcomes[i]).room_until is not null or (p_outcomes[i]).stated_limits is not null then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
        v_held := null;
      end if;
      perform public.google_ai_settle_call(v_att, p_outcomes[i]);
      continue;
    end if;
    v_tokens := public.google_ai_call_counted(v_att, p_outcomes[i]);
    v_model := (select l from public.google_ai_model_limits l where l.model = v_att.model);
    if v_held.id is null or (v_held.quota_group, v_held.model)
                           is distinct from (v_att.quota_group, coalesce(v_model.limit_pool, v_att.model)) then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
      end if;
      v_held := (select u from public.google_ai_usage_counters u
                 where u.quota_group = v_att.quota_group and u.model = coalesce(v_model.limit_pool, v_att.model)
                 for update);
    end if;
    if v_held.id is not null then
      v_held := public.google_ai_admission_settled(v_held, v_model, v_att, v_tokens, false);
    end if;
  end loop;
  if v_held.id is not null then
    perform public.google_ai_write_settled(v_held);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_write_settled(p_row public.google_ai_usage_counters)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  update public.google_ai_usage_counters c set
    rpm_used = p_row.rpm_used, tpm_used = p_row.tpm_used, rpd_used = p_row.rpd_used,
    rpd_next_used = p_row.rpd_next_used, rpd_prev_used = p_row.rpd_prev_used,
    ring = p_row.ring, window_requests = p_row.window_requests, window_tokens = p_row.window_tokens,
    input_until = p_row.input_until, output_until = p_row.output_until, share_use = p_row.share_use
  where c.id = p_row.id;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  v_outcome public.google_ai_attempt_outcome;
  -- Each call's attempt row as written (google_ai_write_outcome), its admission still to settle, and
  -- the calls to settle in the order they were written (their counter rows').
  v_written public.google_ai_attempts[];
  v_write public.google_ai_outcome_written;
  v_to_settle integer[] := '{}'::integer[];
  c record;
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome,
      case when pg_catalog.jsonb_typeof(e.call -> 'outcome') = 'object' then e.call -> 'outcome'
           else public.google_ai_former_outcome(e.call) end) order by e.n), '{}')
  into v_ids, v_outcomes
  from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n);
  -- Found by their key, whatever the log held when this connection planned the statement: the plan is
  -- kept for the connection's life, and one made on a small log (a new project, a fresh database) scans
  -- the whole log on every call as it grows (measured at 16 callers with 3,500 rows: 480 µs a call of
  -- six finalizes, 75 µs by the index). Planned with sequential scans off, it reads the unique index.
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  v_open := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update);
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  v_written := pg_catalog.array_fill(null::public.google_ai_attempts, array[cardinality(v_ids)]);
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select a, g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    where (v_outcomes[g.n]).room_until is not null
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_outcome := v_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_outcome.room_until := null;  -- (weighed: its settle does not weigh it again)
      v_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  for c in
    select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_write := public.google_ai_write_outcome(v_ids[c.n], v_outcomes[c.n]);
    v_written[c.n] := v_write.att;
    v_answers[c.n] := v_write.answer;
    if (v_write.att).id is not null then
      v_to_settle := v_to_settle || c.n::integer;
    end if;
  end loop;
  -- Then the counter rows, each held from its first settle to the commit: for the settles alone.
  perform public.google_ai_settle_calls(
    array(select v_written[t.n] from unnest(v_to_settle) with ordinality t(n, i) order by t.i),
    array(select v_outcomes[t.n] from unnest(v_to_settle) with ordinality t(n, i) order by t.i));
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model)
  for update;
  if not found then
    return;
  end if;
  perform public.google_ai_write_settled(public.google_ai_admission_settled(v_row, v_model, p_att, p_tokens,
    p_released));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, public.google_ai_call_counted(p_att, p_outcome), false);
  -- The limits the answer states, on the counter row just settled (locked: no other lock taken).
  if p_outcome.stated_limits is not null then
    perform public.google_ai_note_stated(p_att, p_outcome.stated_limits);
  end if;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_admission_settled(p_row public.google_ai_usage_counters, p_model public.google_ai_model_limits, p_att public.google_ai_attempts, p_tokens integer, p_released boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_call_counted(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_settle_calls(p_atts public.google_ai_attempts[], p_outcomes public.google_ai_attempt_outcome[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_write_settled(p_row public.google_ai_usage_counters) from public, anon, authenticated, service_role;
