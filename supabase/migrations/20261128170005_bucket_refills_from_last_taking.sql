-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a bucket refills from its last taking (no grid), is held to its bucket alone (not the
--   sliding minute), its waiters' turns likewise and their openings all now; Anthropic's word that its
--   request bucket holds no request, when even its earliest reading is later than the gateway's own request
--   bucket's next place, moves that place to it (no rest of the model otherwise); a refusal of the window
--   names a time, the second's fallback only where the booking was not asked
set check_function_bodies = off;

drop function if exists "public"."google_ai_group_slots"(p_openings timestamp with time zone[], p_needed integer, p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval);

drop function if exists "public"."google_ai_spread_next"(p_spread_until timestamp with time zone, p_now timestamp with time zone, p_step interval);

CREATE OR REPLACE FUNCTION public.google_ai_group_slots(p_openings timestamp with time zone[], p_needed integer, p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval, p_grid boolean)
 RETURNS timestamp with time zone[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_n integer := cardinality(p_openings);
  v_schedule timestamptz := p_schedule;
  v_slot timestamptz;
  v_slots timestamptz[] := '{}'::timestamptz[];
begin
  for j in 1 .. p_needed loop
    v_slot := p_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * p_window;
    if p_step is not null then
      v_slot := greatest(v_slot, v_schedule - p_tolerance);
      v_schedule := public.google_ai_spread_next(v_schedule, v_slot, p_step, p_grid);
    end if;
    v_slots := v_slots || v_slot;
  end loop;
  return v_slots;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone, p_now timestamp with time zone, p_step interval, p_grid boolean)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case
    when p_spread_until operator(pg_catalog.>=) (p_now operator(pg_catalog.-)
           case when p_grid then p_step operator(pg_catalog./) 2 else interval '0' end)
              then p_spread_until else p_now end operator(pg_catalog.+) p_step
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric, OUT budget_period text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
declare
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try record;      -- a candidate's answer: google_ai_book_group's, or a refusal in that one row shape
begin
  if p_model.model is null then
    return; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name);
  if v_budget.cause is not null then
    select 'caller_budget', v_budget.cause, v_budget.reopens_at, v_budget.period
      into blocked_by, cause, reopens_at, budget_period;
    return;
  end if;

  -- The candidates, best first, each tier twice: the second pass waits for the groups the first passed
  -- over. What their unlocked counts already show (a cooldown, the day or the window full for
  -- everyone) is refused without taking their locks.
  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids,
                 case when p_model.bucket_share is null then p_model.rpm end, p_model.tpm, p_model.rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone, p_output);
      if v_try.outcome = 'booked' then
        -- (After waiting for the row, the key read before the wait must still serve the group.)
        if v_candidate.waiting and not public.google_ai_key_serves(p_model.model, p_exclude_key_ids,
                                                                   v_candidate.key_id, v_candidate.quota_group) then
          raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
            using errcode = '40001';
        end if;
        exit;
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      select v_candidate.full_by as outcome, null::timestamptz as minute_bucket, null::date as day_bucket,
             public.google_ai_full_group_reopens_at(v_candidate.quota_group, v_candidate.full_by,
               v_candidate.cooldown_until, p_model, p_at, p_tokens, p_class.name, p_caller.name) as reopens_at,
             null::timestamptz as recheck_at, public.google_ai_refusal_cause(v_candidate.full_by) as cause,
             null::timestamptz as admitted_at, null::jsonb as quota into v_try;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif v_try.outcome = 'booked' then -- (the loop's last candidate, and its answer)
    booked_group := v_candidate.quota_group; key_id := v_candidate.key_id; key_alias := v_candidate.key_alias;
    env_var_name := v_candidate.env_var_name; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
    admitted_at := v_try.admitted_at; quota := v_try.quota; booked_usd := v_budget.worst;
    blocked_by := null; reopens_at := null; recheck_at := null; cause := null; -- (a group before it may have refused)
    if v_budget.day is not null then
      perform public.google_ai_count_budgets(null, null, p_caller.name, p_at, null,
        public.google_ai_request_counts(p_attempt), p_tokens, v_budget.worst, true);
    end if;
    return;
  end if;

  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  recheck_at := case when recheck_at >= reopens_at then null else recheck_at end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_day date;
  v_counts integer[];  -- the day's counts (google_ai_day_counts): today's, ahead for tomorrow, yesterday's
  v_midnight timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_ring record;
  v_rules record;      -- what the rules say (google_ai_booking_rules)
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      outcome := 'skipped';
      return;
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_day := greatest(public.google_ai_day_in(v_now, p_zone), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_midnight_after_in(v_now, p_zone);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_day_start_in(v_day, p_zone) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_now, v_window, v_day, p_tokens,
      v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end, v_near_start, p_output);
    outcome := v_rules.outcome; cause := v_rules.cause; day_bucket := v_day;
    minute_bucket := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    if outcome <> 'booked' then
      select r.reopens_at, r.recheck_at into reopens_at, recheck_at
      from public.google_ai_refusal_times(outcome, v_rules.window_full, p_quota_group, p_model, p_class, p_caller,
        v_now, v_window, p_tokens, v_midnight, v_day_guard, v_near_end, p_model.rpd - v_rules.held_rpd > v_counts[1],
        v_rules.paced_until, v_rules.spread_at, v_guard.recheck_ms) r;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = google_ai_book_group.minute_bucket,
      day_bucket      = v_day,
      rpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.rpm_used else 0 end
                        + 1,
      tpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_counts[1] + 1,
      rpd_next_used   = v_counts[2] + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_counts[3] + case when v_near_start then 1 else 0 end,
      ring_low        = v_ring.ring_low,
      ring            = v_ring.ring,
      window_requests = v_ring.sum_requests,
      window_tokens   = v_ring.sum_tokens,
      window_at       = v_now,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_now, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, 1, null, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
    quota := public.google_ai_booked_quota(p_model.model, p_quota_group, p_model.rpm, p_model.tpm, p_model.rpd, v_now,
      v_ring.sum_requests, v_ring.sum_tokens, v_ring.ring_low, v_ring.ring, v_window, v_counts, v_near_end,
      v_near_start, v_day, v_midnight, v_day_guard, v_rules.kept)
      - case when v_rules.kept is null then '{kept}' else '{}' end::text[];
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, cause, the buckets, reopens_at and recheck_at keep the values set above
  end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_requests integer, p_tokens bigint, p_day integer[], p_near_end boolean, p_near_start boolean, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, OUT outcome text, OUT cause text, OUT window_full boolean)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_day[1] + 1 > p_model.rpd - p_held[1]
    or (p_near_end and p_day[2] + 1 > p_model.rpd - p_held[2])
    or (p_near_start and p_day[3] + 1 > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_day[1] + 1 > p_model.rpd
    or (p_near_end and p_day[2] + 1 > p_model.rpd) or (p_near_start and p_day[3] + 1 > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_tokens > p_model.tpm;
begin
  window_full := v_rpm_full or v_tpm_full;
  if v_day_full then
    outcome := 'rpd';
    cause := case when v_day_spent then 'day_exhausted' else 'share_kept' end;
  elsif p_paced_until is not null then
    outcome := 'pace';
    cause := 'pace';
  elsif window_full then
    outcome := case when v_rpm_full then 'rpm' else 'tpm' end;
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    cause := case when (p_model.rpm is not null and p_requests > p_model.rpm) or v_tpm_full then 'window_full'
                  else 'share_kept' end;
  elsif p_spread_at is not null then
    outcome := p_spread_limit;
    cause := 'spread';
  else
    outcome := 'booked';
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_spread record;
  v_bucket numeric;
  v_burst integer;
  v_spaced boolean;
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}'::timestamptz[];
  v_likely timestamptz[] := '{}'::timestamptz[];
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  -- The schedule as google_ai_schedule_place keeps it: a request bucket (bucket_share) for every class.
  select l.bucket_share, l.spread_burst into v_bucket, v_burst from public.google_ai_model_limits l
  where l.model = p_model;
  v_spread := public.google_ai_spread_step(case when v_bucket is null then v_burst
    else greatest(1, floor(p_rpm * v_bucket))::integer end, v_window, p_rpm, null, 0);
  v_spaced := v_spread.step is not null and (v_bucket is not null or p_rank is null
              or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank));
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model, u.share_use, p_now, v_window, p_class, p_caller) as held
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when v_bucket is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
    v_room := p_rpm - v_group.held;
    kept_bound := kept_bound or (v_count < p_rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_spaced and v_openings[1] <= p_now and v_group.spread_until - v_spread.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_spaced then v_spread.step end, v_spread.tolerance, v_bucket is null);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now).
  -- None when the shares this waiter does not own keep every group's window from it: the booking
  -- names when, if ever, one has room for it.
  turn_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_slots, p_slots, p_now) end;
  likely_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_likely, p_slots, p_now) end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_model text, p_requested_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_caller text, p_client_id uuid, p_token_id uuid, p_request_id text, p_tokens integer, p_class text, p_rank smallint, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_new_ticket uuid, p_limit text, p_cause text, p_booking_tried boolean, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_turn;
  v_since timestamptz := p_since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_model, p_now);
  if p_ticket is null then
    v_turn := public.google_ai_next_turn(p_model, p_rank, p_caller, null, null, null);
    v_since := p_now;
  end if;
  select count(*), min(q.lease_until) filter (where q.expected_at <= p_now) into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_model and q.ticket_id is distinct from p_ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_rank, v_turn, v_since, coalesce(p_ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_model, p_rpm, p_rpd, p_exclude_key_ids, p_now, v_ahead + 1, p_rank,
    p_class, p_caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_booking_tried and p_reopens_at is null and p_recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_reopens_at, p_recheck_at), p_now + interval '50 milliseconds');
  if turn_at is null and p_reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
    values (coalesce(p_ticket, p_new_ticket), p_model, p_class, p_rank, p_caller, p_client_id, p_token_id,
      p_request_id, p_requested_model, v_turn, v_since, p_tokens, p_limit, expected, expected + v_grace, v_ahead + 1)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
    returning * into v_ticket;
    answer := jsonb_build_object(
      'ok', false,
      'limit', p_limit,
      'cause', p_cause,
      'retry_after_ms', public.google_ai_ms_until(expected, p_now),
      'retry_at', expected,
      'model', p_model,
      'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                  'expected_at', expected, 'priority', p_class));
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_limits public.google_ai_model_limits, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid, p_period text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_reopens_at timestamptz := p_reopens_at;
  v_recheck_at timestamptz := p_recheck_at;
  v_retry_ms bigint;
  v_said jsonb := jsonb_build_object('max_tokens', case when p_limit = 'too_large'
                                                       then coalesce(p_limits.tpm, p_limits.itpm) end)
    || case when p_limit = 'too_large' and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when p_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_period is not null then jsonb_build_object('period', p_period)
            else '{}' end;
begin
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if p_limit = 'shut_down' then
    if p_limits.successor is not null then
      return jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
        'model', p_limits.model) || v_said;
    end if;
    p_limit := 'withdrawn';
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now => p_now, p_model => p_limits.model,
    p_requested_model => p_requested_model, p_rpm => p_limits.rpm, p_rpd => p_limits.rpd,
    p_exclude_key_ids => p_exclude_key_ids,
    p_caller => p_caller, p_client_id => p_client_id, p_token_id => p_token_id, p_request_id => p_request_id,
    p_tokens => p_estimated_tokens, p_class => p_class, p_rank => p_rank, p_ticket => p_ticket, p_turn => p_turn,
    p_since => p_since, p_new_ticket => p_new_ticket, p_limit => p_limit, p_cause => p_cause,
    p_booking_tried => p_booking_tried, p_reopens_at => p_reopens_at, p_recheck_at => p_recheck_at,
    p_wait_left_ms => p_wait_left_ms) w
  where public.google_ai_queue_turns(p_limit) is not null and coalesce(p_wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_wait_left_ms, 0) > 0 then v_wait.turn_at else p_turn_at end, v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if p_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, refusal_cause = p_cause, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if p_limit = 'no_active_key' and cardinality(p_exclude_key_ids) > 0 then
    null;
  elsif coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, coalesce(p_limits.model, p_requested_model),
      p_requested_model, p_attempt, p_estimated_tokens, p_limit, p_cause, v_retry_ms, p_wait_ms,
      coalesce(p_metadata, '{}'));
  end if;
  return jsonb_build_object('ok', false, 'limit', p_limit, 'cause', p_cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
  v_place timestamptz;   -- the gateway's own place for the next request in the model's request bucket
begin
  if p_room_until > v_now and p_att.quota_group is not null and p_room_requests = 0 and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  end if;
  if v_model.bucket_share is not null and v_rpm > 0 then
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    select c.spread_until - v_step.tolerance into v_place from public.google_ai_usage_counters c
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model);
    if p_room_until - 60000.0 / v_model.rpm * interval '1 millisecond' > coalesce(v_place, '-infinity') then
      update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
      where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
        and coalesce(c.spread_until, '-infinity') < p_room_until + v_step.tolerance;
    end if;
  elsif p_room_until > v_now and p_att.quota_group is not null then
    select 2 * count(*) filter (where a.status = 'reserved')
        + count(*) filter (where a.admitted_at > p_att.admitted_at),
      coalesce(2 * sum(a.estimated_tokens) filter (where a.status = 'reserved'), 0)
        + coalesce(sum(a.estimated_tokens) filter (where a.admitted_at > p_att.admitted_at), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
    if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_group_slots(p_openings timestamp with time zone[], p_needed integer, p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval, p_grid boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_spread_next(p_spread_until timestamp with time zone, p_now timestamp with time zone, p_step interval, p_grid boolean) from public, anon, authenticated, service_role;
