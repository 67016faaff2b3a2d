-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The reserve's counted instructions under a5d5f35's with the same answers: pre-lock RPM/RPD
--   computed once in google_ai_book_best_group (google_ai_unlocked_rpm/_rpd dropped), the candidates' counts
--   kept apart, the counter and budget rows locked as whole-row values, the quota's kept added only when
--   shares keep something, the queue's place returns early when nobody waits for the model
set check_function_bodies = off;

drop function if exists "public"."google_ai_unlocked_rpd"(p_model public.google_ai_model_limits);

drop function if exists "public"."google_ai_unlocked_rpm"(p_model public.google_ai_model_limits);

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, p_requests integer DEFAULT 1)
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
  v_rpm integer := case when p_model.bucket_share is null and p_model.provider_limits is distinct from 'follow'
                        then p_model.rpm end;  -- the limits its groups are passed over by before their locks
  v_rpd integer := case when p_model.provider_limits is distinct from 'follow' then p_model.rpd end;
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name, p_requests);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids,
                 v_rpm, p_model.tpm, v_rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone, p_output, p_requests);
      if v_try.outcome = 'booked' then
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
            p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name, p_requests) end, null,
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
        public.google_ai_request_counts(p_attempt) * p_requests, p_tokens, v_budget.worst, true);
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

CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_quota_group text, p_model public.google_ai_model_limits, p_at public.google_ai_counter_at, p_requests integer, p_kept jsonb, p_followed jsonb)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  select jsonb_build_object(
        'model', p_model.model,
        'quota_group', p_quota_group,
        'rpm', p_model.rpm,
        'requests_left', case when p_model.rpm is not null then greatest(0, p_model.rpm - p_at.sum_requests) end,
        'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
        'tpm', p_model.tpm,
        'tokens_left', case when p_model.tpm is not null then greatest(0, p_model.tpm - p_at.sum_tokens) end,
        'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
        'rpd', p_model.rpd,
        'day_left', case when p_model.rpd is not null then greatest(0, p_model.rpd - (greatest(p_at.counts[1],
          case when p_at.near_end then p_at.counts[2] end, case when p_at.near_start then p_at.counts[3] end)
          + p_requests)) end,
        'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
          case when p_at.near_start and p_at.counts[3] > p_at.counts[1] then p_at.day_start else p_at.midnight end
          + p_at.day_guard, p_at.at) end)
      || case when p_kept is null then '{}' else jsonb_build_object('kept', p_kept) end
      || case when p_followed is null then '{}' else jsonb_build_object('followed', p_followed) end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, p_requests integer DEFAULT 1, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
declare
  v_row public.google_ai_caller_budgets;
begin
  if p_client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that judges a budget costs more
  -- to start than this one. The row as one whole-row value: one column to set up, not one per column of
  -- the row; counted, about 16k less.)
  v_row := (select b from public.google_ai_caller_budgets b where b.caller = p_caller for update);
  if v_row.caller is null then
    return;
  end if;
  day := public.google_ai_pacific_day(p_at);
  if num_nonnulls(v_row.daily_max_usd, v_row.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, p_output, p_class);
  end if;
  select v.cause, v.period, v.reopens_at into cause, period, reopens_at
  from public.google_ai_budget_verdict(public.google_ai_budget_of(v_row), p_at,
    public.google_ai_request_counts(p_attempt) * p_requests, p_tokens, worst) v;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone)
 RETURNS TABLE(quota_group text, priority integer, cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric, key_id uuid, key_alias text, env_var_name text, full_by text, day_zone text)
 LANGUAGE sql
 STABLE
AS $function$
  with keys as (
    select distinct on (s.quota_group) s.quota_group, s.priority, s.key_id, s.key_alias, s.env_var_name, s.provider
    from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
    order by s.quota_group, s.priority nulls last, s.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until, p.day_zone,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_day_in(p_now, p.day_zone)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_providers p on p.name operator(pg_catalog.=) g.provider
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join lateral (select cd.cooldown_until from public.google_ai_cooldowns cd
                       where cd.quota_group operator(pg_catalog.=) g.quota_group
                         and cd.model operator(pg_catalog.=) p_model and cd.cooldown_until operator(pg_catalog.>) p_now
                       offset 0) cd on true
    offset 0
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         least(coalesce(1 operator(pg_catalog.-) (u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0)), 1)),
         u.key_id, u.key_alias, u.env_var_name,
         case when u.cooldown_until is not null then 'cooldown'
              when p_rpd is not null and u.rpd_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpd then 'rpd'
              when p_rpm is not null and u.rpm_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpm then 'rpm'
         end, coalesce(u.day_zone, 'UTC')
  from usage u
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

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
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
    return; -- (nobody waits for the model, the common case: read without google_ai_waits_alike, 15k less)
  end if;
  -- (Only tickets that wait for what this request would: google_ai_waits_alike.)
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
                   and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name)) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  -- (A ticket of several requests holds the slots free now toward its turn: it waits because fewer are free
  -- than it needs, and a request behind it that took one would put its turn off.)
  select coalesce(sum(q.requests), 0),
         coalesce(sum(q.requests) filter (where q.expected_at <= p_now or q.requests > 1), 0),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name);
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + p_requests, rank, class,
    p_caller.name) t;
  -- Slots go to the due tickets ahead first; those nobody due claims go to whoever asks, when they are
  -- as many as its requests. (No turn, none today anywhere or every window kept from it by shares: the
  -- booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead + p_requests <= v_free_now
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
