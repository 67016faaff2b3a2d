-- The rules' floor: what any reservation with the gateway's rules must read and write in this part's
-- case, and nothing more. Beside the lean admission's reads (the model, the queue, the key, the
-- cooldown) and writes (the counter row, the attempt row) it reads the caller's class, locks its daily
-- budget row (the bench's caller has none), reads the model's shares with their owners' use in the
-- group (on the counter row, as the reservation keeps it), and counts the request in its own class's
-- share (the interactive class keeps 20% of every model). Its window is the row's running sums, kept
-- by no rule (a floor, not an exact window): the rules' arithmetic is left out, their reads and writes
-- are not, in one PL/pgSQL call.
create function public.bench_share_use(p_use public.google_ai_share_use[], p_owned bigint[])
returns public.google_ai_share_use[] language plpgsql stable as $$
begin
  return (select array_agg(row(o.id, coalesce(u.window_requests, 0) + 1, current_date, coalesce(u.day_used, 0) + 1, 0,
                   0, null, coalesce(u.ring, pg_catalog.array_fill(0, array[248])))::public.google_ai_share_use)
          from unnest(p_owned) o(id) left join unnest(p_use) u on u.share_id = o.id);
end
$$;
create function public.bench_rules_admit(p_model text, p_tokens integer, p_caller text, p_request_id text)
returns uuid language plpgsql security definer set search_path to '' set plan_cache_mode to force_generic_plan as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_reservation uuid := gen_random_uuid();
  v_model record;
  v_class text;
  v_key record;
  v_row public.google_ai_usage_counters;
  v_owned bigint[];
  v_held bigint;
begin
  select m.model, m.rpm, m.tpm, m.rpd into v_model from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  select pc.name into v_class from public.google_ai_priority_classes pc order by pc.rank limit 1;
  if v_model.model is null
     or exists (select 1 from public.google_ai_queue q where q.model = v_model.model and q.lease_until >= v_now) then
    return null;
  end if;
  perform 1 from public.google_ai_caller_budgets b where b.caller = p_caller for update;
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
  select array_agg(s.id) filter (where s.priority_class = v_class),
         coalesce(sum(greatest(0, coalesce(s.reserved_rpm, 0) - coalesce(u.window_requests, 0)))
           filter (where s.priority_class is distinct from v_class), 0)
    into v_owned, v_held
  from public.google_ai_quota_shares s
  left join unnest(v_row.share_use) u on u.share_id = s.id
  where s.model = v_model.model;
  if v_row.id is null or v_row.window_requests + 1 > v_model.rpm - v_held
     or v_row.window_tokens + p_tokens > v_model.tpm or v_row.rpd_used + 1 > v_model.rpd then
    return null;
  end if;
  update public.google_ai_usage_counters c set
    rpm_used = c.rpm_used + 1, tpm_used = c.tpm_used + p_tokens, rpd_used = c.rpd_used + 1,
    window_requests = c.window_requests + 1, window_tokens = c.window_tokens + p_tokens,
    window_at = v_now, updated_at = v_now, share_use = public.bench_share_use(c.share_use, v_owned)
  where c.id = v_row.id;
  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, model, requested_model, api_key_id,
    key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class)
  values (v_reservation, 'reserved', p_request_id, p_caller, v_row.model, p_model, v_key.id, v_key.key_alias,
    v_row.quota_group, date_trunc('minute', v_now), current_date, p_tokens, 0, '{}', v_class);
  return v_reservation;
end
$$;
