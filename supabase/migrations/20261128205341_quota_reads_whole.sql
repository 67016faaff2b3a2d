-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the quota reads take the quota and ring records whole (google_ai_group_room) and a reset's
--   ms is null where its limit is (google_ai_answer_quota_at)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits record;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}'::jsonb;
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  v_limits := public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model));
  if v_limits.model is null then
    return null;
  end if;

  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.* into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                     v_limits.rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model,
      v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    -- (google_ai_group_quota leaves a limit's reset null where the model has no such limit: so is its ms.)
    'requests_reset_ms', public.google_ai_ms_until(v_quota.requests_reset_at, v_now),
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', public.google_ai_ms_until(v_quota.tokens_reset_at, v_now),
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', public.google_ai_ms_until(v_quota.day_reset_at, v_now))
    || v_kept;
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
  v_limits.rpm := public.google_ai_effective_limit(v_limits.rpm, v_limits.safety_margin);
  v_limits.tpm := public.google_ai_effective_limit(v_limits.tpm, v_limits.safety_margin);
  v_limits.rpd := public.google_ai_effective_limit(v_limits.rpd, v_limits.safety_margin);
  v_limits.itpm := public.google_ai_effective_limit(v_limits.itpm, v_limits.safety_margin);
  v_limits.otpm := public.google_ai_effective_limit(v_limits.otpm, v_limits.safety_margin);
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
