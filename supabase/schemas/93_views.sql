-- The operator's views (security_invoker): usage now and by caller, cooldowns, clients, catalogue,
-- model life cycle, queue, shares and budgets today.
set check_function_bodies = off;

CREATE OR REPLACE VIEW public.google_ai_model_catalogue_status WITH (security_invoker='true') AS
 WITH ok_keys AS (
   SELECT h.api_key_id, h.checked_at, k.serves_provider AS provider
   FROM public.google_ai_key_health h
   JOIN public.google_ai_api_keys k ON k.id = h.api_key_id
   WHERE h.status = 'ok' AND k.is_active
 )
 SELECT l.model,
    l.is_active,
    (SELECT count(*) FROM ok_keys o WHERE o.provider = l.provider)::integer AS keys_checked,
    count(c.api_key_id)::integer AS keys_listing,
    coalesce(array_agg(DISTINCT c.quota_group) FILTER (WHERE c.api_key_id IS NOT NULL), '{}') AS quota_groups,
    max(c.input_token_limit) AS input_token_limit,
    max(c.output_token_limit) AS output_token_limit,
    max(c.refreshed_at) AS last_listed_at,
    (SELECT max(o.checked_at) FROM ok_keys o WHERE o.provider = l.provider) AS last_checked_at,
    CASE
      WHEN (SELECT count(*) FROM ok_keys o WHERE o.provider = l.provider) = 0 THEN 'unknown'
      WHEN count(c.api_key_id) > 0 THEN 'listed'
      ELSE 'unlisted'
    END AS catalogue_status
 FROM public.google_ai_model_limits l
 LEFT JOIN public.google_ai_model_catalogue c
   ON c.model = l.model AND c.api_key_id IN (SELECT o.api_key_id FROM ok_keys o WHERE o.provider = l.provider)
 GROUP BY l.model, l.is_active, l.provider;

COMMENT ON VIEW public.google_ai_model_catalogue_status IS
    'Each model row (google_ai_model_limits) against its provider''s catalogue: listed, unlisted (no checked '
    'active key of its provider lists it any more) or unknown (no successful check of its provider''s keys yet).';

CREATE OR REPLACE VIEW public.google_ai_caller_budgets_today WITH (security_invoker='true') AS
 SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_midnight_after(now()) AS resets_at,
    b.notes
 FROM public.google_ai_caller_budgets b
 CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b), public.google_ai_pacific_day(now())) u;

COMMENT ON VIEW public.google_ai_caller_budgets_today IS
    'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';

