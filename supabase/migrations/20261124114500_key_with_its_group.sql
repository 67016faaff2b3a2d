-- The reservation reads the keys once and the model row by its name's index; the same decisions.
--
-- - google_ai_ranked_groups replaces google_ai_candidate_groups: the same groups in the same order,
--   each naming the key that serves it (the one google_ai_serving_key names: the group's best active
--   key for the model, by priority, then alias), so the fast booking takes the key from the candidate
--   row instead of calling google_ai_serving_key after it. (A new name, not new output columns under
--   the old one: the earlier migrations, applied again, re-create the old function, which this one
--   drops again.) The general booking and the queue's turn read it too.
-- - google_ai_admit_at finds the model row by its exact name through the unique index, and by alias
--   only when no row has the name: before, every active row was read and sorted on each request.

-- The quota groups that may serve p_model (through an active key the caller did not exclude), one
-- row each: the priority of its best key, the cooldown in force at p_now and what it used in the
-- current minute and Pacific day (an unlocked read), ranked in the order the reservation tries
-- them: priority (lower first), then headroom (the smallest remaining fraction of RPM, TPM and
-- RPD, largest first), then name. Each row names the key that serves its group, as
-- google_ai_serving_key would (the best active key for the model, by priority, then alias), so the
-- fast booking needs no second look at the keys.
CREATE OR REPLACE FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) RETURNS TABLE(quota_group text, priority integer, cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, rank bigint, key_id uuid, key_alias text, env_var_name text)
    LANGUAGE sql STABLE
    AS $$
  with keys as (
    select distinct on (public.google_ai_quota_group(k.project_id, k.id))
           public.google_ai_quota_group(k.project_id, k.id) as quota_group,
           k.priority, k.id as key_id, k.key_alias, k.env_var_name
    from public.google_ai_api_keys k
    where k.is_active
      and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
      and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
    order by public.google_ai_quota_group(k.project_id, k.id), k.priority nulls last, k.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join public.google_ai_cooldowns cd
      on cd.quota_group operator(pg_catalog.=) g.quota_group and cd.model operator(pg_catalog.=) p_model
         and cd.cooldown_until operator(pg_catalog.>) p_now
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         row_number() over (
           order by u.priority nulls last,
                    least(coalesce(1 operator(pg_catalog.-) u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0), 1),
                          coalesce(1 operator(pg_catalog.-) u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0), 1),
                          coalesce(1 operator(pg_catalog.-) u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0), 1)) desc,
                    u.quota_group),
         u.key_id, u.key_alias, u.env_var_name
  from usage u
$$;

REVOKE ALL ON FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) FROM PUBLIC;

-- Most admissions meet nothing but the limits and the shares: nobody is queued for the model, no
-- share of it paces its owner's day, the caller has no daily budget, the best group is not cooling
-- down, its counter row is of today (and, with other groups to try, of a settled window), and
-- Pacific midnight is not within the day guard. For them this books on the best candidate group in a few statements, under the same
-- counter-row lock and with the same arithmetic as google_ai_try_book (what the others' shares keep
-- from the requester, its own shares' use, the spread's schedule), and answers with the quota the
-- booking leaves, so the answer needs no second reading of the window, and the key that serves the
-- group (p_rank: the class's rank, recorded on the admission for the queue's likely turns).
-- Whenever anything else could matter it books nothing and returns no group: the general booking
-- (google_ai_book_best_group) decides, and names the time of a refusal.
--
-- Exactness does not depend on the unlocked look taken when there are other groups (it only chooses
-- the path): the decision is taken on the counter row locked here. A row another transaction holds
-- is waited for when its group is the only candidate, else left to the general path (which tries the
-- others first, as it always did). If the locked look finds no room after all, the expired
-- admissions it removed are taken off the row's sums (as the general try would) before it leaves.
CREATE OR REPLACE FUNCTION public.google_ai_book_fast(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_caller text, p_client_id uuid, p_class text DEFAULT NULL::text, p_rank smallint DEFAULT NULL::smallint, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text) RETURNS record
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
  v_gone_requests integer;
  v_gone_tokens bigint;
  v_win_requests integer;
  v_win_tokens bigint;
  v_oldest timestamptz;
  v_oldest_tokens timestamptz;
  v_shared boolean;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_owned bigint[];
  v_in_share boolean := false;
  v_spread record;
  v_fits boolean;
  v_paced boolean;
  v_kept jsonb;
  -- The key that serves the group (its best, as google_ai_serving_key names it).
  v_key_id uuid;
  v_key_alias text;
  v_env_var_name text;
