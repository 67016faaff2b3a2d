// A candidate for the admission kernel, measured beside the lean exact admission and the reserve RPC
// (bench/rpc-floor.ts): every state the decision reads lives in one row per quota group and model,
// locked once — a ring of per-second counts instead of a log of admission rows, the Pacific day's
// count, the cooldown, the spread's schedule, and the shares' owners' counts in the same ring — and it
// carries the reservation's rules on a booking: the class, the service caller's budget, the shares,
// the spread, the walk over candidate groups, the answer with the quota it leaves, the entry's frame.
// Not a path of the gateway: the figure says what the rules cost on the state row before the
// reservation is rebuilt on it (docs/admission-kernel.md).
//
// Exactness: an admission counts in its whole second's slot until 62 s after that second began, so it
// is held at least 61 s (the guarded window) and at most 62 s: never over Google's minute, at most one
// second late to free a slot. An owner's admission leaves its share's count with it.
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
  spread_until timestamptz,
  share_ids bigint[],      -- the model's shares, in the order of the counts below
  share_ring integer[],    -- per second of the ring and per share: its owner's admissions
  share_window integer[],  -- per share: their sum
  share_day integer[],     -- per share: its owner's admissions of the day
  primary key (quota_group, model)
) with (fillfactor = 50);

create function public.bench_state_row_admit(p_model text, p_tokens integer, p_caller text, p_request_id text,
  p_priority text default null)
returns jsonb language plpgsql security definer set search_path to '' set plan_cache_mode to force_generic_plan as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_second bigint := floor(extract(epoch from v_now));
  v_day date := (v_now at time zone 'America/Los_Angeles')::date;
  v_reservation uuid := gen_random_uuid();
  v_model record;
  v_class record;
  v_budget record;
  v_shares record;
  v_key record;
  s public.bench_state_row;
  v_n integer;
  v_slot integer;
  v_held integer;
  v_held_day integer;
  v_in_share boolean;
  v_step interval;
  v_frees timestamptz;