CREATE OR REPLACE VIEW public.google_ai_clients_overview WITH (security_invoker='true') AS
 SELECT c.id,
    c.name,
    c.models,
    c.max_token_ttl,
    c.token_max_requests,
    c.token_max_tokens,
    c.daily_max_requests,
    c.daily_max_tokens,
    c.mint_per_hour,
    c.created_at,
    c.revoked_at,
    c.revoked_reason,
    (SELECT count(*) FROM public.google_ai_tokens t
     WHERE t.client_id = c.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS live_tokens,
    (SELECT max(t.created_at) FROM public.google_ai_tokens t WHERE t.client_id = c.id) AS last_token_at
 FROM public.google_ai_clients c;

CREATE OR REPLACE VIEW public.google_ai_cooldowns_active WITH (security_invoker='true') AS
 SELECT cd.quota_group,
    cd.model,
    cd.cooldown_until,
    ceil(extract(epoch FROM cd.cooldown_until - now()))::bigint AS seconds_left,
    cd.reason,
    cd.quota_id,
    cd.updated_at,
    coalesce((SELECT array_agg(k.key_alias ORDER BY k.key_alias) FROM public.google_ai_api_keys k
              WHERE k.is_active AND public.google_ai_quota_group(k.project_id, k.id) = cd.quota_group),
             '{}') AS key_aliases
 FROM public.google_ai_cooldowns cd
 WHERE cd.cooldown_until > now();

COMMENT ON VIEW public.google_ai_cooldowns_active IS
    'Cooldowns in force: the quota group and model rest until cooldown_until.';

CREATE OR REPLACE VIEW public.google_ai_model_lifecycle WITH (security_invoker='true') AS
 SELECT l.model,
    l.aliases,
    l.is_active,
    CASE
      WHEN l.withdrawn_at IS NOT NULL THEN 'withdrawn'
      WHEN NOT l.is_active THEN 'retired'
      WHEN l.shutdown_date <= CURRENT_DATE THEN 'shut_down'
      WHEN l.shutdown_date <= CURRENT_DATE + 14 THEN 'shutting_down'
      ELSE 'served'
    END AS state,
    l.withdrawn_at,
    l.withdrawn_message,
    l.successor,
    l.shutdown_date,
    l.shutdown_date - CURRENT_DATE AS days_to_shutdown,
    l.fallback_models,
    l.rpm,
    l.tpm,
    l.rpd,
    l.limits_source,
    l.supports_system_instruction,
    l.supports_json_mode,
    COALESCE(l.supports_tools, l.supports_json_mode) AS supports_tools,
    l.supports_images,
    s.catalogue_status,
    s.last_listed_at,
    l.google_successor,
    l.provider
 FROM public.google_ai_model_limits l
 LEFT JOIN public.google_ai_model_catalogue_status s ON s.model = l.model;

COMMENT ON VIEW public.google_ai_model_lifecycle IS
    'Each model row in its life cycle: withdrawn (when, its provider''s message and the replacement it names), '
    'shutdown date, successor, chain, limits and where they come from, and what its provider''s model list last '
    'said of it.';

CREATE OR REPLACE VIEW public.google_ai_queue_now WITH (security_invoker='true') AS
 SELECT q.model,
    q.priority_class,
    min(q.class_rank) AS class_rank,
    count(*)::integer AS waiting,
    count(DISTINCT q.caller)::integer AS callers,
    min(q.enqueued_at) AS oldest_since,
    max(q.expected_at) AS last_turn_at
 FROM public.google_ai_queue q
 WHERE q.lease_until >= now()
 GROUP BY q.model, q.priority_class;

COMMENT ON VIEW public.google_ai_queue_now IS
    'Requests waiting now, per model and class: how many, from '
    'how many callers, since when, and when the last turn comes.';

CREATE OR REPLACE VIEW public.google_ai_shares_today WITH (security_invoker='true') AS
 WITH clock AS (
   SELECT now() AS at,
     public.google_ai_window_length(coalesce((SELECT st.minute_guard_ms FROM public.google_ai_admission_settings st
                                              WHERE st.id), 1000)) AS window_length
 ), groups AS (
   SELECT DISTINCT s_1.id AS share_id, public.google_ai_quota_group(k.project_id, k.id) AS quota_group
   FROM public.google_ai_quota_shares s_1
   JOIN public.google_ai_model_limits m_1 ON m_1.model = s_1.model
   JOIN public.google_ai_api_keys k
     ON k.is_active AND k.serves_provider = m_1.provider AND (k.models IS NULL OR s_1.model = ANY (k.models))
 ), kept AS (
   SELECT s_1.model, sum(coalesce(s_1.reserved_rpd, 0))::integer AS reserved_rpd
   FROM public.google_ai_quota_shares s_1
   GROUP BY s_1.model
 )
 SELECT s.model,
    coalesce(s.priority_class, s.caller) AS owner,
    CASE WHEN s.priority_class IS NOT NULL THEN 'class' ELSE 'caller' END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
    CASE WHEN s.reserved_rpm IS NOT NULL THEN greatest(0, s.reserved_rpm - w.used_in_window) END AS rpm_kept_now,
    CASE WHEN s.reserved_rpd IS NOT NULL THEN greatest(0, s.reserved_rpd - d.used_today) END AS rpd_kept_today,
    CASE
      WHEN s.pace_burst IS NOT NULL AND l.rpd IS NOT NULL THEN public.google_ai_pace_allowance(c.at, z.day,
        s.pace_burst, l.rpd - (kept.reserved_rpd - coalesce(s.reserved_rpd, 0)), z.zone)
    END AS pace_allows_today
 FROM public.google_ai_quota_shares s
 JOIN groups g ON g.share_id = s.id
 JOIN kept ON kept.model = s.model
 CROSS JOIN clock c
 CROSS JOIN LATERAL (SELECT y.zone, public.google_ai_day_in(c.at, y.zone) AS day
                     FROM (SELECT public.google_ai_day_zone(s.model) AS zone) y) z
 LEFT JOIN LATERAL (
   SELECT e.window_requests, e.day_bucket, e.day_used, e.day_next_used, e.day_prev_used, e.ring_low, e.ring
   FROM public.google_ai_usage_counters uc,
     LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used,
       day_prev_used, ring_low, ring)
   WHERE uc.quota_group = g.quota_group AND uc.model = s.model AND e.share_id = s.id) u ON true
 LEFT JOIN LATERAL (SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
                    FROM public.google_ai_model_limits m WHERE m.model = s.model) l ON true
 CROSS JOIN LATERAL (SELECT r.sum_requests AS used_in_window
                     FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests,
                       NULL::bigint) r) w
 CROSS JOIN LATERAL (SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used,
                       u.day_prev_used, z.day))[1] AS used_today) d;

COMMENT ON VIEW public.google_ai_shares_today IS
    'Reserved shares and pacing per quota group: the owner''s use in the window and today (the model''s provider''s '
    'day, in its row''s day_zone), what the share still keeps '
    'from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';