begin
  -- Paced shares and a service caller's budget are the general booking's; whether the model has
  -- shares at all decides whether they are read under the lock.
  select coalesce(bool_or(s.pace_burst is not null), false), count(*) > 0 into v_paced, v_shared
  from public.google_ai_quota_shares s where s.model = p_model;
  if v_paced or (p_client_id is null and exists (select 1 from public.google_ai_caller_budgets b where b.caller = p_caller)) then
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
  v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, p_tpm, p_tokens);
  -- With other groups to try, a row another transaction holds is left to the general booking (which
  -- tries the others first), and so is one the unlocked look finds full; the only group is waited
  -- for, as the general booking would, and looked at under its lock only.
  if v_groups > 1 then
    select * into v_row from public.google_ai_usage_counters c where c.quota_group = v_group and c.model = p_model;
    if not found or v_row.window_at is null
       or not public.google_ai_fast_fits(v_row, v_row.window_requests, v_row.window_tokens, p_rpm, p_tpm, p_rpd,
                                         p_tokens, greatest(p_at, v_row.window_at), v_day_guard) then
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

  -- The admissions that left the window since the last removal (window_floor, below).
  with gone as (
    delete from public.google_ai_admissions a
    where a.quota_group = v_group and a.model = p_model
      and a.admitted_at > coalesce(v_row.window_floor, '-infinity') and a.admitted_at <= v_now - v_window
    returning a.tokens, a.share_ids),
  owners_back as (
    update public.google_ai_share_usage u set window_requests = greatest(0, u.window_requests - b.n)
    from (select s.id, count(*)::integer as n from gone g cross join unnest(g.share_ids) as s(id) group by s.id) b
    where u.quota_group = v_group and u.share_id = b.id)
  select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
  v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
  v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);

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
                                    then least(p_rpm, coalesce(sum(x.reserved_rpm) filter (where not x.for_class), 0)) end,
             'rpm_for_you', case when p_rpm is not null
                                 then least(p_rpm, coalesce(sum(x.reserved_rpm) filter (where x.for_class), 0)) end,
             'rpd_for_others', case when p_rpd is not null
                                    then least(p_rpd, coalesce(sum(x.reserved_rpd) filter (where not x.for_class), 0)) end,
             'rpd_for_you', case when p_rpd is not null
                                 then least(p_rpd, coalesce(sum(x.reserved_rpd) filter (where x.for_class), 0)) end) end
      into v_held_rpm, v_held_rpd, v_owned, v_in_share, v_kept
    from (select s.id, s.reserved_rpm, s.reserved_rpd,
                 coalesce(s.priority_class = p_class, false) as for_class,
                 coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
                 coalesce(u.window_requests, 0) as win,
                 case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end as day_used
          from public.google_ai_quota_shares s
          left join public.google_ai_share_usage u on u.quota_group = v_group and u.share_id = s.id
          where s.model = p_model) x;
  end if;

  v_fits := public.google_ai_fast_fits(v_row, v_win_requests + v_held_rpm, v_win_tokens, p_rpm, p_tpm,
                                       p_rpd - v_held_rpd, p_tokens, v_now, v_day_guard)
            and (v_spread.step is null or v_in_share or v_row.spread_until - v_spread.tolerance <= v_now);
  if not v_fits then
    update public.google_ai_usage_counters c set window_requests = v_win_requests, window_tokens = v_win_tokens,
      window_floor = greatest(c.window_floor, v_now - v_window)
    where c.id = v_row.id;
    return;
  end if;

  insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard, share_ids,
    class_rank)
  values (p_reservation_id, v_group, p_model, v_now, p_tokens, 0, v_owned, p_rank);

  if v_owned is not null then
    -- The owners' use, rolled to today as try_book rolls it (the day guard is not near here).
    insert into public.google_ai_share_usage as u (quota_group, share_id, window_requests, day_bucket, day_used,
      day_next_used, day_prev_used)
    select v_group, o.id, 1, v_day, 1, 0, 0 from unnest(v_owned) as o(id)
    on conflict (quota_group, share_id) do update set
      window_requests = u.window_requests + 1,
      day_used = case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end + 1,
      day_next_used = case when u.day_bucket = v_day then u.day_next_used else 0 end,
      day_prev_used = case when u.day_bucket = v_day then u.day_prev_used
                           when u.day_bucket = v_day - 1 then u.day_used else 0 end,
      day_bucket = v_day;
  end if;

  update public.google_ai_usage_counters c set
    minute_bucket   = v_minute,
    day_bucket      = v_day,
    rpm_used        = case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end + 1,
    tpm_used        = case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end + p_tokens,
    rpd_used        = v_row.rpd_used + 1,
    window_requests = v_win_requests + 1,
    window_tokens   = v_win_tokens + p_tokens,
    window_at       = v_now,
    window_floor    = greatest(v_row.window_floor, v_now - v_window),
    spread_until    = public.google_ai_spread_next(v_row.spread_until, v_now, v_spread.step),
    updated_at      = v_now
  where c.id = v_row.id;

  booked_group := v_group;
  minute_bucket := v_minute;
  day_bucket := v_day;
  key_id := v_key_id;
  key_alias := v_key_alias;
  env_var_name := v_env_var_name;

  -- What the booking leaves, as google_ai_group_quota reads it (this request counted): the next
  -- to leave the window are its oldest admissions (this one at the latest).
  select a.admitted_at into v_oldest from public.google_ai_admissions a
  where a.quota_group = v_group and a.model = p_model and a.admitted_at > v_now - v_window
  order by a.admitted_at limit 1;
  if p_tpm is not null then
    select a.admitted_at into v_oldest_tokens from public.google_ai_admissions a
    where a.quota_group = v_group and a.model = p_model and a.admitted_at > v_now - v_window and a.tokens > 0
    order by a.admitted_at limit 1;
  end if;
  quota := jsonb_build_object(
    'model', p_model,
    'quota_group', v_group,
    'rpm', p_rpm,
    'requests_left', case when p_rpm is not null then greatest(0, p_rpm - (v_win_requests + 1)) end,
    'requests_reset_ms', case when p_rpm is not null
                              then public.google_ai_ms_until(coalesce(v_oldest + v_window, v_now), v_now) end,
    'tpm', p_tpm,
    'tokens_left', case when p_tpm is not null then greatest(0, p_tpm - (v_win_tokens + p_tokens)) end,
    'tokens_reset_ms', case when p_tpm is not null
                            then public.google_ai_ms_until(coalesce(v_oldest_tokens + v_window, v_now), v_now) end,
    'rpd', p_rpd,
    'day_left', case when p_rpd is not null then greatest(0, p_rpd - (v_row.rpd_used + 1)) end,
    'day_reset_ms', case when p_rpd is not null
                         then public.google_ai_ms_until(v_midnight + v_day_guard, v_now) end)
    -- What the model's shares keep, for the admitted class (as google_ai_answer_quota_at adds it).
    || case when v_kept is not null then jsonb_build_object('kept', v_kept) else '{}'::jsonb end;
