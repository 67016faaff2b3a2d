-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
set check_function_bodies = off;

create or replace view "public"."google_ai_shares_today" as  WITH clock AS (
         SELECT now() AS at,
            public.google_ai_pacific_day(now()) AS day,
            public.google_ai_window_length(COALESCE(( SELECT st.minute_guard_ms
                   FROM public.google_ai_admission_settings st
                  WHERE st.id), 1000)) AS window_length
        ), groups AS (
         SELECT DISTINCT s_1.id AS share_id,
            public.google_ai_quota_group(k.project_id, k.id) AS quota_group
           FROM ((public.google_ai_quota_shares s_1
             JOIN public.google_ai_model_limits m_1 ON ((m_1.model = s_1.model)))
             JOIN public.google_ai_api_keys k ON ((k.is_active AND (k.serves_provider = m_1.provider) AND ((k.models IS NULL) OR (s_1.model = ANY (k.models))))))
        ), kept AS (
         SELECT s_1.model,
            (sum(COALESCE(s_1.reserved_rpd, 0)))::integer AS reserved_rpd
           FROM public.google_ai_quota_shares s_1
          GROUP BY s_1.model
        )
 SELECT s.model,
    COALESCE(s.priority_class, s.caller) AS owner,
        CASE
            WHEN (s.priority_class IS NOT NULL) THEN 'class'::text
            ELSE 'caller'::text
        END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
        CASE
            WHEN (s.reserved_rpm IS NOT NULL) THEN GREATEST(0, (s.reserved_rpm - w.used_in_window))
            ELSE NULL::integer
        END AS rpm_kept_now,
        CASE
            WHEN (s.reserved_rpd IS NOT NULL) THEN GREATEST(0, (s.reserved_rpd - d.used_today))
            ELSE NULL::integer
        END AS rpd_kept_today,
        CASE
            WHEN ((s.pace_burst IS NOT NULL) AND (l.rpd IS NOT NULL)) THEN public.google_ai_pace_allowance(c.at, c.day, s.pace_burst, (l.rpd - (kept.reserved_rpd - COALESCE(s.reserved_rpd, 0))))
            ELSE NULL::integer
        END AS pace_allows_today
   FROM (((((((public.google_ai_quota_shares s
     JOIN groups g ON ((g.share_id = s.id)))
     JOIN kept ON ((kept.model = s.model)))
     CROSS JOIN clock c)
     LEFT JOIN LATERAL ( SELECT e.window_requests,
            e.day_bucket,
            e.day_used,
            e.day_next_used,
            e.day_prev_used,
            e.ring_low,
            e.ring
           FROM public.google_ai_usage_counters uc,
            LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used, day_prev_used, ring_low, ring)
          WHERE ((uc.quota_group = g.quota_group) AND (uc.model = s.model) AND (e.share_id = s.id))) u ON (true))
     LEFT JOIN LATERAL ( SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
           FROM public.google_ai_model_limits m
          WHERE (m.model = s.model)) l ON (true))
     CROSS JOIN LATERAL ( SELECT r.sum_requests AS used_in_window
           FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests, NULL::bigint) r(ring_low, ring, sum_requests, sum_tokens)) w)
     CROSS JOIN LATERAL ( SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, c.day))[1] AS used_today) d);

create or replace view "public"."google_ai_usage_now" as  WITH clock AS (
         SELECT now() AS at,
            date_trunc('minute'::text, now(), 'UTC'::text) AS minute,
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
            clock.minute,
            clock.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.minute_bucket = clock.minute) THEN c.rpm_used
                    ELSE 0
                END AS rpm_used,
                CASE
                    WHEN (c.minute_bucket = clock.minute) THEN c.tpm_used
                    ELSE 0
                END AS tpm_used,
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
 SELECT quota_group,
    model,
    active_keys,
    key_aliases,
    minute AS minute_window,
    rpm_used,
    rpm_limit,
    (rpm_limit - rpm_used) AS rpm_left,
    tpm_used,
    tpm_limit,
    (tpm_limit - tpm_used) AS tpm_left,
    day AS pacific_day,
    rpd_used,
    rpd_limit,
    (rpd_limit - rpd_used) AS rpd_left,
    cooldown_until,
    cooldown_reason,
        CASE
            WHEN (active_keys = 0) THEN 'no_active_key'::text
            WHEN (cooldown_until IS NOT NULL) THEN 'cooldown'::text
            WHEN (rpd_used >= rpd_limit) THEN 'rpd'::text
            WHEN (rpm_used >= rpm_limit) THEN 'rpm'::text
            WHEN (tpm_used >= tpm_limit) THEN 'tpm'::text
            ELSE 'open'::text
        END AS state,
    (minute + '00:01:00'::interval) AS minute_resets_at,
    public.google_ai_pacific_start((day + 1)) AS day_resets_at
   FROM usage u;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
alter view public.google_ai_shares_today set (security_invoker='true');
alter view public.google_ai_usage_now set (security_invoker='true');
