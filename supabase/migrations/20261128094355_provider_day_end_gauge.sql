-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: eve_gateway_provider_day_end_timestamp_seconds per provider row in its day_zone, and the
--   model's provider on the quota gauges (google_ai_metric_quota)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
           public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
           public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (values
    ('eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric),
    ('eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric),
    ('eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric),
    ('eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric),
    ('eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric),
    ('eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric)) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
  union all
  select 'eve_gateway_provider_day_end_timestamp_seconds', 'eve_gateway_provider_day_end_timestamp_seconds',
         public.google_ai_metric_label('provider', v.name),
         extract(epoch from public.google_ai_midnight_after_in(p_at, v.day_zone))
  from public.google_ai_providers v
$function$
;