begin
  -- 1. The request: the model row, the class (the one asked for, never above the caller's), the
  -- service caller's budget row, no queue ahead, the model's shares and which are the requester's.
  select m.model, m.rpm, m.tpm, m.rpd, m.spread_burst into v_model
  from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  select pc.rank, pc.name into v_class from public.google_ai_priority_classes pc
  where pc.rank = greatest(coalesce((select p.rank from public.google_ai_priority_classes p where p.name = p_priority), 0),
                           (select min(p.rank) from public.google_ai_priority_classes p));
  select b.caller into v_budget from public.google_ai_caller_budgets b where b.caller = p_caller for update;
  if v_model.model is null
     or exists (select 1 from public.google_ai_queue q where q.model = v_model.model and q.lease_until >= v_now) then
    return jsonb_build_object('ok', false);
  end if;
  select array_agg(sh.id order by sh.id) as ids, array_agg(coalesce(sh.reserved_rpm, 0) order by sh.id) as rpm,
         array_agg(coalesce(sh.reserved_rpd, 0) order by sh.id) as rpd,
         array_agg(coalesce(sh.priority_class = v_class.name or sh.caller = p_caller, false) order by sh.id) as own
    into v_shares
  from public.google_ai_quota_shares sh where sh.model = v_model.model;
  v_n := coalesce(cardinality(v_shares.ids), 0);
  -- 2. The candidate groups, best key first; the first whose state row fits books.
  for v_key in
    select k.id, k.key_alias, public.google_ai_quota_group(k.project_id, k.id) as quota_group
    from public.google_ai_api_keys k
    where k.is_active and (k.models is null or p_model = any (k.models))
    order by k.priority nulls last, k.key_alias
  loop
    select * into s from public.bench_state_row st
    where st.quota_group = v_key.quota_group and st.model = v_model.model for update;
    continue when not found;
    -- 3. The ring moved on to this second (the owners' counts with it), the day to today.
    if s.share_ids is distinct from v_shares.ids or v_second - s.ring_second >= 62 then
      s.share_ring := array_fill(0, array[62 * v_n]);
      s.share_window := array_fill(0, array[v_n]);
    end if;
    if s.share_ids is distinct from v_shares.ids or s.day is distinct from v_day then
      s.share_day := array_fill(0, array[v_n]);
    end if;
    s.share_ids := v_shares.ids;
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
        for j in 1 .. v_n loop
          s.share_window[j] := s.share_window[j] - s.share_ring[(v_slot - 1) * v_n + j];
          s.share_ring[(v_slot - 1) * v_n + j] := 0;
        end loop;
      end loop;
    end if;
    if s.day is distinct from v_day then
      s.day := v_day;
      s.day_requests := 0;
    end if;
    -- 4. The decision: what the others' shares keep, the spread's place (unless the requester's own
    -- share has room), the cooldown, the window and the day.
    v_held := 0;
    v_held_day := 0;
    v_in_share := false;
    for j in 1 .. v_n loop
      if v_shares.own[j] then
        v_in_share := v_in_share or s.share_window[j] < v_shares.rpm[j];
      else
        v_held := v_held + greatest(0, v_shares.rpm[j] - s.share_window[j]);
        v_held_day := v_held_day + greatest(0, v_shares.rpd[j] - s.share_day[j]);
      end if;
    end loop;
    v_step := case when v_model.spread_burst is not null then interval '61 s' / v_model.rpm end;
    continue when s.cooldown_until > v_now or s.window_requests + 1 > v_model.rpm - v_held
      or s.window_tokens + p_tokens > v_model.tpm or s.day_requests + 1 > v_model.rpd - v_held_day
      or (v_step is not null and not v_in_share and s.spread_until - (v_model.spread_burst - 1) * v_step > v_now);
    -- 5. The booking: the state row (the owners' counts with it) and the attempt row.
    v_slot := (v_second % 62)::integer + 1;
    s.ring_requests[v_slot] := s.ring_requests[v_slot] + 1;
    s.ring_tokens[v_slot] := s.ring_tokens[v_slot] + p_tokens;
    for j in 1 .. v_n loop
      if v_shares.own[j] then
        s.share_ring[(v_slot - 1) * v_n + j] := s.share_ring[(v_slot - 1) * v_n + j] + 1;
        s.share_window[j] := s.share_window[j] + 1;
        s.share_day[j] := s.share_day[j] + 1;
      end if;
    end loop;
    update public.bench_state_row st set
      ring_second = greatest(s.ring_second, v_second), ring_requests = s.ring_requests, ring_tokens = s.ring_tokens,
      window_requests = s.window_requests + 1, window_tokens = s.window_tokens + p_tokens,
      day = s.day, day_requests = s.day_requests + 1,
      spread_until = case when v_step is not null then greatest(s.spread_until, v_now) + v_step end,
      share_ids = s.share_ids, share_ring = s.share_ring, share_window = s.share_window, share_day = s.share_day
    where st.quota_group = s.quota_group and st.model = s.model;
    if v_budget.caller is not null then
      update public.google_ai_caller_budgets b set requests_today = b.requests_today + 1, tokens_today = b.tokens_today + p_tokens
      where b.caller = v_budget.caller;
    end if;
    insert into public.google_ai_attempts (reservation_id, status, request_id, caller, model, requested_model,
      api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class,
      admitted_at)
    values (v_reservation, 'reserved', p_request_id, p_caller, s.model, p_model, v_key.id, v_key.key_alias,
      s.quota_group, date_trunc('minute', v_now), v_day, p_tokens, 0, '{}', v_class.name, v_now);
    -- 6. The answer, with the quota it leaves (the oldest second still in the window frees first).
    for i in 1 .. 62 loop
      v_slot := ((v_second + i) % 62)::integer + 1;
      if s.ring_requests[v_slot] > 0 then
        v_frees := to_timestamp(v_second + i - 61);
        exit;
      end if;
    end loop;
    return jsonb_build_object('ok', true, 'reservation_id', v_reservation, 'key_id', v_key.id,
      'key_alias', v_key.key_alias, 'quota_group', s.quota_group, 'model', s.model,
      'minute_bucket', date_trunc('minute', v_now), 'day_bucket', v_day, 'priority', v_class.name,
      'quota', jsonb_build_object('model', s.model, 'quota_group', s.quota_group, 'rpm', v_model.rpm,
        'requests_left', v_model.rpm - s.window_requests - 1, 'tpm', v_model.tpm,
        'tokens_left', v_model.tpm - s.window_tokens - p_tokens,
        'window_reset_ms', public.google_ai_ms_until(coalesce(v_frees, v_now), v_now),
        'rpd', v_model.rpd, 'day_left', v_model.rpd - s.day_requests - 1,
        'day_reset_ms', public.google_ai_ms_until(public.google_ai_pacific_midnight_after(v_now), v_now)));
  end loop;
  return jsonb_build_object('ok', false);
end
$$;

-- The entry's frame: the gateway's entry calls its clocked twin.
create function public.bench_state_row_entry(p_model text, p_tokens integer, p_caller text, p_request_id text)
returns jsonb language plpgsql security definer set search_path to '' set plan_cache_mode to force_generic_plan as $$
begin
  return public.bench_state_row_admit(p_model, p_tokens, p_caller, p_request_id);
end
$$;`.trim();