-- What the calls cost per provider's day (its row's day_zone: when it resets its limits and bills),
-- provider, model and caller: the calls that reached the provider, those of them whose cost is not
-- known (no price, no counts), and the spend of the others (cost_usd). A call of a model that has no
-- row any more has no provider, and its day is UTC's.
CREATE OR REPLACE VIEW public.google_ai_spend_daily WITH (security_invoker='true') AS
 SELECT (a.admitted_at AT TIME ZONE coalesce(p.day_zone, 'UTC'))::date AS day,
    l.provider,
    a.model,
    a.caller,
    count(*)::integer AS calls,
    count(*) FILTER (WHERE a.cost_usd IS NULL)::integer AS calls_unpriced,
    coalesce(sum(a.cost_usd), 0) AS spend_usd
 FROM public.google_ai_attempts a
 LEFT JOIN public.google_ai_model_limits l ON l.model = a.model
 LEFT JOIN public.google_ai_providers p ON p.name = l.provider
 WHERE a.admitted_at IS NOT NULL
   AND a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout}')
 GROUP BY 1, 2, 3, 4;

COMMENT ON VIEW public.google_ai_spend_daily IS
    'Spend in US dollars per provider''s day (in its row''s day_zone), provider, model and caller; '
    'calls_unpriced: calls whose cost is not known (not in spend_usd).';

-- The maintenance summary's spend: each provider's yesterday (its own day, google_ai_spend_daily) at
-- p_now (null: now), [{provider, day, spend_usd, calls, calls_unpriced}] in provider order.
CREATE OR REPLACE FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone DEFAULT NULL::timestamp with
    time zone) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('provider', s.provider, 'day', s.day, 'spend_usd', s.spend,
           'calls', s.calls, 'calls_unpriced', s.unpriced) order by s.provider), '[]')
  from (select d.provider, d.day, sum(d.spend_usd) as spend, sum(d.calls)::integer as calls,
               sum(d.calls_unpriced)::integer as unpriced
        from public.google_ai_spend_daily d
        left join public.google_ai_providers p on p.name = d.provider
        where d.day = (coalesce(p_now, now()) at time zone coalesce(p.day_zone, 'UTC'))::date - 1
        group by 1, 2) s
$$;

