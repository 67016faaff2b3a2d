-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The ring of seconds answers as a named type (google_ai_ring), not as INOUT parameters
--   whose result shape was built again on every call
set check_function_bodies = off;

drop view if exists "public"."google_ai_shares_today";

drop view if exists "public"."google_ai_shares_today";

drop function if exists "public"."google_ai_ring_at"(p_at timestamp with time zone, p_window interval, INOUT ring_low bigint, INOUT ring integer[], INOUT sum_requests integer, INOUT sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_ring"') is null then
    create type "public"."google_ai_ring" as ("ring_low" bigint, "ring" integer[], "sum_requests" integer, "sum_tokens" bigint);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0, p_admitted_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.google_ai_ring
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_second bigint;
  v_us integer;
  v_i integer;
  v_count integer; v_tokens integer;  -- the second's count and tokens after this
begin
  if v_now is not null and (ring is null or ring_low is null or coalesce(sum_requests, 0) = 0
                            or cardinality(ring) <> 4 * v_span or v_now - ring_low >= v_span) then
    -- Nothing counted, the guard changed, or a span or more passed since it moved (the seconds up to
    -- now - span have left whatever their times: their last admission was at most the guarded window
    -- ago): the ring starts again at p_at.
    select r.ring_low, r.ring, r.sum_requests, r.sum_tokens into ring_low, ring, sum_requests, sum_tokens
    from public.google_ai_ring_restarted(p_at, p_window, v_span, ring_low, ring, sum_requests, sum_tokens) r;
  end if;
  if ring is null then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- Up to the current second: empty seconds are passed, full ones let go as their admissions leave.
  while ring_low < v_now loop
    v_i := (ring_low % v_span)::integer * 4;
    if ring[v_i + 1] > 0 then
      if public.google_ai_ring_time(ring_low, ring[v_i + 4]) + p_window <= p_at then
        sum_requests := sum_requests - ring[v_i + 1];
        sum_tokens := sum_tokens - ring[v_i + 2];
        ring[v_i + 1 : v_i + 4] := '{0,0,0,0}';
      else
        if ring[v_i + 3] < ring[v_i + 4] and public.google_ai_ring_time(ring_low, ring[v_i + 3]) + p_window <= p_at then
          sum_requests := sum_requests - 1;
          ring[v_i + 1] := ring[v_i + 1] - 1;
          ring[v_i + 3] := ring[v_i + 4];
        end if;
        exit; -- (every later second's admissions are later than this one's last)
      end if;
    end if;
    ring_low := ring_low + 1;
  end loop;
  if p_requests = 0 and p_tokens = 0 then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  if p_admitted_at is null and p_requests > 0 and p_tokens >= 0 and v_now is not null then
    -- A booking now (nearly every call): the lines below in smaller expressions (they cost by size: 90k less).
    v_i := (v_now % v_span)::integer * 4;
    v_us := round((date_part('epoch', p_at) - v_now) * 1000000)::integer;
    ring[v_i + 1 : v_i + 4] := array[ring[v_i + 1] + p_requests,
      ring[v_i + 2] + case when sum_tokens is not null then p_tokens else 0 end,
      case when ring[v_i + 1] = 0 then v_us else least(ring[v_i + 3], v_us) end, greatest(ring[v_i + 4], v_us)];
    sum_requests := sum_requests + p_requests;
    sum_tokens := sum_tokens + p_tokens;
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  v_second := floor(date_part('epoch', coalesce(p_admitted_at, p_at)))::bigint;
  v_us := round((date_part('epoch', coalesce(p_admitted_at, p_at)) - v_second) * 1000000)::integer;
  if v_second < ring_low or v_second >= ring_low + v_span then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  v_i := (v_second % v_span)::integer * 4;
  if p_admitted_at is not null and ring[v_i + 1] = 0 then -- (a correction for a second that left)
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- (A request given back from before the second's first left already, with it.)
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens) else ring[v_i + 2] end;
  sum_requests := sum_requests + v_count - ring[v_i + 1];
  sum_tokens := sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
  return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
end
$function$
;

create or replace view "public"."google_ai_shares_today" as  WITH clock AS (
         SELECT now() AS at,
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
            WHEN ((s.pace_burst IS NOT NULL) AND (l.rpd IS NOT NULL)) THEN public.google_ai_pace_allowance(c.at, z.day, s.pace_burst, (l.rpd - (kept.reserved_rpd - COALESCE(s.reserved_rpd, 0))), z.zone)
            ELSE NULL::integer
        END AS pace_allows_today
   FROM ((((((((public.google_ai_quota_shares s
     JOIN groups g ON ((g.share_id = s.id)))
     JOIN kept ON ((kept.model = s.model)))
     CROSS JOIN clock c)
     CROSS JOIN LATERAL ( SELECT y.zone,
            public.google_ai_day_in(c.at, y.zone) AS day
           FROM ( SELECT public.google_ai_day_zone(s.model) AS zone) y) z)
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
     CROSS JOIN LATERAL ( SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, z.day))[1] AS used_today) d);

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on type public.google_ai_ring is 'A sliding window''s ring of seconds and its sums (google_ai_ring_at).';
revoke all on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone) to service_role;
revoke all on table public.google_ai_shares_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_shares_today to service_role;
alter view public.google_ai_shares_today set (security_invoker='true');
comment on view public.google_ai_shares_today is 'Reserved shares and pacing per quota group: the owner''s use in the window and today (the model''s provider''s day, in its row''s day_zone), what the share still keeps from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';
