-- Booking a request: google_ai_book_fast, the hot path (one statement over the best group's counter
-- row), and google_ai_book_best_group (each group in rank order through google_ai_try_book) when it
-- does not apply; google_ai_book_waiting books a waiter's turn in the groups that have room.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time). Groups cooling down are skipped.
-- Within a priority tier a group whose row another reservation holds is passed over (SKIP LOCKED)
-- so concurrent callers spread across groups; before moving to a lower tier the passed-over groups
-- are tried again, waiting for their locks, so a busy row is never mistaken for a full one.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model.
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
    p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone,
    p_reservation_id uuid, p_class text, p_caller text, p_client_id uuid, p_attempt integer, OUT booked_group text,
    OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text,
    OUT admitted_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_candidate record;
  v_tier integer;
  v_first boolean := true;
  v_skipped text[] := '{}';
  v_outcome text;
  v_cause text;
  v_try record;
  v_wait record;
  v_at timestamptz;
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_budget public.google_ai_caller_budgets;
  v_budget_day date := public.google_ai_pacific_day(p_at);
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_requests_today integer;
  v_tokens_today bigint;
begin
  if p_client_id is null and p_caller is not null then
    select * into v_budget from public.google_ai_caller_budgets b where b.caller = p_caller for update;
    if found then
      v_requests_today := case when v_budget.day_bucket = v_budget_day then v_budget.requests_today else 0 end;
      v_tokens_today := case when v_budget.day_bucket = v_budget_day then v_budget.tokens_today else 0 end;
      if (v_budget.daily_max_requests is not null and v_requests_today + v_count_request > v_budget.daily_max_requests)
         or (v_budget.daily_max_tokens is not null and v_tokens_today + p_tokens > v_budget.daily_max_tokens) then
        blocked_by := 'caller_budget';
        cause := 'budget';
        reopens_at := public.google_ai_pacific_midnight_after(p_at);
        return;
      end if;
    end if;
  end if;

  <<booking>>
  begin
    for v_candidate in
      select * from public.google_ai_ranked_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
      order by c.rank
    loop
      if not v_first and v_candidate.priority is distinct from v_tier and cardinality(v_skipped) > 0 then
        select * into v_wait from public.google_ai_book_waiting(v_skipped,
          p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
          p_reservation_id, p_class, p_caller);
        if v_wait.booked_group is not null then
          booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
          admitted_at := v_wait.admitted_at;
          exit booking;
        end if;
        if reopens_at is null or v_wait.reopens_at < reopens_at then
          reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by; cause := v_wait.cause;
        end if;
        recheck_at := least(recheck_at, v_wait.recheck_at);
        v_skipped := '{}';
      end if;
      v_first := false;
      v_tier := v_candidate.priority;

      v_cause := null;
      if v_candidate.cooldown_until is not null then
        v_outcome := 'cooldown';
        v_at := v_candidate.cooldown_until;
      elsif p_rpd is not null and v_candidate.rpd_used + 1 > p_rpd then
        v_outcome := 'rpd';
        v_at := public.google_ai_reopens_at('rpd', p_at);
      elsif p_rpm is not null and v_candidate.rpm_used + 1 > p_rpm then
        -- Full for everyone; for a requester that others' shares keep slots from, it reopens later.
        v_outcome := 'rpm';
        v_at := public.google_ai_window_reopens_for(v_candidate.quota_group, p_model, p_at, v_window, p_rpm, p_tpm,
          p_tokens, p_class, p_caller);
      else
        -- TPM, shares and pacing are decided under the lock.
        select * into v_try from public.google_ai_try_book(v_candidate.quota_group, p_model,
          p_rpm, p_tpm, p_rpd, p_tokens, p_now, true, p_reservation_id, p_class, p_caller);
        v_outcome := v_try.outcome;
        if v_outcome = 'booked' then
          booked_group := v_candidate.quota_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
          admitted_at := v_try.admitted_at;
          exit booking;
        end if;
        v_at := v_try.reopens_at;
        v_cause := v_try.cause;
        recheck_at := least(recheck_at, v_try.recheck_at);
      end if;

      if v_outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
      elsif reopens_at is null or v_at < reopens_at then
        reopens_at := v_at; blocked_by := v_outcome;
        cause := coalesce(v_cause, public.google_ai_refusal_cause(v_outcome));
      end if;
    end loop;

    if cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
        p_reservation_id, p_class, p_caller);
      if v_wait.booked_group is not null then
        booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
        admitted_at := v_wait.admitted_at;
        exit booking;
      elsif reopens_at is null or v_wait.reopens_at < reopens_at then
        reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by; cause := v_wait.cause;
      end if;
      recheck_at := least(recheck_at, v_wait.recheck_at);
    end if;
  end;

  if booked_group is not null then
    blocked_by := null; reopens_at := null; recheck_at := null; cause := null;
    if v_budget.caller is not null then
      update public.google_ai_caller_budgets b set
        day_bucket = v_budget_day,
        requests_today = v_requests_today + v_count_request,
        tokens_today = v_tokens_today + p_tokens
      where b.caller = v_budget.caller;
    end if;
    return;
  end if;

  if v_first then
    blocked_by := 'no_active_key';
  end if;
  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  if recheck_at >= reopens_at then
    recheck_at := null;
  end if;
