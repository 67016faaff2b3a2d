// A candidate for the admission kernel, measured beside the lean exact admission and the reserve RPC
// (bench/rpc-floor.ts): every count a booking reads lives in one row per quota group and model, locked
// once — a ring of per-second counts instead of a log of admission rows, the Pacific day's count, the
// spread's schedule, and each share's owner's counts in the same ring and day. On it, it books with the
// reservation's rules, through the gateway's own helpers where the rule is one: the request's limits
// (google_ai_request_limits), the class, the service caller's budget, the candidate groups
// (google_ai_candidate_groups) each tried in a subtransaction, what the others' shares keep, the spread
// (google_ai_spread_step, _holds, _next), the answer with the quota it leaves (google_ai_kept_object),
// through an entry that calls its twin. Left out (docs/admission-kernel.md, step 4): a paced share, the
// queue's turn and ticket (it answers "not now" when anyone waits), a held request id, a token's budgets,
// the refusal's times, the day guard around midnight, the second pass over groups held by others.
// Not a path of the gateway: the figure says what the rules cost on the state row before the
// reservation is rebuilt on it.
//
// Exactness: an admission counts in its whole second's slot until 62 s after that second began, so it
// is held at least 61 s (the guarded window) and at most 62 s: never over Google's minute, at most one
// second late to free a slot. An owner's admission leaves its share's count with it. Time is read under
// the row's lock and never goes back (window_at, day).
export const STATE_ROW_SQL = `
create table public.bench_state_row (
  quota_group text not null,
  model text not null,
  window_at timestamptz,
  ring_second bigint not null default 0,
  ring_requests integer[] not null default array_fill(0, array[62]),
  ring_tokens bigint[] not null default array_fill(0::bigint, array[62]),
  window_requests integer not null default 0,
  window_tokens bigint not null default 0,
  day date,
  day_requests integer not null default 0,
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
  v_at timestamptz := pg_catalog.clock_timestamp();
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_reservation uuid := gen_random_uuid();
  v_limits record;
  v_class record;
  v_budget record;
  v_shares record;
  v_group record;
  v_spread record;
  s public.bench_state_row;
  v_now timestamptz;
  v_second bigint;
  v_day date;
  v_n integer;
  v_slot integer;
  v_held integer;
  v_held_day integer;
  v_in_share boolean;
  v_frees timestamptz[];
begin
  -- 1. The request: its limits, the class (the one asked for, never above the caller's), the service
  -- caller's budget, no queue ahead, the model's spread and shares (which are the requester's).
  select l.* into v_limits from public.google_ai_request_limits(p_model, p_tokens) l;
  select pc.rank, pc.name into v_class from public.google_ai_priority_classes pc
  where pc.rank = greatest(coalesce((select p.rank from public.google_ai_priority_classes p where p.name = p_priority), 0),
                           (select min(p.rank) from public.google_ai_priority_classes p));
  select b.caller, b.day_bucket = d.day as today, d.day,
         case when b.day_bucket = d.day then b.requests_today else 0 end + 1 > b.daily_max_requests
         or case when b.day_bucket = d.day then b.tokens_today else 0 end + p_tokens > b.daily_max_tokens as spent
    into v_budget
  from public.google_ai_caller_budgets b cross join (select public.google_ai_pacific_day(v_at) as day) d
  where b.caller = p_caller for update of b;
  if v_limits.model is null or v_limits.blocked_by is not null or v_budget.spent
     or exists (select 1 from public.google_ai_queue q where q.model = v_limits.model and q.lease_until >= v_at) then
    return jsonb_build_object('ok', false);
  end if;
  select (select m.spread_burst from public.google_ai_model_limits m where m.model = v_limits.model) as burst,
         array_agg(sh.id order by sh.id) as ids, array_agg(coalesce(sh.reserved_rpm, 0) order by sh.id) as rpm,
         array_agg(coalesce(sh.reserved_rpd, 0) order by sh.id) as rpd,
         array_agg(coalesce(sh.priority_class = v_class.name or sh.caller = p_caller, false) order by sh.id) as own,
         public.google_ai_kept_object(v_limits.rpm, v_limits.rpd,
           sum(sh.reserved_rpm) filter (where sh.priority_class is distinct from v_class.name),
           sum(sh.reserved_rpm) filter (where sh.priority_class = v_class.name),
           sum(sh.reserved_rpd) filter (where sh.priority_class is distinct from v_class.name),
           sum(sh.reserved_rpd) filter (where sh.priority_class = v_class.name)) as kept
    into v_shares
  from public.google_ai_quota_shares sh where sh.model = v_limits.model;
  v_n := coalesce(cardinality(v_shares.ids), 0);
  v_spread := public.google_ai_spread_step(v_shares.burst, v_window, v_limits.rpm, v_limits.tpm, p_tokens);
  -- 2. The candidate groups, best first; the first whose state row fits books. A refusal gives the
  -- row's lock back (the subtransaction), so the next group is tried without holding it.
  for v_group in
    select c.* from public.google_ai_candidate_groups(v_limits.model, '{}', v_limits.rpm, v_limits.tpm, v_limits.rpd, v_at) c
    where c.cooldown_until is null
    order by c.priority nulls last, c.headroom desc, c.quota_group
  loop
    begin
      select * into s from public.bench_state_row st
      where st.quota_group = v_group.quota_group and st.model = v_limits.model for update;
      continue when not found;
      -- 3. Under the lock, the time (never back), the ring moved on to it (the owners' counts with it),
      -- the day to today.
      v_now := greatest(pg_catalog.clock_timestamp(), s.window_at);
      v_second := greatest(floor(extract(epoch from v_now))::bigint, s.ring_second);
      v_day := greatest(public.google_ai_pacific_day(v_now), s.day);
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
        for k in 1 .. v_second - s.ring_second loop
          v_slot := ((s.ring_second + k) % 62)::integer + 1;
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
      -- 4. The decision: what the others' shares keep, the window and the day, the spread's place (it
      -- holds only while requests wait, unless the requester's own share has room).
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
      if s.window_requests + 1 > v_limits.rpm - v_held or s.window_tokens + p_tokens > v_limits.tpm
         or s.day_requests + 1 > v_limits.rpd - v_held_day
         or (v_spread.step is not null and not v_in_share and s.spread_until - v_spread.tolerance > v_now
             and public.google_ai_spread_holds(v_limits.model, v_class.rank, v_now)) then
        raise exception using errcode = 'P0001', message = 'bench:full';
      end if;
      -- 5. The booking: the state row (the owners' counts with it), the budget and the attempt row.
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
        window_at = v_now, ring_second = v_second, ring_requests = s.ring_requests, ring_tokens = s.ring_tokens,
        window_requests = s.window_requests + 1, window_tokens = s.window_tokens + p_tokens,
        day = s.day, day_requests = s.day_requests + 1,
        spread_until = public.google_ai_spread_next(s.spread_until, v_now, v_spread.step),
        share_ids = s.share_ids, share_ring = s.share_ring, share_window = s.share_window, share_day = s.share_day
      where st.quota_group = s.quota_group and st.model = s.model;
    exception
      when sqlstate 'P0001' then
        continue;
    end;
    if v_budget.caller is not null then
      update public.google_ai_caller_budgets b set day_bucket = v_budget.day,
        requests_today = case when v_budget.today then b.requests_today else 0 end + public.google_ai_request_counts(1),
        tokens_today = case when v_budget.today then b.tokens_today else 0 end + p_tokens
      where b.caller = v_budget.caller;
    end if;
    insert into public.google_ai_attempts (reservation_id, status, request_id, caller, model, requested_model,
      api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class,
      admitted_at)
    values (v_reservation, 'reserved', p_request_id, p_caller, v_limits.model, p_model, v_group.key_id, v_group.key_alias,
      v_group.quota_group, date_trunc('minute', v_now), v_day, p_tokens, 0, '{}', v_class.name, v_now);
    -- 6. The answer, with the quota it leaves: when the oldest second that holds requests, and the
    -- oldest that holds tokens, leaves (62 s after it began), the day's reset.
    for i in 1 .. 62 loop
      v_slot := ((v_second + i) % 62)::integer + 1;
      if s.ring_requests[v_slot] > 0 and v_frees[1] is null then
        v_frees[1] := to_timestamp(v_second + i);
      end if;
      if s.ring_tokens[v_slot] > 0 and v_frees[2] is null then
        v_frees[2] := to_timestamp(v_second + i);
      end if;
    end loop;
    return jsonb_build_object('ok', true, 'reservation_id', v_reservation, 'key_id', v_group.key_id,
      'key_alias', v_group.key_alias, 'env_var_name', v_group.env_var_name, 'quota_group', v_group.quota_group,
      'model', v_limits.model, 'minute_bucket', date_trunc('minute', v_now), 'day_bucket', v_day,
      'priority', v_class.name,
      'quota', jsonb_build_object('model', v_limits.model, 'quota_group', v_group.quota_group, 'rpm', v_limits.rpm,
        'requests_left', v_limits.rpm - s.window_requests - 1,
        'requests_reset_ms', public.google_ai_ms_until(v_frees[1], v_now), 'tpm', v_limits.tpm,
        'tokens_left', v_limits.tpm - s.window_tokens - p_tokens,
        'tokens_reset_ms', public.google_ai_ms_until(v_frees[2], v_now),
        'rpd', v_limits.rpd, 'day_left', v_limits.rpd - s.day_requests - 1,
        'day_reset_ms', public.google_ai_ms_until(public.google_ai_pacific_midnight_after(v_now), v_now),
        'kept', v_shares.kept));
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
