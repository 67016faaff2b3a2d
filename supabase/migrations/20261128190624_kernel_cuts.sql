-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Kernel cuts (79): the named steps kept under 80 lines (paced_until, key_serves,
--   full_group_reopens_at back); queue_turn_at takes the model row; record_admission's answer one expression
set check_function_bodies = off;

drop function if exists "public"."google_ai_queue_turn_at"(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean);

CREATE OR REPLACE FUNCTION public.google_ai_full_group_reopens_at(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
  select case p_full_by
           when 'cooldown' then p_cooldown_until
           when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                           operator(pg_catalog.+) ((public.google_ai_admission_guard()).day_guard_ms
                                                   operator(pg_catalog.*) interval '1 millisecond')
           else public.google_ai_window_reopens_for(p_quota_group, p_model.model, p_at,
             public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
             p_model.rpm, p_model.tpm, p_tokens, p_class, p_caller) end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_key_serves(p_model text, p_exclude_key_ids uuid[], p_key_id uuid, p_quota_group text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return exists (select 1 from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
                 where s.key_id = p_key_id and s.quota_group = p_quota_group);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when p_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := p_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + 1 > public.google_ai_pace_allowance(p_now, p_day, p_burst[i], v_usable, p_zone) then
      v_at := greatest(v_at, coalesce(public.google_ai_pace_opens_at(p_day, p_used[i], p_burst[i], v_usable, p_zone),
                                      public.google_ai_pace_opens_at(p_day + 1, p_next[i], p_burst[i], v_usable,
                                                                     p_zone),
                                      public.google_ai_day_start_in(p_day + 2, p_zone)));
    end if;
  end loop;
  return v_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model public.google_ai_model_limits, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_spread record;
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
  v_spread := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, v_window, p_model.rpm, null, 0);
  v_spaced := v_spread.step is not null and (p_model.bucket_share is not null or p_rank is null
              or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank));
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model.model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model.model, u.share_use, p_now, v_window, p_class, p_caller) as held
    from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, null, p_model.rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model.model
  loop
    continue when v_group.cooldown_until is not null or (p_model.rpd is not null and v_group.rpd_used >= p_model.rpd);
    v_day_left := v_day_left + coalesce(p_model.rpd - v_group.rpd_used, 1000000);
    if p_model.rpm is null then
      free_now := 1000000;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when p_model.bucket_share is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
    v_room := p_model.rpm - v_group.held;
    kept_bound := kept_bound or (v_count < p_model.rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_spaced and v_openings[1] <= p_now and v_group.spread_until - v_spread.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(p_model.rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_spaced then v_spread.step end, v_spread.tolerance, p_model.bucket_share is null);
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

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer)
 RETURNS public.google_ai_booking
 LANGUAGE plpgsql