end
$$;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time). Groups cooling down are skipped.
-- Within a priority tier a group whose row another reservation holds is passed over (SKIP LOCKED)
-- so concurrent callers spread across groups; before moving to a lower tier the passed-over groups
-- are tried again, waiting for their locks, so a busy row is never mistaken for a full one.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model.
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, p_client_id uuid, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_candidate record;
  v_tier integer;
  v_first boolean := true;
  v_skipped text[] := '{}';
  v_outcome text;
  v_try record;
  v_wait record;
  v_at timestamptz;
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_budget public.google_ai_caller_budgets;
  v_budget_day date := public.google_ai_pacific_day(p_at);
  v_count_request integer := case when coalesce(p_attempt, 1) = 1 then 1 else 0 end;
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
        select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
          p_reservation_id, p_class, p_caller);
        if v_wait.booked_group is not null then
          booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
          exit booking;
        end if;
        if reopens_at is null or v_wait.reopens_at < reopens_at then
          reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by;
        end if;
        recheck_at := least(recheck_at, v_wait.recheck_at);
        v_skipped := '{}';
      end if;
      v_first := false;
      v_tier := v_candidate.priority;

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
          exit booking;
        end if;
        v_at := v_try.reopens_at;
        recheck_at := least(recheck_at, v_try.recheck_at);
      end if;

      if v_outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
      elsif reopens_at is null or v_at < reopens_at then
        reopens_at := v_at; blocked_by := v_outcome;
      end if;
    end loop;

    if cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
        p_reservation_id, p_class, p_caller);
      if v_wait.booked_group is not null then
        booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
        exit booking;
      elsif reopens_at is null or v_wait.reopens_at < reopens_at then
        reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by;
      end if;
      recheck_at := least(recheck_at, v_wait.recheck_at);
    end if;
  end;

  if booked_group is not null then
    blocked_by := null; reopens_at := null; recheck_at := null;
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
  -- Asking again only helps before the reopening itself.
  if recheck_at >= reopens_at then
    recheck_at := null;
  end if;