CREATE OR REPLACE VIEW public.google_ai_usage_by_caller_24h WITH (security_invoker='true') AS
 SELECT a.caller,
    count(DISTINCT coalesce(a.request_id, a.reservation_id::text))::integer AS requests,
    count(*)::integer AS attempts,
    count(*) FILTER (WHERE a.status = 'succeeded')::integer AS succeeded,
    count(*) FILTER (WHERE a.status IN ('upstream_error', 'network_error', 'timeout'))::integer AS failed,
    count(*) FILTER (WHERE a.status = 'refused')::integer AS refused,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'rpm')::integer AS refused_rpm,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'tpm')::integer AS refused_tpm,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'rpd')::integer AS refused_rpd,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'cooldown')::integer AS refused_cooldown,
    count(*) FILTER (WHERE a.status = 'refused'
                       AND a.limit_hit NOT IN ('rpm', 'tpm', 'rpd', 'cooldown'))::integer AS refused_other,
    count(*) FILTER (WHERE a.status = 'reserved')::integer AS in_flight,
    count(*) FILTER (WHERE a.status = 'released')::integer AS released,
    count(*) FILTER (WHERE a.status = 'abandoned')::integer AS abandoned,
    coalesce(sum(a.input_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS input_tokens,
    coalesce(sum(a.output_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS output_tokens,
    coalesce(sum(a.input_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0)
      + coalesce(sum(a.output_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS total_tokens,
    array_agg(DISTINCT a.model ORDER BY a.model) AS models,
    min(a.created_at) AS first_at,
    max(a.created_at) AS last_at
 FROM public.google_ai_attempts a
 WHERE a.created_at > now() - interval '24 hours'
 GROUP BY a.caller;

COMMENT ON VIEW public.google_ai_usage_by_caller_24h IS
    'The last 24 hours per caller: logical requests, attempts by outcome, refusals by the limit that refused them, and '
    'the input/output tokens of successful calls.';

CREATE OR REPLACE VIEW public.google_ai_usage_now WITH (security_invoker='true') AS
 WITH clock AS (
   SELECT now() AS at
 ), serving AS (
   SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
     l.model,
     count(*)::integer AS active_keys,
     array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
   FROM public.google_ai_api_keys k
   JOIN public.google_ai_model_limits l
     ON l.is_active AND k.serves_provider = l.provider AND (k.models IS NULL OR l.model = ANY (k.models))
   WHERE k.is_active
   GROUP BY 1, 2
 ), pairs AS (
   SELECT s.quota_group, s.model FROM serving s
   UNION
   SELECT c.quota_group, c.model FROM public.google_ai_usage_counters c WHERE c.quota_group IS NOT NULL
 ), usage AS (
   SELECT p.quota_group,
     p.model,
     clock.at,
     z.zone,
     z.day,
     coalesce(s.active_keys, 0) AS active_keys,
     coalesce(s.key_aliases, '{}') AS key_aliases,
     CASE WHEN c.day_bucket = z.day THEN c.rpd_used ELSE 0 END AS rpd_used,
     (e.l).rpm AS rpm_limit,
     (e.l).tpm AS tpm_limit,
     (e.l).rpd AS rpd_limit,
     cd.cooldown_until,
     cd.reason AS cooldown_reason
   FROM pairs p
   CROSS JOIN clock
   CROSS JOIN LATERAL (SELECT y.zone, public.google_ai_day_in(clock.at, y.zone) AS day
                       FROM (SELECT public.google_ai_day_zone(p.model) AS zone) y) z
   LEFT JOIN serving s ON s.quota_group = p.quota_group AND s.model = p.model
   LEFT JOIN public.google_ai_usage_counters c ON c.quota_group = p.quota_group AND c.model = p.model
   LEFT JOIN public.google_ai_model_limits l ON l.model = p.model
   CROSS JOIN LATERAL (SELECT public.google_ai_stored_group_limits(l, p.quota_group) AS l) e
   LEFT JOIN public.google_ai_cooldowns cd
     ON cd.quota_group = p.quota_group AND cd.model = p.model AND cd.cooldown_until > clock.at
 )
 SELECT u.quota_group,
    u.model,
    u.active_keys,
    u.key_aliases,
    u.at - interval '1 minute' AS minute_window,
    r.requests_used AS rpm_used,
    u.rpm_limit,
    r.requests_left AS rpm_left,
    r.tokens_used::integer AS tpm_used,
    u.tpm_limit,
    r.tokens_left::integer AS tpm_left,
    u.day AS provider_day,
    u.rpd_used,
    u.rpd_limit,
    r.day_left AS rpd_left,
    u.cooldown_until,
    u.cooldown_reason,
    CASE
      WHEN u.active_keys = 0 THEN 'no_active_key'
      WHEN u.cooldown_until IS NOT NULL THEN 'cooldown'
      WHEN r.day_left = 0 THEN 'rpd'
      WHEN r.requests_left = 0 THEN 'rpm'
      WHEN r.tokens_left = 0 THEN 'tpm'
      WHEN r.input_tokens_left = 0 OR r.output_tokens_left = 0 THEN 'tpm'
      ELSE 'open'
    END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_day_start_in(u.day + 1, u.zone) AS day_resets_at,
    r.input_tokens_left AS itpm_left,
    r.output_tokens_left AS otpm_left
 FROM usage u
 CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left,
   tokens_left, day_left, window_frees_at, ready_at, input_tokens_left, output_tokens_left);

COMMENT ON VIEW public.google_ai_usage_now IS
    'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the '
    'sliding minute window (the last minute, minute_window on), the requests of this day of the provider''s '
    '(provider_day, in its row''s day_zone; day_resets_at its next midnight), against the limits after the safety '
    'margin (a row that follows its provider: those it stated for the group). The *_left figures are what the next '
    'request could book (0 while a cooldown rests the group; a share kept for another class or caller, '
    'google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; '
    'itpm_left and otpm_left what the token buckets of a row that counts input and output apart hold (null: it does '
    'not); state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';

CREATE OR REPLACE VIEW public.google_ai_wait_by_class_1h WITH (security_invoker='true') AS
 SELECT a.model,
    coalesce(a.priority_class, 'interactive') AS priority_class,
    count(*) FILTER (WHERE a.status NOT IN ('refused', 'abandoned'))::integer AS admitted,
    count(*) FILTER (WHERE a.status = 'refused')::integer AS refused,
    count(*) FILTER (WHERE a.status = 'abandoned')::integer AS abandoned,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY coalesce(a.wait_ms, 0))
      FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_p50,
    percentile_disc(0.95) WITHIN GROUP (ORDER BY coalesce(a.wait_ms, 0))
      FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_p95,
    max(coalesce(a.wait_ms, 0)) FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_max
 FROM public.google_ai_attempts a
 WHERE a.created_at > now() - interval '1 hour' AND a.attempt = 1
 GROUP BY 1, 2;

COMMENT ON VIEW public.google_ai_wait_by_class_1h IS
    'The last hour per model and class: first attempts admitted, '
    'refused and abandoned in the queue, and how long the admitted waited.';

-- The model catalogue's status (the view of the same name), for the maintenance function's summary.
CREATE OR REPLACE FUNCTION public.google_ai_catalogue_status() RETURNS SETOF public.google_ai_model_catalogue_status
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select * from public.google_ai_model_catalogue_status order by model $$;
