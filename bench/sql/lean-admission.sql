-- The least an exact admission of one model does in PostgreSQL, written the way the gateway writes
-- its own (one PL/pgSQL call, generic plans, the gateway's tables): the model row by its name, no live
-- queue ticket for it, the best key, no cooldown on its group, the counter row locked, the guarded
-- sliding window kept (admissions that left it removed and taken off the row's sums, one admission row
-- written), the counter row updated, the attempt row written. Nothing of the classes, shares, spread,
-- budgets or the answer's quota. Not a path of the gateway: the floor for an admission that also reads
-- its model, keys and queue and keeps the window, measured beside the reservation.
create function public.bench_lean_admit(p_model text, p_tokens integer, p_caller text, p_request_id text)
returns uuid language plpgsql security definer set search_path to '' set plan_cache_mode to force_generic_plan as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_window interval := interval '61 seconds';
  v_reservation uuid := gen_random_uuid();
  v_model record;
  v_key record;
  v_row public.google_ai_usage_counters;
  v_gone integer;
  v_gone_tokens bigint;
begin
  select m.model, m.rpm, m.tpm into v_model from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  if v_model.model is null
     or exists (select 1 from public.google_ai_queue q where q.model = v_model.model and q.lease_until >= v_now) then
    return null;
  end if;
  select k.id, k.key_alias, public.google_ai_quota_group(k.project_id, k.id) as quota_group into v_key
  from public.google_ai_api_keys k
  where k.is_active and (k.models is null or p_model = any (k.models))
  order by k.priority nulls last, k.key_alias limit 1;
  if v_key.id is null or exists (select 1 from public.google_ai_cooldowns cd where cd.quota_group = v_key.quota_group
                                  and cd.model = v_model.model and cd.cooldown_until > v_now) then
    return null;
  end if;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = v_key.quota_group and c.model = v_model.model for update;
  if not found then
    return null;
  end if;
  with gone as (
    delete from public.bench_lean_admissions a
    where a.quota_group = v_row.quota_group and a.model = v_row.model
      and a.admitted_at > coalesce(v_row.window_at - v_window, '-infinity') and a.admitted_at <= v_now - v_window
    returning a.tokens)
  select count(*), coalesce(sum(g.tokens), 0) into v_gone, v_gone_tokens from gone g;
  if v_row.window_requests - v_gone + 1 > v_model.rpm or v_row.window_tokens - v_gone_tokens + p_tokens > v_model.tpm then
    return null;
  end if;
  insert into public.bench_lean_admissions (reservation_id, quota_group, model, admitted_at, tokens)
  values (v_reservation, v_row.quota_group, v_row.model, v_now, p_tokens);
  update public.google_ai_usage_counters c set
    rpm_used = c.rpm_used + 1, tpm_used = c.tpm_used + p_tokens, rpd_used = c.rpd_used + 1,
    window_requests = v_row.window_requests - v_gone + 1, window_tokens = v_row.window_tokens - v_gone_tokens + p_tokens,
    window_at = v_now, updated_at = v_now
  where c.id = v_row.id;
  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, model, requested_model, api_key_id,
    key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class)
  values (v_reservation, 'reserved', p_request_id, p_caller, v_row.model, p_model, v_key.id, v_key.key_alias,
    v_row.quota_group, date_trunc('minute', v_now), current_date, p_tokens, 0, '{}', 'interactive');
  return v_reservation;
end
$$;
