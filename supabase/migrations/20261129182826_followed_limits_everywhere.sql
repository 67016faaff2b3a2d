-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A following row's limits counted wherever a limit is: the queue's turns per group at its
--   followed RPM and RPD (google_ai_queue_spread), too large judged by the widest window the groups follow
--   (google_ai_followed_widest, google_ai_followed_too_large), google_ai_group_room and google_ai_usage_now
--   through google_ai_stored_group_limits
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_followed_too_large(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_request public.google_ai_request)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_limits public.google_ai_model_limits := public.google_ai_followed_widest(p_limits, p_request.exclude_key_ids);
begin
  return case when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                     is not null then coalesce(p_request.output_tokens, 0) else 0 end
                or (p_request.requests > 1 and public.google_ai_requests_over(p_now, v_limits, p_request.requests,
                      p_request.exclude_key_ids) is not null)
              then 'too_large' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_followed_widest(p_limits public.google_ai_model_limits, p_exclude_key_ids uuid[])
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_widest record;
begin
  select count(*) as groups,
         case when bool_and((f.l).rpm is not null) then max((f.l).rpm) end as rpm,
         case when bool_and((f.l).tpm is not null) then max((f.l).tpm) end as tpm,
         case when bool_and((f.l).rpd is not null) then max((f.l).rpd) end as rpd,
         case when bool_and((f.l).itpm is not null) then max((f.l).itpm) end as itpm,
         case when bool_and((f.l).otpm is not null) then max((f.l).otpm) end as otpm
    into v_widest
  from (select distinct s.quota_group from public.google_ai_serving_keys(p_limits.model, p_exclude_key_ids) s) g
  left join public.google_ai_usage_counters c
    on c.quota_group = g.quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)
  cross join lateral (select public.google_ai_followed_limits(p_limits, c.stated_limits) as l) f;
  if v_widest.groups > 0 then
    select v_widest.rpm, v_widest.tpm, v_widest.rpd, v_widest.itpm, v_widest.otpm
      into p_limits.rpm, p_limits.tpm, p_limits.rpd, p_limits.itpm, p_limits.otpm;
  end if;
  return p_limits;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_spread(p_model public.google_ai_model_limits, p_rpm integer, p_window interval, p_ranked boolean, OUT step interval, OUT tolerance interval, OUT spaced boolean)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_spread record;