AS $function$
declare
  blocked_by text;   -- the earliest reopening so far, and why
  reopens_at timestamptz;
  recheck_at timestamptz;
  cause text;
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try public.google_ai_group_booking;  -- a candidate's answer: google_ai_book_group's, or a refusal in its shape
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
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
      v_try := row(v_candidate.full_by, null, null, public.google_ai_full_group_reopens_at(v_candidate.quota_group,
        v_candidate.full_by, v_candidate.cooldown_until, p_model, p_at, p_tokens, p_class.name, p_caller.name), null,
        public.google_ai_refusal_cause(v_candidate.full_by), null, null)::public.google_ai_group_booking;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif v_try.outcome = 'booked' then -- (the loop's last candidate, and its answer; a refusal before it is dropped)
    if v_budget.day is not null then
      perform public.google_ai_count_budgets(null, null, p_caller.name, p_at, null,
        public.google_ai_request_counts(p_attempt), p_tokens, v_budget.worst, true);
    end if;
    return row(v_candidate.quota_group, v_try.minute_bucket, v_try.day_bucket, null, null, null, null,
      v_try.admitted_at, v_try.quota, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name,
      v_budget.worst, null)::public.google_ai_booking;
  end if;
  -- Asking again only helps before the reopening itself.
  return row(null, null, null, blocked_by, reopens_at,
    case when recheck_at >= reopens_at then null else recheck_at end,
    coalesce(cause, public.google_ai_refusal_cause(blocked_by)), null, null, null, null, null, null,
    null)::public.google_ai_booking;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer)
 RETURNS public.google_ai_booking_verdict
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  paced_until timestamptz; spread_at timestamptz; live bigint[]; owned bigint[]; kept jsonb;
  input_until timestamptz; output_until timestamptz;  -- its answer's fields
  v_class text := p_class.name;
  v_caller text := p_caller.name;
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}'::bigint[];
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[]; v_pace_used integer[]; v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict public.google_ai_outcome;
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = v_class, false) as for_class,
           coalesce(s.priority_class = v_class, false) or coalesce(s.caller = v_caller, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_at.day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_at.at, p_at.minute, v_share.ring_low, v_share.ring,
                          v_share.window_requests, null)).sum_requests end;
    live := live || v_share.id;
    v_reserved_rpd := v_reserved_rpd + v_share.rpd_share;
    if v_share.is_owned then
      owned := owned || v_share.id;
      v_in_share := v_in_share or coalesce(v_win < v_share.reserved_rpm, false);
      if v_share.pace_burst is not null then
        v_pace_burst := v_pace_burst || v_share.pace_burst;
        v_pace_kept := v_pace_kept || v_share.rpd_share;
        v_pace_used := v_pace_used || v_share.day[1];
        v_pace_next := v_pace_next || v_share.day[2];
      end if;
    else
      v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_win);
      v_held := array[v_held[1] + greatest(0, v_share.rpd_share - v_share.day[1]),
                      v_held[2] + greatest(0, v_share.rpd_share - v_share.day[2]),
                      v_held[3] + greatest(0, v_share.rpd_share - v_share.day[3])];
    end if;
    v_kept := case when v_share.for_class
                   then array[v_kept[1], v_kept[2] + coalesce(v_share.reserved_rpm, 0), v_kept[3],
                              v_kept[4] + v_share.rpd_share]
                   else array[v_kept[1] + coalesce(v_share.reserved_rpm, 0), v_kept[2],
                              v_kept[3] + v_share.rpd_share, v_kept[4]] end;
  end loop;

  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_at.at, p_at.day, p_model.rpd, v_reserved_rpd, v_pace_burst,
      v_pace_kept, v_pace_used, v_pace_next, p_at.zone);
  end if;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    -- (No bucket, Google's and OpenAI's rows: the spread alone, as google_ai_schedule_place has it, one call less.)
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm, p_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class.rank, p_counter.spread_until, p_counter.input_until,
      p_counter.output_until, p_at.at, p_at.minute, p_tokens, p_output, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_at, v_held_rpm, v_held, paced_until,
    spread_at, v_step.limit_name);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until)::public.google_ai_booking_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_variable
declare
  v_held public.google_ai_queue;
  v_ahead integer;
  v_due_ahead integer;
  v_head_limit text;   -- the limit a due ticket ahead waits for head first (google_ai_queue_turns)
  v_free_now integer;
  v_spread_bound boolean;
  v_kept_bound boolean;
begin
  rank := p_class.rank;
  class := p_class.name;
  may_book := true;
  if p_model.model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = p_caller.name and q.model = p_model.model and q.lease_until >= p_now;
    if v_held.ticket_id is not null then
      select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
        into ticket, rank, class, since;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      turn := least(v_held.turn,
        public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, ticket, v_held.turn));
    end if;
  end if;
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  select count(*), count(*) filter (where q.expected_at <= p_now),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + 1, rank, class, p_caller.name) t;
  -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks. (No turn,
  -- none today anywhere or every window kept from it by shares: the booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead < v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = p_model.model) u on u.share_id = s.id
               where s.model = p_model.model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = p_caller.name)
                 and coalesce((public.google_ai_ring_at(p_now,
                       public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                       u.ring_low, u.ring, u.window_requests, null)).sum_requests, 0) < s.reserved_rpm));
  if not may_book then
    blocked_by := coalesce(v_head_limit, case when p_model.rpm is not null then 'rpm' else 'tpm' end);
    cause := case when v_head_limit is not null or v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread'
                  when v_kept_bound then 'share_kept' else 'window_full' end;
  end if;
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
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select count(*), min(q.lease_until) filter (where q.expected_at <= p_now) into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + 1, p_class.rank,
    p_class.name, p_request.caller) t;
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
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
    returning * into v_ticket;
    answer := jsonb_build_object(
      'ok', false,
      'limit', p_refusal.limit_hit,
      'cause', p_refusal.cause,
      'retry_after_ms', public.google_ai_ms_until(expected, p_now),
      'retry_at', expected,
      'model', p_limits.model,
      'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                  'expected_at', expected, 'priority', p_class.name));
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt), p_request.estimated_tokens, p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_answer;
  return v_answer;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_full_group_reopens_at(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_key_serves(p_model text, p_exclude_key_ids uuid[], p_key_id uuid, p_quota_group text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queue_turn_at(p_model public.google_ai_model_limits, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean) from public, anon, authenticated, service_role;
