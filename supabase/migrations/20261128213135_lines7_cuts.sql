-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: lines7: drops google_ai_pacific_start, google_ai_key_serves, google_ai_pace_opens_at,
--   google_ai_model_unlisted, google_ai_bucket_room and google_ai_nth_slot, folded into their one caller;
--   google_ai_ring_expiries as one query
set check_function_bodies = off;

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_bucket_room"(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone);

drop function if exists "public"."google_ai_key_serves"(p_model text, p_exclude_key_ids uuid[], p_key_id uuid, p_quota_group text);

drop function if exists "public"."google_ai_model_unlisted"(p_model text);

drop function if exists "public"."google_ai_nth_slot"(p_slots timestamp with time zone[], p_n integer, p_now timestamp with time zone);

drop function if exists "public"."google_ai_pace_opens_at"(p_day date, p_used integer, p_burst integer, p_usable integer, p_zone text);

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_pacific_start"(p_day date);

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
        -- (After waiting for the row, the key read before the wait must still serve the group. Two exits:
        -- a condition that holds a query is run by the executor even when it need not be.)
        exit when not v_candidate.waiting;
        exit when (v_candidate.key_id, v_candidate.quota_group) in
          (select s.key_id, s.quota_group from public.google_ai_serving_keys(p_model.model, p_exclude_key_ids) s);
        raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
          using errcode = '40001';
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      v_try := row(v_candidate.full_by, null, null, case v_candidate.full_by
          when 'cooldown' then v_candidate.cooldown_until
          when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                          + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
            p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name) end, null,
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

CREATE OR REPLACE FUNCTION public.google_ai_budget_verdict(p_budget public.google_ai_budget, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text, OUT period text, OUT reopens_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, public.google_ai_pacific_day(p_at));
begin
  if v_b.requests + p_requests > v_b.max_requests or v_b.tokens + p_tokens > v_b.max_tokens then
    cause := 'budget';
  elsif v_b.max_usd is not null and (p_worst is null or p_worst + v_b.spent_usd > v_b.max_usd) then
    cause := 'spend_budget';
  elsif v_b.monthly_max_usd is not null
        and (p_worst is null or p_worst + v_b.spent_month_usd > v_b.monthly_max_usd) then
    cause := 'spend_budget';
    period := 'month';
    reopens_at := (v_b.month_bucket + interval '1 month') at time zone public.google_ai_pacific_zone();
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, OUT names text[], OUT models text[], OUT retired boolean[], OUT answer_of integer[], OUT first integer, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1 into names, models, retired, answer_of, first;
  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, token_id, client_id, caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (models);
      exit when cardinality(models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      names := names || v_name;
      models := models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      retired := retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      answer_of := answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if not (false = any (retired)) then
    retired := array_fill(false, array[cardinality(models)]);
  end if;
  if p_queue_ticket is not null then
    first := coalesce(array_position(models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_token_room(p_quota_group text, p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint, OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval;
  v_row public.google_ai_usage_counters;
  v_rest timestamptz;
  v_left bigint[];
  v_full timestamptz[];
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  select array_agg(case when b.size is null then null when v_rest is not null then 0
                        else greatest(0, floor(greatest(floor(b.size * coalesce(p_limits.bucket_share, 1)), 1)
                          - extract(epoch from b.full_at - p_now) * b.size / extract(epoch from v_window))) end
                   order by b.i),
         array_agg(case when b.size is not null then greatest(b.full_at, v_rest) end order by b.i)
  into v_left, v_full
  from (values (1, greatest(v_row.input_until, p_now), p_limits.itpm),
               (2, greatest(v_row.output_until, p_now), p_limits.otpm)) b(i, full_at, size);
  select v_left[1], v_full[1], v_left[2], v_full[2] into input_left, input_full_at, output_left, output_full_at;
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
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + 1 - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (p_day, p_used[i] + 1 - p_burst[i]), (p_day + 1, p_next[i] + 1 - p_burst[i])) x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, p_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, p_zone) as e) d),
        public.google_ai_day_start_in(p_day + 2, p_zone)));
    end if;
  end loop;
  return v_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ select ((public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1)::pg_catalog.timestamp
                  at time zone public.google_ai_pacific_zone()) $function$
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
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now;
  -- never before now). None when there are fewer: the shares this waiter does not own keep every
  -- group's window from it, and the booking names when, if ever, one has room for it.
  select case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.t order by o.t))[p_slots]) end,
         case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.l order by o.l))[p_slots]) end
  into turn_at, likely_at from unnest(v_slots, v_likely) o(t, l);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_ring_expiries(p_ring_low bigint, p_ring integer[], p_window interval)
 RETURNS timestamp with time zone[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  -- Each second r.s (an offset from p_ring_low: epoch seconds pass 2^31 in 2038) at r.i, its n-th admission.
  return coalesce((
    select array_agg(public.google_ai_ring_time(r.s, p_ring[r.i + case when n = 1 then 3 else 4 end]) + p_window
                     order by r.s, n)
    from generate_series(0, cardinality(p_ring) / 4 - 1) k
    cross join lateral (select p_ring_low + k as s, ((p_ring_low + k) % (cardinality(p_ring) / 4))::integer * 4 as i) r
    cross join lateral generate_series(1, p_ring[r.i + 1]) n), '{}');
end
$function$
;

create or replace view "public"."google_ai_caller_budgets_today" as  SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_midnight_after(now()) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b.*), public.google_ai_pacific_day(now())) u(period, max_requests, max_tokens, max_usd, bucket, requests, tokens, spent_usd, monthly_max_usd, month_bucket, spent_month_usd));

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on table public.google_ai_caller_budgets_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_caller_budgets_today to service_role;
alter view public.google_ai_caller_budgets_today set (security_invoker='true');
comment on view public.google_ai_caller_budgets_today is 'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';