end
$$;

-- The implementation takes a new name (google_ai_admit_at): the earlier migrations, applied again,
-- re-create google_ai_reserve_at with its old arguments, and two overloads that differ only in
-- trailing defaults would make their calls ambiguous. google_ai_reserve_at stays, calling it.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_grace interval;
  v_answer jsonb;
  v_limits record;
  v_group text;
  v_minute timestamptz;
  v_day date;
  v_blocked_by text;
  v_reopens_at timestamptz;
  v_recheck_at timestamptz;
  v_retry_ms bigint;
  v_key_id uuid;
  v_key_alias text;
  v_env_var_name text;
  v_reservation_id uuid := gen_random_uuid();
  -- The queue
  v_class text;
  v_rank smallint;
  v_ticket public.google_ai_queue;
  v_turn bigint;
  v_since timestamptz;
  v_queued boolean;
  v_ahead integer := 0;
  v_due_ahead integer := 0;
  v_free_now integer;
  v_turn_at timestamptz;
  v_due_lease timestamptz;
  v_may_book boolean := true;
  v_expected timestamptz;
  v_likely_at timestamptz;
  v_quota jsonb;
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_estimated_tokens is null or p_estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_caller is null or length(p_caller) = 0 or p_model is null or length(p_model) = 0 then
    raise exception 'p_caller and p_model are required' using errcode = '22023';
  end if;

  if p_idempotent and p_request_id is not null and p_attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_caller, p_request_id, v_now);
    if v_answer is not null then
      return v_answer;
    end if;
  end if;

  -- The class: the one asked for, never above the credential's (the client's class, or the top
  -- class for a service caller). One statement: this runs on every request.
  select a.rank, pc.name into v_rank, v_class
  from (select greatest(coalesce((select pc.rank from public.google_ai_priority_classes pc where pc.name = p_priority),
                                 x.allowed), x.allowed) as rank
        from (select coalesce((select pc.rank from public.google_ai_clients c
                               join public.google_ai_priority_classes pc on pc.name = c.priority_class
                               where c.id = p_client_id),
                              (select min(pc.rank) from public.google_ai_priority_classes pc)) as allowed) x) a
  left join public.google_ai_priority_classes pc on pc.rank = a.rank;

  -- The model and its limits (google_ai_request_limits, read in this one statement).
  select l.model,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd,
         case when l.withdrawn_at is not null then 'withdrawn'
              when public.google_ai_effective_limit(l.tpm, l.safety_margin) < p_estimated_tokens
              then 'too_large' end as blocked_by,
         l.withdrawn_at, l.successor
    into v_limits
  -- The row named exactly (its unique index), else the first row with the name as an alias.
  from (select m.* from public.google_ai_model_limits m where m.model = p_model and m.is_active
        union all
        (select m.* from public.google_ai_model_limits m where m.is_active and p_model = any (m.aliases)
         order by m.id limit 1)
        limit 1) l;
  v_blocked_by := case when v_limits.model is null then 'unknown_model' else v_limits.blocked_by end;

  if v_blocked_by is null then
    -- This caller's place: its ticket, or where a ticket taken now would stand.
    if p_queue_ticket is not null then
      select * into v_ticket from public.google_ai_queue q
      where q.ticket_id = p_queue_ticket and q.caller = p_caller and q.model = v_limits.model
        and q.lease_until >= v_now;
    end if;
    v_queued := exists (select 1 from public.google_ai_queue q
                        where q.model = v_limits.model and q.lease_until >= v_now
                          and q.ticket_id is distinct from v_ticket.ticket_id);
    if v_ticket.ticket_id is not null then
      v_rank := v_ticket.class_rank; v_class := v_ticket.priority_class;
      v_since := v_ticket.enqueued_at;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      v_turn := least(v_ticket.turn, 1 + greatest(
        coalesce((select min(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.class_rank = v_rank and q.lease_until >= v_now
                    and q.ticket_id <> v_ticket.ticket_id), 0),
        coalesce((select max(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank
                    and q.lease_until >= v_now and q.ticket_id <> v_ticket.ticket_id and q.turn < v_ticket.turn), 0)));
    elsif v_queued then
      v_turn := 1 + greatest(
        coalesce((select min(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.class_rank = v_rank and q.lease_until >= v_now), 0),
        coalesce((select max(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank
                    and q.lease_until >= v_now), 0));
      v_since := v_now;
    end if;

    if v_queued then
      select count(*), count(*) filter (where q.expected_at <= v_now) into v_ahead, v_due_ahead
      from public.google_ai_queue q
      where q.model = v_limits.model and q.lease_until >= v_now
        and q.ticket_id is distinct from v_ticket.ticket_id
        and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
            < (v_rank, v_turn, v_since, coalesce(v_ticket.ticket_id, v_new_ticket));
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd,
        p_exclude_key_ids, v_now, v_ahead + 1) t;
      -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks.
      -- (No turn today anywhere: book_best_group names the reopening.) A request whose own RPM share
      -- still has room in a group asks too: the share keeps that slot for it, the spread does not
      -- hold it back, and the booking decides exactly.
      v_may_book := v_turn_at is null or v_due_ahead < v_free_now
        or exists (select 1 from public.google_ai_quota_shares s
                   left join public.google_ai_share_usage u on u.share_id = s.id
                   where s.model = v_limits.model and s.reserved_rpm is not null
                     and (s.priority_class = v_class or s.caller = p_caller)
                     and coalesce(u.window_requests, 0) < s.reserved_rpm);
    end if;

    if v_may_book and not v_queued then
      -- Nothing but the limits in the way: the fast booking, with the quota it leaves.
      select f.booked_group, f.minute_bucket, f.day_bucket, f.quota, f.key_id, f.key_alias, f.env_var_name
        into v_group, v_minute, v_day, v_quota, v_key_id, v_key_alias, v_env_var_name
      from public.google_ai_book_fast(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id, p_caller, p_client_id, v_class, v_rank) f;
    end if;
    if v_may_book and v_group is null then
      select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at, b.recheck_at
        into v_group, v_minute, v_day, v_blocked_by, v_reopens_at, v_recheck_at
      from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id,
        v_class, p_caller, p_client_id, p_attempt) b;
    elsif not v_may_book then
      v_blocked_by := case when v_limits.rpm is not null then 'rpm' else 'tpm' end;
    end if;
  end if;

  if v_group is null then
    if v_blocked_by in ('rpm', 'tpm', 'rpd', 'cooldown', 'pace') and coalesce(p_wait_left_ms, 0) > 0 then
      -- In line. Tickets of a model are taken one at a time, so each one's place and time count every
      -- ticket before it (the lock is the model's and lasts until this call commits; nothing under it
      -- waits for a counter row, so a counter row this call may still hold cannot deadlock with it).
      perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || v_limits.model));
      v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
                 * interval '1 millisecond';
      perform public.google_ai_queue_lapse(v_limits.model, v_now);
      if v_ticket.ticket_id is null then
        v_turn := 1 + greatest(
          coalesce((select min(q.turn) from public.google_ai_queue q
                    where q.model = v_limits.model and q.class_rank = v_rank), 0),
          coalesce((select max(q.turn) from public.google_ai_queue q
                    where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank), 0));
        v_since := v_now;
      end if;
      select count(*), min(q.lease_until) filter (where q.expected_at <= v_now) into v_ahead, v_due_lease
      from public.google_ai_queue q
      where q.model = v_limits.model and q.ticket_id is distinct from v_ticket.ticket_id
        and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
            < (v_rank, v_turn, v_since, coalesce(v_ticket.ticket_id, v_new_ticket));
      select t.free_now, t.turn_at, t.likely_at into v_free_now, v_turn_at, v_likely_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd, p_exclude_key_ids, v_now,
        v_ahead + 1, v_rank) t;
      -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls,
      -- the slot is this one's once its ticket lapses. When the next opening lies beyond this
      -- caller's wait, that is its chance: it asks again then (one call more if the waiter did come).
      if v_free_now > 0 and v_due_lease is not null
         and coalesce(v_turn_at > v_now + p_wait_left_ms * interval '1 millisecond', true) then
        v_turn_at := v_due_lease + interval '1 millisecond';
        v_likely_at := v_turn_at;
      end if;
      -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
      -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and
      -- asking again would not either, so it is answered now rather than given a turn.
      if v_may_book and v_reopens_at is null and v_recheck_at is null then
        v_turn_at := null;
        v_likely_at := null;
      end if;
      -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
      v_expected := greatest(v_turn_at, least(v_reopens_at, v_recheck_at), v_now + interval '50 milliseconds');
      if v_turn_at is null and v_reopens_at is null then
        v_expected := null;
      end if;
      -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
      -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
      -- waiter is still told the earliest time (v_expected), so no slot waits for it.
      if v_expected <= v_now + p_wait_left_ms * interval '1 millisecond'
         and greatest(v_expected, v_likely_at) <= v_now + p_wait_left_ms * interval '1 millisecond' then
        insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
          token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
        values (coalesce(v_ticket.ticket_id, v_new_ticket), v_limits.model, v_class, v_rank, p_caller,
          p_client_id, p_token_id, p_request_id, p_model, v_turn, v_since, p_estimated_tokens, v_blocked_by,
          v_expected, v_expected + v_grace, v_ahead + 1)
        on conflict (ticket_id) do update set
          expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
          position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
        returning * into v_ticket;
        return jsonb_build_object(
          'ok', false,
          'limit', v_blocked_by,
          'retry_after_ms', greatest(0, ceil(extract(epoch from (v_expected - v_now)) * 1000))::bigint,
          'retry_at', v_expected,
          'model', v_limits.model,
          'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                      'expected_at', v_expected, 'priority', v_class));
      end if;
    end if;

    -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
    if v_ticket.ticket_id is not null then
      delete from public.google_ai_queue q where q.ticket_id = v_ticket.ticket_id;
    end if;
    if v_blocked_by in ('rpm', 'tpm') then
      -- Behind a queue, capacity for this caller comes with its turn (the likely one, for a lower class).
      v_reopens_at := coalesce(greatest(v_expected, v_likely_at), greatest(v_turn_at, v_reopens_at));
      if v_recheck_at >= v_reopens_at then
        v_recheck_at := null;
      end if;
    end if;
    v_retry_ms := public.google_ai_record_refusal(v_now, p_caller, p_request_id, p_client_id, p_token_id,
      coalesce(v_limits.model, p_model), p_model, p_attempt, p_estimated_tokens,
      v_blocked_by, v_reopens_at, p_wait_ms, p_metadata);
    return jsonb_build_object(
      'ok', false,
      'limit', v_blocked_by,
      'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at,
      'model', v_limits.model,
      'max_tokens', case when v_limits.blocked_by = 'too_large' then v_limits.tpm end,
      'recheck_after_ms', case when v_recheck_at is not null
                               then greatest(0, ceil(extract(epoch from (v_recheck_at - v_now)) * 1000))::bigint end)
      -- A withdrawn model: when Google said so, and the model it names instead (if a row says).
      || case when v_blocked_by = 'withdrawn'
              then jsonb_build_object('withdrawn_at', v_limits.withdrawn_at, 'successor', v_limits.successor)
              else '{}'::jsonb end;
  end if;

  -- (The fast booking looked the key up before it locked the counter row.)
  if v_key_id is null then
    select k.id, k.key_alias, k.env_var_name into v_key_id, v_key_alias, v_env_var_name
    from public.google_ai_serving_key(v_group, v_limits.model, p_exclude_key_ids) k;
    if v_key_id is null then
      raise exception 'the keys of quota group % changed during the reservation; retry', v_group
        using errcode = '40001';
    end if;
  end if;

  if v_ticket.ticket_id is not null then
    delete from public.google_ai_queue q where q.ticket_id = v_ticket.ticket_id;
    -- A request that arrived before the last window says nothing of what its class asks for now: its
    -- admission is left out of what the queue reads as the higher classes' part (likely_at).
    if v_since <= v_now - (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond' then
      update public.google_ai_admissions a set class_rank = null where a.reservation_id = v_reservation_id;
    end if;
  end if;

  if p_idempotent and p_request_id is not null then
    perform public.google_ai_hold_request(p_caller, p_request_id, v_limits.model, v_now);
  end if;

  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class)
  values (v_reservation_id, 'reserved', p_request_id, p_caller, p_client_id, p_token_id, v_limits.model,
    p_model, p_attempt, v_key_id, v_key_alias, v_group, v_minute, v_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'), v_class);

  v_answer := jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key_id,
    'key_alias', v_key_alias,
    'env_var_name', v_env_var_name,
    'quota_group', v_group,
    'model', v_limits.model,
    'minute_bucket', v_minute,
    'day_bucket', v_day,
    'priority', v_class);
  if v_quota is not null then
    v_answer := v_answer || jsonb_build_object('quota', v_quota);
  end if;
  return v_answer;
end
$$;

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the
-- quota groups that may serve the model today: each group offers its free slots now, then one slot
-- as each admission of its window leaves it (admitted_at + window), then the same again a window
-- later; a spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next). free_now counts the slots of each group's first
-- p_slots that are free now. likely_at: the same for a request of class rank p_rank, counting, on a
-- spread model, on the part of each group's slots that the higher classes left in the last window
-- (they will ask again, and go first; at least a tenth): its p_slots-th slot is a group's
-- p_slots / part-th. Null turn_at:
-- no group can serve today (day used up or cooling down everywhere).
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint DEFAULT NULL::smallint, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_spread record;
  v_group record;
  v_expiries timestamptz[];
  v_count integer;
  v_higher integer;
  v_part numeric;
  v_needed integer;
  v_free integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}';
  v_likely timestamptz[] := '{}';
  v_day_left bigint := 0;
  v_n integer;
  v_slot timestamptz;
  v_schedule timestamptz;
