// A candidate for the admission kernel, measured beside the lean exact admission (bench/rpc-floor.ts):
// every state the decision reads lives in one row per quota group and model, locked once — a ring of
// per-second counts instead of a log of admission rows, the Pacific day's count, the cooldown. Not a
// path of the gateway: the figure says what the state row costs against the window log before the
// reservation is rebuilt on it (docs/admission-kernel.md).
//
// Exactness: an admission counts in its whole second's slot until 62 s after that second began, so it
// is held at least 61 s (the guarded window) and at most 62 s: never over Google's minute, at most one
// second late to free a slot.
export const STATE_ROW_SQL = `
create table public.bench_state_row (
  quota_group text not null,
  model text not null,
  ring_second bigint not null default 0,
  ring_requests integer[] not null default array_fill(0, array[62]),
  ring_tokens bigint[] not null default array_fill(0::bigint, array[62]),
  window_requests integer not null default 0,
  window_tokens bigint not null default 0,
  day date,
  day_requests integer not null default 0,
  cooldown_until timestamptz,
  primary key (quota_group, model)
) with (fillfactor = 50);

create function public.bench_state_row_admit(p_model text, p_tokens integer, p_caller text, p_request_id text)
returns uuid language plpgsql security definer set search_path to '' set plan_cache_mode to force_generic_plan as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_second bigint := floor(extract(epoch from v_now));
  v_day date := (v_now at time zone 'America/Los_Angeles')::date;
  v_reservation uuid := gen_random_uuid();
  v_model record;
  v_key record;
  s public.bench_state_row;
  v_slot integer;
begin
  -- 1. The policy: the model row, no queue ahead of the call, the best key.
  select m.model, m.rpm, m.tpm, m.rpd into v_model from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  if v_model.model is null
     or exists (select 1 from public.google_ai_queue q where q.model = v_model.model and q.lease_until >= v_now) then
    return null;
  end if;
  select k.id, k.key_alias, public.google_ai_quota_group(k.project_id, k.id) as quota_group into v_key
  from public.google_ai_api_keys k
  where k.is_active and (k.models is null or p_model = any (k.models))
  order by k.priority nulls last, k.key_alias limit 1;
  if v_key.id is null then
    return null;
  end if;
  -- 2. The state row, locked once.
  select * into s from public.bench_state_row st
  where st.quota_group = v_key.quota_group and st.model = v_model.model for update;
  if not found then
    return null;
  end if;
  -- 3. The ring moved on to this second: the seconds that left the guarded window leave the sums.
  if v_second - s.ring_second >= 62 then
    s.ring_requests := array_fill(0, array[62]);
    s.ring_tokens := array_fill(0::bigint, array[62]);
    s.window_requests := 0;
    s.window_tokens := 0;
  else
    for i in s.ring_second + 1 .. v_second loop
      v_slot := (i % 62)::integer + 1;
      s.window_requests := s.window_requests - s.ring_requests[v_slot];
      s.window_tokens := s.window_tokens - s.ring_tokens[v_slot];
      s.ring_requests[v_slot] := 0;
      s.ring_tokens[v_slot] := 0;
    end loop;
  end if;
  if s.day is distinct from v_day then
    s.day := v_day;
    s.day_requests := 0;
  end if;
  -- 4. The decision.
  if s.cooldown_until > v_now or s.window_requests + 1 > v_model.rpm or s.window_tokens + p_tokens > v_model.tpm
     or s.day_requests + 1 > v_model.rpd then
    return null;
  end if;
  -- 5. The booking: the state row and the attempt row.
  v_slot := (v_second % 62)::integer + 1;
  s.ring_requests[v_slot] := s.ring_requests[v_slot] + 1;
  s.ring_tokens[v_slot] := s.ring_tokens[v_slot] + p_tokens;
  update public.bench_state_row st set
    ring_second = greatest(s.ring_second, v_second), ring_requests = s.ring_requests, ring_tokens = s.ring_tokens,
    window_requests = s.window_requests + 1, window_tokens = s.window_tokens + p_tokens,
    day = s.day, day_requests = s.day_requests + 1
  where st.quota_group = s.quota_group and st.model = s.model;
  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, model, requested_model, api_key_id,
    key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class)
  values (v_reservation, 'reserved', p_request_id, p_caller, s.model, p_model, v_key.id, v_key.key_alias,
    s.quota_group, date_trunc('minute', v_now), v_day, p_tokens, 0, '{}', 'interactive');
  return v_reservation;
end
$$;`.trim();