end
$$;

-- Most admissions meet nothing but the limits and the shares: nobody is queued for the model, no
-- share of it paces its owner's day, the caller has no daily budget, the best group is not cooling
-- down, its counter row is of today (and, with other groups to try, of a settled window), and
-- Pacific midnight is not within the day guard. For them this books on the best candidate group in a few statements,
-- under the same counter-row lock and with the same arithmetic as google_ai_try_book (what the others' shares keep
-- from the requester, its own shares' use, the spread's schedule), and answers with the quota the
-- booking leaves, so the answer needs no second reading of the window, and the key that serves the
-- group (p_rank: the class's rank, recorded on the admission for the queue's likely turns).
-- Whenever anything else could matter it books nothing and returns no group: the general booking
-- (google_ai_book_best_group) decides, and names the time of a refusal.
--
-- Exactness does not depend on the unlocked look taken when there are other groups (it only chooses
-- the path): the decision is taken on the counter row locked here. A row another transaction holds
-- is waited for when its group is the only candidate, else left to the general path (which tries the
-- others first, as it always did). The unlocked look counts what the shares keep from the requester
-- too: a row locked here stays locked until commit, and the general booking that follows when the
-- locked look finds no room may wait for another group's row (two requests, each holding a full
-- group's row and waiting for the other's, would deadlock). If the locked look finds no room after
-- all, it leaves the row as it found it.
CREATE OR REPLACE FUNCTION public.google_ai_book_fast(p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
    p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone,
    p_reservation_id uuid, p_caller text, p_client_id uuid, p_class text DEFAULT NULL::text,
    p_rank smallint DEFAULT NULL::smallint, OUT booked_group text, OUT minute_bucket timestamp with time zone,
    OUT day_bucket date, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text,
    OUT admitted_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_group text;
  v_groups bigint;
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_midnight timestamptz;
  v_ring record;
  v_requests_free timestamptz;
  v_written integer;
  v_tokens_free timestamptz;
  v_shared boolean;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_owned bigint[];
  v_in_share boolean := false;
  v_spread record;
  v_fits boolean;
  v_paced boolean;
  v_budgeted boolean;
  v_burst integer;
  v_kept jsonb;
  -- The key that serves the group (its best, as google_ai_serving_key names it).
  v_key_id uuid;
  v_key_alias text;
  v_env_var_name text;
begin
  -- Paced shares and a service caller's budget are the general booking's; whether the model has
  -- shares at all decides whether they are read under the lock. (One statement: this runs on every
  -- request; it also reads the model's spread burst.)
  select coalesce(bool_or(s.pace_burst is not null), false), count(*) > 0,
         p_client_id is null and exists (select 1 from public.google_ai_caller_budgets b where b.caller = p_caller),
         (select l.spread_burst from public.google_ai_model_limits l where l.model = p_model)
    into v_paced, v_shared, v_budgeted, v_burst
  from public.google_ai_quota_shares s where s.model = p_model;
  if v_paced or v_budgeted then
    return;
  end if;

  -- The group the general booking would try first, and an unlocked look at its row.
  select c.quota_group, c.groups, c.key_id, c.key_alias, c.env_var_name
    into v_group, v_groups, v_key_id, v_key_alias, v_env_var_name
  from (select g.*, count(*) over () as groups
        from public.google_ai_ranked_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) g) c
  where c.cooldown_until is null
    and c.rank = 1;
  if v_group is null then
    return;
  end if;
  -- What does not depend on the counter row is read before its lock, which is held until commit: the
  -- key that serves the group (above) and the spread's step.
  v_spread := public.google_ai_spread_step(v_burst, v_window, p_rpm, p_tpm, p_tokens);
  -- With other groups to try, a row another transaction holds is left to the general booking (which
  -- tries the others first), and so is one the unlocked look finds full; the only group is waited
  -- for, as the general booking would, and looked at under its lock only.
  if v_groups > 1 then
    select * into v_row from public.google_ai_usage_counters c where c.quota_group = v_group and c.model = p_model;
    if not found or v_row.window_at is null then
      return;
    end if;
    v_now := greatest(p_at, v_row.window_at);
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens);
    if v_shared then
      v_day := public.google_ai_pacific_day(v_now);
      select coalesce(sum(greatest(0, coalesce(s.reserved_rpm, 0) - r.sum_requests)), 0),
             coalesce(sum(greatest(0, coalesce(s.reserved_rpd, 0)
                                      - case when u.day_bucket = v_day then u.day_used
                                             when u.day_bucket = v_day - 1 then u.day_next_used else 0 end)), 0)
        into v_held_rpm, v_held_rpd
      from public.google_ai_quota_shares s
      left join public.google_ai_share_usage u on u.quota_group = v_group and u.share_id = s.id
      cross join lateral public.google_ai_ring_at(v_now, v_window, u.ring_low, u.ring,
        u.window_requests, null) r
      where s.model = p_model
        and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
    end if;
    if not public.google_ai_fast_fits(v_row, v_ring.sum_requests + v_held_rpm, v_ring.sum_tokens, p_rpm, p_tpm,
                                      p_rpd - v_held_rpd, p_tokens, v_now, v_day_guard) then
      return;
    end if;
    select * into v_row from public.google_ai_usage_counters c
    where c.quota_group = v_group and c.model = p_model
    for update skip locked;
  else
    select * into v_row from public.google_ai_usage_counters c
    where c.quota_group = v_group and c.model = p_model
    for update;
  end if;
  if not found or v_row.window_at is null then
    return;
  end if;

  v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
  v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
  v_day := public.google_ai_pacific_day(v_now);
  v_midnight := public.google_ai_pacific_midnight_after(v_now);

  -- The window moved on to now, with this request counted (written only if it fits).
  v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
    v_row.window_requests, v_row.window_tokens, 1, p_tokens);

  -- The model's shares in this group (their use is written under the lock held here): what the
  -- others' keep from the requester, and the requester's own.
  if v_shared then
    -- (kept: what the shares keep for the admitted class, as google_ai_quota_kept(p_model, p_rpm,
    -- p_rpd, p_class, null) reads it for the answer's quota; read here in the same pass.)
    select coalesce(sum(greatest(0, coalesce(x.reserved_rpm, 0) - x.win)) filter (where not x.owned), 0),
           coalesce(sum(greatest(0, coalesce(x.reserved_rpd, 0) - x.day_used)) filter (where not x.owned), 0),
           array_agg(x.id order by x.id) filter (where x.owned),
           coalesce(bool_or(x.owned and x.win < coalesce(x.reserved_rpm, 0)), false),
           case when p_class is not null then jsonb_build_object(
             'rpm_for_others', case when p_rpm is not null
                                    then least(p_rpm, coalesce(sum(x.reserved_rpm)
                                      filter (where not x.for_class), 0)) end,
             'rpm_for_you', case when p_rpm is not null
                                 then least(p_rpm, coalesce(sum(x.reserved_rpm) filter (where x.for_class), 0)) end,
             'rpd_for_others', case when p_rpd is not null
                                    then least(p_rpd, coalesce(sum(x.reserved_rpd)
                                      filter (where not x.for_class), 0)) end,
             'rpd_for_you', case when p_rpd is not null
                                 then least(p_rpd, coalesce(sum(x.reserved_rpd) filter (where x.for_class), 0)) end) end
      into v_held_rpm, v_held_rpd, v_owned, v_in_share, v_kept
    from (select s.id, s.reserved_rpm, s.reserved_rpd,
                 coalesce(s.priority_class = p_class, false) as for_class,
                 coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
                 -- The share's window: nothing to keep without an RPM part, and the owner's own
                 -- count matters only to the spread.
                 case when s.reserved_rpm is null
                        or (v_spread.step is null
                            and (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false)))
                      then 0
                      else (public.google_ai_ring_at(v_now, v_window, u.ring_low, u.ring, u.window_requests,
                              null)).sum_requests end as win,
                 case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end as day_used
          from public.google_ai_quota_shares s
          left join public.google_ai_share_usage u on u.quota_group = v_group and u.share_id = s.id
          where s.model = p_model) x;
  end if;

  -- Its place in the schedule holds it back only as google_ai_spread_holds says; its own share lets
  -- it past the schedule too.
  v_fits := public.google_ai_fast_fits(v_row, v_ring.sum_requests - 1 + v_held_rpm, v_ring.sum_tokens - p_tokens,
                                       p_rpm, p_tpm, p_rpd - v_held_rpd, p_tokens, v_now, v_day_guard)
            and (v_spread.step is null or v_in_share or v_row.spread_until - v_spread.tolerance <= v_now
                 or not public.google_ai_spread_holds(p_model, p_rank, v_now));
  if not v_fits then
    return;
  end if;

  if v_owned is not null then
    -- The owners' use: the day rolled to today as try_book rolls it (the day guard is not near
    -- here), and the window. An owner's first admission in the group writes its row.
    update public.google_ai_share_usage u set
      day_used = case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end + 1,
      day_next_used = case when u.day_bucket = v_day then u.day_next_used else 0 end,
      day_prev_used = case when u.day_bucket = v_day then u.day_prev_used
                           when u.day_bucket = v_day - 1 then u.day_used else 0 end,
      day_bucket = v_day,
      (ring_low, ring, window_requests) =
        (select r.ring_low, r.ring, r.sum_requests
         from public.google_ai_ring_at(v_now, v_window, u.ring_low, u.ring, u.window_requests, null, 1, 0) r)
    where u.quota_group = v_group and u.share_id = any (v_owned);
    get diagnostics v_written = row_count;
    if v_written < cardinality(v_owned) then
      insert into public.google_ai_share_usage (quota_group, share_id, day_bucket, day_used, day_next_used,
        day_prev_used, ring_low, ring, window_requests)
      select v_group, o.id, v_day, 1, 0, 0, r.ring_low, r.ring, r.sum_requests
      from unnest(v_owned) as o(id)
      cross join public.google_ai_ring_at(v_now, v_window, null, null, 0, null, 1, 0) r
      where not exists (select 1 from public.google_ai_share_usage u
                        where u.quota_group = v_group and u.share_id = o.id);
    end if;
  end if;


  update public.google_ai_usage_counters c set
    minute_bucket   = v_minute,
    day_bucket      = v_day,
    rpm_used        = case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end + 1,
    tpm_used        = case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end + p_tokens,
    rpd_used        = v_row.rpd_used + 1,
    ring_low        = v_ring.ring_low,
    ring            = v_ring.ring,
    window_requests = v_ring.sum_requests,
    window_tokens   = v_ring.sum_tokens,
    window_at       = v_now,
    spread_until    = public.google_ai_spread_next(v_row.spread_until, v_now, v_spread.step),
    updated_at      = v_now
  where c.id = v_row.id;

  booked_group := v_group;
  minute_bucket := v_minute;
  day_bucket := v_day;
  key_id := v_key_id;
  key_alias := v_key_alias;
  env_var_name := v_env_var_name;

  admitted_at := v_now;

  -- What the booking leaves, as google_ai_group_quota reads it (this request counted): the next to
  -- leave the window are its oldest seconds (this one's at the latest). (Times first: a call in its
  -- argument would keep google_ai_ms_until from being inlined.)
  v_requests_free := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window), v_now);
  v_tokens_free := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window, true), v_now);
  quota := jsonb_build_object(
    'model', p_model,
    'quota_group', v_group,
    'rpm', p_rpm,
    'requests_left', case when p_rpm is not null then greatest(0, p_rpm - v_ring.sum_requests) end,
    'requests_reset_ms', case when p_rpm is not null then public.google_ai_ms_until(v_requests_free, v_now) end,
    'tpm', p_tpm,
    'tokens_left', case when p_tpm is not null then greatest(0, p_tpm - v_ring.sum_tokens) end,
    'tokens_reset_ms', case when p_tpm is not null then public.google_ai_ms_until(v_tokens_free, v_now) end,
    'rpd', p_rpd,
    'day_left', case when p_rpd is not null then greatest(0, p_rpd - (v_row.rpd_used + 1)) end,
    'day_reset_ms', case when p_rpd is not null
                         then public.google_ai_ms_until(v_midnight + v_day_guard, v_now) end)
    -- What the model's shares keep, for the admitted class (as google_ai_answer_quota_at adds it).
    || case when v_kept is not null then jsonb_build_object('kept', v_kept) else '{}'::jsonb end;
end
$$;

-- Books on the first of p_groups that fits, waiting for each row lock in turn (holding no other
-- counter lock while it waits). Reports the earliest reopening among the full ones.
CREATE OR REPLACE FUNCTION public.google_ai_book_waiting(p_groups text[], p_model text, p_rpm integer, p_tpm integer,
    p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text,
    OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text,
    OUT admitted_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_group text;
  v_try record;
begin
  foreach v_group in array p_groups loop
    select * into v_try from public.google_ai_try_book(v_group, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now, false,
      p_reservation_id, p_class, p_caller);
    if v_try.outcome = 'booked' then
      booked_group := v_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
      admitted_at := v_try.admitted_at;
      return;
    end if;
    if reopens_at is null or v_try.reopens_at < reopens_at then
      reopens_at := v_try.reopens_at; blocked_by := v_try.outcome; cause := v_try.cause;
    end if;
    if v_try.recheck_at is not null and (recheck_at is null or v_try.recheck_at < recheck_at) then
      recheck_at := v_try.recheck_at;
    end if;
  end loop;
end
$$;