begin
  free_now := 0;
  v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, null, 0);
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until
    from public.google_ai_ranked_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    select array_agg(a.admitted_at + v_window order by a.admitted_at),
           count(*) filter (where a.class_rank < p_rank)
      into v_expiries, v_higher
    from public.google_ai_admissions a
    where a.quota_group = v_group.quota_group and a.model = p_model and a.admitted_at > p_now - v_window;
    v_count := coalesce(cardinality(v_expiries), 0);
    v_free := greatest(0, p_rpm - v_count);
    -- The group's openings within one window: free now, then as admissions leave.
    v_openings := array_fill(p_now, array[v_free])
                  || coalesce(v_expiries[greatest(1, v_count - p_rpm + 1):v_count], '{}');
    v_n := cardinality(v_openings);
    continue when v_n = 0;
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when v_spread.step is null then 1
                   else greatest(0.1, 1 - coalesce(v_higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots: each opening again a window later, none before the schedule allows.
    v_schedule := v_group.spread_until;
    v_group_slots := '{}';
    for j in 1 .. v_needed loop
      v_slot := v_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * v_window;
      if v_spread.step is not null then
        v_slot := greatest(v_slot, v_schedule - v_spread.tolerance);
        v_schedule := public.google_ai_spread_next(v_schedule, v_slot, v_spread.step);
      end if;
      v_group_slots := v_group_slots || v_slot;
      if j <= p_slots then
        v_slots := v_slots || v_slot;
        if v_slot <= p_now then
          free_now := free_now + 1;
        end if;
      end if;
    end loop;
    for k in 1 .. p_slots loop
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  if free_now >= p_slots then
    turn_at := p_now;
    likely_at := p_now;
    return;
  end if;
  select array_agg(o order by o) into v_slots from unnest(v_slots) o;
  turn_at := greatest(p_now, v_slots[p_slots]);
  select array_agg(o order by o) into v_likely from unnest(v_likely) o;
  likely_at := case when v_likely[p_slots] is not null then greatest(p_now, v_likely[p_slots]) end;
end
$$;

DROP FUNCTION IF EXISTS public.google_ai_candidate_groups(text, uuid[], integer, integer, integer, timestamp with time zone);
