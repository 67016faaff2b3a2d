-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the quota report, google_ai_group_room and google_ai_usage_now show the ITPM and OTPM
--   buckets' room of a row that has them; the quota reads read a pool's counter row
set check_function_bodies = off;

drop view if exists "public"."google_ai_usage_now";

drop view if exists "public"."google_ai_usage_now";

drop function if exists "public"."google_ai_group_room"(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone);

CREATE OR REPLACE FUNCTION public.google_ai_bucket_room(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  if p_limit is null then
    return;
  end if;
  full_at := greatest(p_until, p_now);
  tokens_left := greatest(0, floor(greatest(floor(p_limit * coalesce(p_share, 1)), 1)
    - extract(epoch from full_at - p_now) * p_limit / extract(epoch from p_window)));
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
  v_ring record;
  v_quota record;
  v_tokens record;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits.rpm := public.google_ai_effective_limit(v_limits.rpm, v_limits.safety_margin);
  v_limits.tpm := public.google_ai_effective_limit(v_limits.tpm, v_limits.safety_margin);
  v_limits.rpd := public.google_ai_effective_limit(v_limits.rpd, v_limits.safety_margin);
  v_limits.itpm := public.google_ai_effective_limit(v_limits.itpm, v_limits.safety_margin);
  v_limits.otpm := public.google_ai_effective_limit(v_limits.otpm, v_limits.safety_margin);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  v_ring := public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0));
  requests_used := coalesce(v_ring.sum_requests, 0);
  tokens_used := coalesce(v_ring.sum_tokens, 0);
  select * into v_quota from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm,
    v_limits.rpd, v_now);
  requests_left := v_quota.requests_left;
  tokens_left := v_quota.tokens_left;
  day_left := v_quota.day_left;
  window_frees_at := least(v_quota.requests_reset_at, v_quota.tokens_reset_at);
  ready_at := v_quota.ready_at;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  v_tokens := public.google_ai_group_token_room(p_quota_group, v_limits, v_now);
  input_tokens_left := v_tokens.input_left;
  output_tokens_left := v_tokens.output_left;
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
  v_in record;
  v_out record;
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  v_in := public.google_ai_bucket_room(v_row.input_until, p_now, v_window, p_limits.itpm, p_limits.bucket_share);
  v_out := public.google_ai_bucket_room(v_row.output_until, p_now, v_window, p_limits.otpm, p_limits.bucket_share);
  input_left := case when v_rest is null or v_in.tokens_left is null then v_in.tokens_left else 0 end;
  input_full_at := case when p_limits.itpm is not null then greatest(v_in.full_at, v_rest) end;
  output_left := case when v_rest is null or v_out.tokens_left is null then v_out.tokens_left else 0 end;
  output_full_at := case when p_limits.otpm is not null then greatest(v_out.full_at, v_rest) end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_ring record;
  v_row public.google_ai_usage_counters;
  v_day date := public.google_ai_pacific_day(p_now);
  v_midnight timestamptz := public.google_ai_pacific_midnight_after(p_now);
  v_day_start timestamptz;
  v_counts integer[];
  v_used integer;
  v_next integer;
  v_prev integer;
  v_near_end boolean;
  v_near_start boolean;
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute, counted as google_ai_book_group counts it: the ring moved on to p_now; the next to
  -- leave the window are its oldest seconds.
  if p_rpm is not null or p_tpm is not null then
    v_ring := public.google_ai_ring_at(p_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, coalesce(v_row.window_tokens, 0));
    if p_rpm is not null then
      requests_left := greatest(0, p_rpm - v_ring.sum_requests);
      requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window), p_now);
    end if;
    if p_tpm is not null then
      tokens_left := greatest(0, p_tpm - v_ring.sum_tokens);
      tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window, true),
        p_now);
    end if;
  end if;

  -- The day, read as google_ai_book_group reads it (google_ai_day_counts): within the guard of a
  -- midnight the other day's count binds too.
  if p_rpd is not null then
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_used := v_counts[1]; v_next := v_counts[2]; v_prev := v_counts[3];
    v_day_start := public.google_ai_pacific_start(v_day);
    v_near_end := p_now >= v_midnight - v_day_guard;
    v_near_start := p_now < v_day_start + v_day_guard;
    day_left := greatest(0, p_rpd - greatest(coalesce(v_used, 0),
                                             case when v_near_end then coalesce(v_next, 0) else 0 end,
                                             case when v_near_start then coalesce(v_prev, 0) else 0 end));
    day_reset_at := case when v_near_start and coalesce(v_prev, 0) > coalesce(v_used, 0)
                         then v_day_start + v_day_guard
                         else v_midnight + v_day_guard end;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_midnight then
      day_left := 0; -- Google's per-day refusal: the cooldown lasts until the Pacific midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_limits record;
  v_sum record;
  v_bucket_limits jsonb := '{}';
  v_bucket_minute jsonb := '{}';
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                   v_limits.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)
), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object(
    'model', v_limits.model,
    'limits', jsonb_build_object('rpm', v_limits.rpm, 'tpm', v_limits.tpm, 'rpd', v_limits.rpd)
              || v_bucket_limits,
    'quota_groups', v_sum.groups,
    'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
end
$function$
;

create or replace view "public"."google_ai_usage_now" as  WITH clock AS (
         SELECT now() AS at,
            public.google_ai_pacific_day(now()) AS day
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
            clock.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.day_bucket = clock.day) THEN c.rpd_used
                    ELSE 0
                END AS rpd_used,
            public.google_ai_effective_limit(l.rpm, l.safety_margin) AS rpm_limit,
            public.google_ai_effective_limit(l.tpm, l.safety_margin) AS tpm_limit,
            public.google_ai_effective_limit(l.rpd, l.safety_margin) AS rpd_limit,
            cd.cooldown_until,
            cd.reason AS cooldown_reason
           FROM (((((pairs p
             CROSS JOIN clock)
             LEFT JOIN serving s ON (((s.quota_group = p.quota_group) AND (s.model = p.model))))
             LEFT JOIN public.google_ai_usage_counters c ON (((c.quota_group = p.quota_group) AND (c.model = p.model))))
             LEFT JOIN public.google_ai_model_limits l ON ((l.model = p.model)))
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
    u.day AS pacific_day,
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
    public.google_ai_pacific_start((u.day + 1)) AS day_resets_at,
    r.input_tokens_left AS itpm_left,
    r.output_tokens_left AS otpm_left
   FROM (usage u
     CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left, tokens_left, day_left, window_frees_at, ready_at, input_tokens_left, output_tokens_left));

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_bucket_room(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint) to service_role;
revoke all on function public.google_ai_group_token_room(p_quota_group text, p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint, OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_usage_now from public, anon, authenticated, service_role;
grant select on table public.google_ai_usage_now to service_role;
alter view public.google_ai_usage_now set (security_invoker='true');
comment on view public.google_ai_usage_now is 'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the sliding minute window (the last minute, minute_window on), the requests of this Pacific day, against the limits after the safety margin. The *_left figures are what the next request could book (0 while a cooldown rests the group; a share kept for another class or caller, google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; itpm_left and otpm_left what the token buckets of a row that counts input and output apart hold (null: it does not); state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';