begin
  v_spread := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_rpm * p_model.bucket_share))::integer end, p_window, p_rpm, null, 0);
  step := v_spread.step;
  tolerance := v_spread.tolerance;
  spaced := step is not null and (p_model.bucket_share is not null or p_ranked);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_stored_group_limits(p_model public.google_ai_model_limits, p_quota_group text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  p_model.tpm := public.google_ai_effective_limit(p_model.tpm, p_model.safety_margin);
  p_model.rpd := public.google_ai_effective_limit(p_model.rpd, p_model.safety_margin);
  p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
  p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
  return public.google_ai_group_limits(p_model, p_quota_group);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_verdict public.google_ai_admission_verdict;
  v_who jsonb;               -- a token's client and token, named in every answer of a token's request
  v_credential public.google_ai_token_verdict;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  v_new_ticket uuid := gen_random_uuid();  -- a ticket taken now (tickets of one instant are ordered by it)
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if (v_credential.refusal).ok is not null then
      return v_credential.refusal;
    end if;
    p_request := v_credential.request;  -- the token's client is the caller from here on
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_verdict := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_verdict.answer is not null then
      v_verdict.answer := v_verdict.answer || coalesce(v_who, '{}');
      return v_verdict;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.provider_limits = 'follow'
                       then public.google_ai_followed_too_large(v_now, v_limits, p_request)
                       when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                              is not null then coalesce(p_request.output_tokens, 0) else 0 end
                         or (p_request.requests > 1 and public.google_ai_requests_over(v_now, v_limits,
                               p_request.requests, p_request.exclude_key_ids) is not null)
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket, p_request.requests);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens,
    p_request.requests);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    v_verdict := public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal);
  else
    v_verdict := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
      v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
      case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  end if;
  if v_who is not null then  -- (a service caller's answer is not encoded again for an empty object)
    v_verdict.answer := v_verdict.answer || v_who;
  end if;
  return v_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits := public.google_ai_stored_group_limits(v_limits, p_quota_group);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  select coalesce(r.sum_requests, 0), coalesce(r.sum_tokens, 0) into requests_used, tokens_used
  from public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0)) r;
  select q.requests_left, q.tokens_left, q.day_left, least(q.requests_reset_at, q.tokens_reset_at), q.ready_at
    into requests_left, tokens_left, day_left, window_frees_at, ready_at
  from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  select t.input_left, t.output_left into input_tokens_left, output_tokens_left
  from public.google_ai_group_token_room(p_quota_group, v_limits, v_now) t;
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
  -- (A spread holds a waiter's slots back only for a class some class ranks before: google_ai_queue_spread.)
  v_ranked bool := p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank);
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
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model.model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model.model, u.share_use, p_now, v_window, p_class, p_caller) as held,
           (f.l).rpm as rpm, (f.l).rpd as rpd, s.step, s.tolerance, s.spaced
    from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, null, p_model.rpd, p_now) c
    left join public.google_ai_usage_counters u
      on u.quota_group = c.quota_group and u.model = coalesce(p_model.limit_pool, p_model.model)
    cross join lateral (select case when p_model.provider_limits = 'follow'
                          then public.google_ai_followed_limits(p_model, u.stated_limits) else p_model end as l) f
    cross join lateral public.google_ai_queue_spread(p_model, (f.l).rpm, v_window, v_ranked) s
  loop
    continue when v_group.cooldown_until is not null or (v_group.rpd is not null and v_group.rpd_used >= v_group.rpd);
    v_day_left := v_day_left + coalesce(v_group.rpd - v_group.rpd_used, 1000000);
    if v_group.rpm is null then
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
    v_room := v_group.rpm - v_group.held;
    kept_bound := kept_bound or (v_count < v_group.rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_group.spaced and v_openings[1] <= p_now and v_group.spread_until - v_group.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_group.spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(v_group.rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_group.spaced then v_group.step end, v_group.tolerance, p_model.bucket_share is null);
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

CREATE OR REPLACE FUNCTION public.google_ai_refusal_figures(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_refusal public.google_ai_refusal, p_requests integer, p_exclude_key_ids uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_limit text := p_refusal.limit_hit;
  v_over jsonb;
begin
  -- (A row that follows its provider is too large by the widest window its groups follow.)
  if v_limit = 'too_large' and p_limits.provider_limits = 'follow' then
    p_limits := public.google_ai_followed_widest(p_limits, p_exclude_key_ids);
  end if;
  v_over := case when v_limit = 'too_large' then public.google_ai_requests_over(p_now, p_limits, p_requests,
    p_exclude_key_ids) end;
  return coalesce(v_over, jsonb_build_object('max_tokens',
      case when v_limit = 'too_large' then coalesce(p_limits.tpm, p_limits.itpm) end))
    || case when v_limit = 'too_large' and v_over is null and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when v_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_refusal.period is not null then jsonb_build_object('period', p_refusal.period)
            else '{}' end;
end
$function$
;

create or replace view "public"."google_ai_usage_now" as  WITH clock AS (
         SELECT now() AS at
        ), serving AS (
         SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
            l.model,
            (count(*))::integer AS active_keys,
            array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
           FROM (public.google_ai_api_keys k
             JOIN public.google_ai_model_limits l ON ((l.is_active AND (k.serves_provider = l.provider) AND ((k.models IS NULL) OR (l.model = ANY (k.models))))))
          WHERE k.is_active
          GROUP BY (public.google_ai_quota_group(k.project_id, k.id)), l.model
        ), pairs AS (
         SELECT s.quota_group,
            s.model
           FROM serving s
        UNION
         SELECT c.quota_group,
            c.model
           FROM public.google_ai_usage_counters c
          WHERE (c.quota_group IS NOT NULL)
        ), usage AS (
         SELECT p.quota_group,
            p.model,
            clock.at,
            z.zone,
            z.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.day_bucket = z.day) THEN c.rpd_used
                    ELSE 0
                END AS rpd_used,
            (e.l).rpm AS rpm_limit,
            (e.l).tpm AS tpm_limit,
            (e.l).rpd AS rpd_limit,
            cd.cooldown_until,
            cd.reason AS cooldown_reason
           FROM (((((((pairs p
             CROSS JOIN clock)
             CROSS JOIN LATERAL ( SELECT y.zone,
                    public.google_ai_day_in(clock.at, y.zone) AS day
                   FROM ( SELECT public.google_ai_day_zone(p.model) AS zone) y) z)
             LEFT JOIN serving s ON (((s.quota_group = p.quota_group) AND (s.model = p.model))))
             LEFT JOIN public.google_ai_usage_counters c ON (((c.quota_group = p.quota_group) AND (c.model = p.model))))
             LEFT JOIN public.google_ai_model_limits l ON ((l.model = p.model)))
             CROSS JOIN LATERAL ( SELECT public.google_ai_stored_group_limits(l.*, p.quota_group) AS l) e)
             LEFT JOIN public.google_ai_cooldowns cd ON (((cd.quota_group = p.quota_group) AND (cd.model = p.model) AND (cd.cooldown_until > clock.at))))
        )
 SELECT u.quota_group,
    u.model,
    u.active_keys,
    u.key_aliases,
    (u.at - '00:01:00'::interval) AS minute_window,
    r.requests_used AS rpm_used,
    u.rpm_limit,
    r.requests_left AS rpm_left,
    (r.tokens_used)::integer AS tpm_used,
    u.tpm_limit,
    (r.tokens_left)::integer AS tpm_left,
    u.day AS provider_day,
    u.rpd_used,
    u.rpd_limit,
    r.day_left AS rpd_left,
    u.cooldown_until,
    u.cooldown_reason,
        CASE
            WHEN (u.active_keys = 0) THEN 'no_active_key'::text
            WHEN (u.cooldown_until IS NOT NULL) THEN 'cooldown'::text
            WHEN (r.day_left = 0) THEN 'rpd'::text
            WHEN (r.requests_left = 0) THEN 'rpm'::text
            WHEN (r.tokens_left = 0) THEN 'tpm'::text
            WHEN ((r.input_tokens_left = 0) OR (r.output_tokens_left = 0)) THEN 'tpm'::text
            ELSE 'open'::text
        END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_day_start_in((u.day + 1), u.zone) AS day_resets_at,
    r.input_tokens_left AS itpm_left,
    r.output_tokens_left AS otpm_left
   FROM (usage u
     CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left, tokens_left, day_left, window_frees_at, ready_at, input_tokens_left, output_tokens_left));

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_followed_too_large(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_request public.google_ai_request) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_followed_widest(p_limits public.google_ai_model_limits, p_exclude_key_ids uuid[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queue_spread(p_model public.google_ai_model_limits, p_rpm integer, p_window interval, p_ranked boolean, OUT step interval, OUT tolerance interval, OUT spaced boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_stored_group_limits(p_model public.google_ai_model_limits, p_quota_group text) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_stored_group_limits(p_model public.google_ai_model_limits, p_quota_group text) to service_role;
alter view public.google_ai_usage_now set (security_invoker='true');
comment on view public.google_ai_usage_now is 'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the sliding minute window (the last minute, minute_window on), the requests of this day of the provider''s (provider_day, in its row''s day_zone; day_resets_at its next midnight), against the limits after the safety margin (a row that follows its provider: those it stated for the group). The *_left figures are what the next request could book (0 while a cooldown rests the group; a share kept for another class or caller, google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; itpm_left and otpm_left what the token buckets of a row that counts input and output apart hold (null: it does not); state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';
