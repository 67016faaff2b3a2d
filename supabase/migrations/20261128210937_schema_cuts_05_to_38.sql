-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_is_quota_cause reads google_ai_quota_causes(); google_ai_resolve_model is
--   google_ai_model_by_name's active row; shorter bodies of google_ai_call_cost, google_ai_token_verdict_at,
--   google_ai_window_reopens_for, google_ai_sanitize_error (same answers)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_asked_tier text, p_served_tier text, p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer, p_write_5m integer DEFAULT NULL::integer, p_write_1h integer DEFAULT NULL::integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select case when p_input is null and p_output is null then case when p_outcome = 'upstream_error' then 0 end
                else ((coalesce(p_input, 0) - coalesce(p_cached, 0) - coalesce(p_write_5m, 0)
                       - coalesce(p_write_1h, 0)) * p.input_per_mtok
                      + case when coalesce(p_cached, 0) = 0 then 0 else p_cached * p.cached_input_per_mtok end
                      + case when coalesce(p_write_5m, 0) = 0 then 0 else p_write_5m * p.cache_write_5m_per_mtok end
                      + case when coalesce(p_write_1h, 0) = 0 then 0 else p_write_1h * p.cache_write_1h_per_mtok end
                      + (coalesce(p_output, 0) - coalesce(p_thinking, 0)) * p.output_per_mtok
                      + coalesce(p_thinking, 0) * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select coalesce(nullif(lower(coalesce(p_served_tier, p_asked_tier)), 'default'), 'standard') as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_asked_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_quota_cause(p_cause text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_cause = any (public.google_ai_quota_causes());
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_resolve_model(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits := public.google_ai_model_by_name(p_model);
begin
  return case when v_row.is_active then v_row end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_sanitize_error(p_message text, p_max_length integer DEFAULT 500)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
begin
  return left(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
      coalesce(p_message, ''),
      'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
      '\msk-[0-9A-Za-z_-]{8,}', '[redacted]', 'g'),
      '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
      'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
      '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
      '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
      '[[:cntrl:]]+', ' ', 'g'),
    greatest(p_max_length, 1));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  if v_limit is null and not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, caller, client_id, token_id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit, v_cause, v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_ring record;
  -- The others' RPM shares: what each keeps, what its owner used of the window, its ring (a row each).
  v_kept integer[];
  v_used integer[];
  v_rings integer[];
  v_span integer;
  v_left_requests integer;
  v_left_tokens bigint;
  v_i integer;
  v_us integer;
  v_gone integer;
  v_held integer;
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
begin
  select * into v_row from public.google_ai_usage_counters c where c.quota_group = p_quota_group and c.model = p_model;
  v_ring := public.google_ai_ring_at(p_now, p_window, v_row.ring_low, v_row.ring, v_row.window_requests,
    v_row.window_tokens);
  if v_ring.ring_low is null then
    return null;
  end if;
  v_span := cardinality(v_ring.ring) / 4;
  select coalesce(array_agg(s.reserved_rpm), '{}'), coalesce(array_agg(r.sum_requests), '{}'),
         coalesce(array_agg(r.ring), '{}')
    into v_kept, v_used, v_rings
  from public.google_ai_quota_shares s
  left join unnest(v_row.share_use) u on u.share_id = s.id
  cross join lateral public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests, null) r
  where s.model = p_model and s.reserved_rpm is not null and p_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));

  v_left_requests := v_ring.sum_requests;
  v_left_tokens := v_ring.sum_tokens;
  for k in 0 .. v_span - 1 loop
    v_s := v_ring.ring_low + k;
    v_i := (v_s % v_span)::integer * 4;
    continue when v_ring.ring[v_i + 1] = 0;
    -- Two moments a second: its first admission leaves, then the others (and the tokens) with its last.
    foreach v_us in array v_ring.ring[v_i + 3 : v_i + 4] loop
      v_gone := case when v_us < v_ring.ring[v_i + 4] then 1 else v_ring.ring[v_i + 1] end;
      v_held := 0;
      for j in 1 .. cardinality(v_kept) loop
        -- What of the owner's admissions of this second have left by then, the same way.
        v_held := v_held + greatest(0, v_kept[j] - (v_used[j]
          - case when v_rings[j][v_i + 1] = 0 or v_rings[j][v_i + 3] > v_us then 0
                 when v_rings[j][v_i + 4] <= v_us then v_rings[j][v_i + 1] else 1 end));
      end loop;
      if (p_rpm is null or v_left_requests - v_gone + 1 + v_held <= p_rpm)
         and (p_tpm is null or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2]
                                                     else 0 end + p_tokens <= p_tpm) then
        return public.google_ai_ring_time(v_s, v_us) + p_window;
      end if;
    end loop;
    v_left_requests := v_left_requests - v_ring.ring[v_i + 1];
    v_left_tokens := v_left_tokens - v_ring.ring[v_i + 2];
    for j in 1 .. cardinality(v_kept) loop
      v_used[j] := v_used[j] - v_rings[j][v_i + 1];
    end loop;
  end loop;
  return null;
end
$function$
;
