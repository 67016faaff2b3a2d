-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_usage_now reads the sliding window and the room as the admission does
--   (google_ai_group_room, new, over google_ai_group_quota at the database's clock): what it shows left is
--   what the next request could book
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits record;
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_quota record;
begin
  select public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
  into v_limits from public.google_ai_model_limits l where l.model = p_model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = p_model;
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
            ELSE 'open'::text
        END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_pacific_start((u.day + 1)) AS day_resets_at
   FROM (usage u
     CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left, tokens_left, day_left, window_frees_at, ready_at));

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone) to service_role;
alter view public.google_ai_usage_now set (security_invoker='true');
comment on view public.google_ai_usage_now is 'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the sliding minute window (the last minute, minute_window on), the requests of this Pacific day, against the limits after the safety margin. The *_left figures are what the next request could book (0 while a cooldown rests the group; a share kept for another class or caller, google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';
