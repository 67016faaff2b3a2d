-- The reservation's hot path, cheaper per call; what it decides is unchanged.
--
-- PostgreSQL 15 keeps no plan of a SQL-language function between calls: each call that is not
-- inlined parses and plans its body again, and a function that carries a SET clause (here
-- `set search_path = ''`) is never inlined. Measured with track_functions, the reservation spent
-- more time in such helpers than in its own work. So:
--   - pure arithmetic helpers carry no SET clause and the volatility of what they call, so the
--     planner inlines them into the caller's cached plan (their bodies name every object by schema
--     and are only called from functions whose search_path is empty);
--   - helpers that read a table become PL/pgSQL, whose statements are planned once per connection;
--   - the set-returning candidate list carries no SET clause, so it is inlined where it is read.
-- None of them is security definer; the access they had is kept (create or replace keeps grants).
--
-- Signatures and results are those of the files that created them (re-applying those files brings
-- back the older bodies; this file, applied after them, brings back these).

-- Inlined arithmetic ------------------------------------------------------------------------------
-- date_trunc with a time zone is STABLE, so the minute is too (an IMMUTABLE declaration over it kept
-- the planner from inlining it).
create or replace function public.google_ai_minute_window(p_at timestamptz)
returns timestamptz language sql stable parallel safe
as $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

create or replace function public.google_ai_pacific_day(p_at timestamptz)
returns date language sql immutable parallel safe
as $$ select (p_at at time zone 'America/Los_Angeles')::pg_catalog.date $$;

create or replace function public.google_ai_pacific_midnight_after(p_at timestamptz)
returns timestamptz language sql immutable parallel safe
as $$ select (((p_at at time zone 'America/Los_Angeles')::pg_catalog.date operator(pg_catalog.+) 1)::pg_catalog.timestamp
              at time zone 'America/Los_Angeles') $$;

create or replace function public.google_ai_effective_limit(p_limit integer, p_margin numeric)
returns integer language sql immutable parallel safe
as $$ select case when p_limit is null then null
                  when p_limit operator(pg_catalog.<=) 0 then 0
                  else greatest(1, pg_catalog.floor(p_limit operator(pg_catalog.*)
                         (1 operator(pg_catalog.-) coalesce(p_margin, 0))))::integer end $$;

create or replace function public.google_ai_ms_until(p_at timestamptz, p_now timestamptz)
returns bigint language sql immutable parallel safe
as $$ select greatest(0, pg_catalog.ceil(extract(epoch from (p_at operator(pg_catalog.-) p_now))
                                          operator(pg_catalog.*) 1000))::bigint $$;

create or replace function public.google_ai_budget_left(p_max bigint, p_used bigint)
returns bigint language sql immutable parallel safe
as $$ select case when p_max is not null
                  then greatest(0, p_max operator(pg_catalog.-) coalesce(p_used, 0)) end $$;

-- Look-ups, planned once per connection --------------------------------------------------------
create or replace function public.google_ai_admission_guard()
returns public.google_ai_admission_settings
language plpgsql stable set search_path = ''
as $$
declare
  v_settings public.google_ai_admission_settings;
begin
  select s.* into v_settings from public.google_ai_admission_settings s where s.id;
  if not found then
    v_settings := row(true, 1000, 5000, 2000, now())::public.google_ai_admission_settings;
  end if;
  return v_settings;
end
$$;

create or replace function public.google_ai_resolve_model(p_model text)
returns public.google_ai_model_limits
language plpgsql stable set search_path = ''
as $$
declare
  v_row public.google_ai_model_limits;
begin
  select l.* into v_row from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1;
  return v_row;
end
$$;

create or replace function public.google_ai_model_by_name(p_model text)
returns public.google_ai_model_limits
language plpgsql stable set search_path = ''
as $$
declare
  v_row public.google_ai_model_limits;
begin
  select l.* into v_row from public.google_ai_model_limits l
  where l.model = p_model or p_model = any (l.aliases)
  order by l.is_active desc, (l.model = p_model) desc, l.id
  limit 1;
  return v_row;
end
$$;

create or replace function public.google_ai_class_rank(p_class text)
returns smallint
language plpgsql stable set search_path = ''
as $$
begin
  return (select c.rank from public.google_ai_priority_classes c where c.name = p_class);
end
$$;

create or replace function public.google_ai_serving_key(p_quota_group text, p_model text, p_exclude_key_ids uuid[],
  out id uuid, out key_alias text, out env_var_name text)
language plpgsql stable set search_path = ''
as $$
begin
  select k.id, k.key_alias, k.env_var_name into id, key_alias, env_var_name
  from public.google_ai_api_keys k
  where k.is_active
    and public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
    and (k.models is null or p_model = any (k.models))
    and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
  order by k.priority nulls last, k.key_alias
  limit 1;
end
$$;

-- Inlined where it is read ------------------------------------------------------------------------
-- The groups that may serve a model, ranked, as in 20261122000400_reservation.sql.
create or replace function public.google_ai_candidate_groups(
  p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamptz)
returns table (quota_group text, priority integer, cooldown_until timestamptz,
               rpm_used integer, tpm_used integer, rpd_used integer, rank bigint)
language sql stable
as $$
  with keys as (
    select distinct on (public.google_ai_quota_group(k.project_id, k.id))
           public.google_ai_quota_group(k.project_id, k.id) as quota_group,
           k.priority
    from public.google_ai_api_keys k
    where k.is_active
      and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
      and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
    order by public.google_ai_quota_group(k.project_id, k.id), k.priority nulls last
  ), usage as (
    select g.quota_group, g.priority, cd.cooldown_until,
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
                    u.quota_group)
  from usage u
$$;

-- The quota an answer carries, as in 20261122050000_quota_visibility.sql: the oldest admission of
-- the window is read as the first index entry, never by aggregating the window (at a few thousand
-- admissions a minute that aggregate cost more than the whole reservation).
create or replace function public.google_ai_group_quota(
  p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamptz,
  out requests_left integer, out requests_reset_at timestamptz,
  out tokens_left bigint, out tokens_reset_at timestamptz,
  out day_left integer, out day_reset_at timestamptz,
  out cooldown_until timestamptz, out ready_at timestamptz)
language plpgsql stable set search_path = ''
as $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_requests integer;
  v_tokens bigint;
  v_gone_requests integer;
  v_gone_tokens bigint;
  v_oldest timestamptz;
  v_oldest_tokens timestamptz;
  v_row public.google_ai_usage_counters;
  v_day date := public.google_ai_pacific_day(p_now);
  v_midnight timestamptz := public.google_ai_pacific_midnight_after(p_now);
  v_day_start timestamptz;
  v_used integer := 0;
  v_next integer := 0;
  v_prev integer := 0;
  v_near_end boolean;
  v_near_start boolean;
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = p_model;

  -- The minute, counted as google_ai_try_book counts it: the window's sums on the counter row, less
  -- the admissions that have left the window since (none, right after a booking: it removed them);
  -- without sums on the row (new, or removed by housekeeping), the admissions themselves.
  if p_rpm is not null or p_tpm is not null then
    if v_row.window_at is not null then
      select count(*), coalesce(sum(a.tokens), 0) into v_gone_requests, v_gone_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at <= p_now - v_window;
      v_requests := greatest(0, v_row.window_requests - v_gone_requests);
      v_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);
    else
      select count(*), coalesce(sum(a.tokens), 0) into v_requests, v_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - v_window;
    end if;
    -- The oldest admissions still in the window: the next to leave it (index look-ups).
    -- (Written as a top-1 read: a generic plan of min() may aggregate the whole window instead.)
    select a.admitted_at into v_oldest
    from public.google_ai_admissions a
    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - v_window
    order by a.admitted_at
    limit 1;
    if p_tpm is not null then
      select a.admitted_at into v_oldest_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - v_window and a.tokens > 0
      order by a.admitted_at
      limit 1;
    end if;
    if p_rpm is not null then
      requests_left := greatest(0, p_rpm - v_requests);
      requests_reset_at := coalesce(v_oldest + v_window, p_now);
    end if;
    if p_tpm is not null then
      tokens_left := greatest(0, p_tpm - v_tokens);
      tokens_reset_at := coalesce(v_oldest_tokens + v_window, p_now);
    end if;
  end if;

  -- The day, read as google_ai_try_book reads it: a row of yesterday carries today's guard count,
  -- and within the guard of a midnight the other day's count binds too.
  if p_rpd is not null then
    if v_row.day_bucket = v_day then
      v_used := v_row.rpd_used; v_next := v_row.rpd_next_used; v_prev := v_row.rpd_prev_used;
    elsif v_row.day_bucket = v_day - 1 then
      v_used := v_row.rpd_next_used; v_prev := coalesce(v_row.rpd_used, 0);
    end if;
    v_day_start := (v_day::timestamp at time zone 'America/Los_Angeles');
    v_near_end := p_now >= v_midnight - v_day_guard;
    v_near_start := p_now < v_day_start + v_day_guard;
    day_left := greatest(0, p_rpd - greatest(coalesce(v_used, 0),
                                             case when v_near_end then coalesce(v_next, 0) else 0 end,
                                             case when v_near_start then coalesce(v_prev, 0) else 0 end));
    day_reset_at := case when v_near_start and coalesce(v_prev, 0) > coalesce(v_used, 0)
                         then v_day_start + v_day_guard
                         else v_midnight + v_day_guard end;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_midnight then
      day_left := 0; -- Google's per-day refusal: the cooldown lasts until the Pacific midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$$;

-- The RPCs llm-invoke calls, as in the files that created them, in PL/pgSQL: a SQL-language
-- function with a SET clause parses and plans its one statement on every call.
create or replace function public.google_ai_reserve(
  p_model text,
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return public.google_ai_admit_at(null, p_model, p_estimated_tokens, p_caller, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, null, null, p_idempotent,
    p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

create or replace function public.google_ai_reserve_with_token(
  p_token_hash text,
  p_model text,
  p_estimated_tokens integer,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return public.google_ai_admit_with_token_at(null, p_token_hash, p_model, p_estimated_tokens, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

create or replace function public.google_ai_reserve_chain(
  p_models text[],
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, p_caller, null, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

create or replace function public.google_ai_reserve_chain_with_token(
  p_token_hash text,
  p_models text[],
  p_estimated_tokens integer,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, null, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

create or replace function public.google_ai_answer_quota(
  p_answer jsonb, p_model text, p_exclude_key_ids uuid[] default '{}')
returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return public.google_ai_answer_quota_at(null, p_answer, p_model, p_exclude_key_ids);
end
$$;

-- The fast booking ------------------------------------------------------------------------------
-- Most admissions meet nothing but the limits: nobody is queued for the model, no share of it is
-- kept for anyone, the caller has no daily budget, the best group is not cooling down, its counter
-- row is of today and of a settled window, and Pacific midnight is not within the day guard. For
-- them this books on the best candidate group in a few statements, under the same counter-row lock
-- and with the same arithmetic as google_ai_try_book (20261122030000_reserved_shares.sql), and
-- answers with the quota the booking leaves, so the answer needs no second reading of the window.
-- Whenever anything else could matter it books nothing and returns no group: the general booking
-- (google_ai_book_best_group) decides, as it always did.
--
-- Exactness does not depend on the unlocked look (it only chooses the path): the decision is taken
-- on the counter row locked here. A row another transaction holds is left to the general path,
-- which would skip it too. If the locked look finds the window full after all, the expired
-- admissions it removed are taken off the row's sums (as the general try would) before it leaves.
create or replace function public.google_ai_book_fast(
  p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[],
  p_now timestamptz, p_at timestamptz, p_reservation_id uuid, p_caller text, p_client_id uuid,
  out booked_group text, out minute_bucket timestamptz, out day_bucket date, out quota jsonb)
language plpgsql set search_path = ''
as $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_group text;
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
begin
  if exists (select 1 from public.google_ai_quota_shares s where s.model = p_model)
     or (p_client_id is null and exists (select 1 from public.google_ai_caller_budgets b where b.caller = p_caller)) then
    return;
  end if;

  -- The group the general booking would try first, and an unlocked look at its row.
  select c.quota_group into v_group
  from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
  where c.cooldown_until is null
    and c.rank = 1;
  if v_group is null then
    return;
  end if;
  select * into v_row from public.google_ai_usage_counters c where c.quota_group = v_group and c.model = p_model;
  if not found or v_row.window_at is null
     or not public.google_ai_fast_fits(v_row, v_row.window_requests, v_row.window_tokens, p_rpm, p_tpm, p_rpd,
                                       p_tokens, greatest(p_at, v_row.window_at), v_day_guard) then
    return;
  end if;

  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = v_group and c.model = p_model
  for update skip locked;
  if not found then
    return;
  end if;

  v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
  v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
  v_day := public.google_ai_pacific_day(v_now);
  v_midnight := public.google_ai_pacific_midnight_after(v_now);

  -- The admissions that left the window since the last booking: those before it (window_at) are
  -- gone already, so the index is read from there, not through every removed entry before it. (Were
  -- the guard shortened since, a few older rows would stay counted until the general booking, which
  -- reads from the start, removes them: fewer admissions meanwhile, never more.)
  with gone as (
    delete from public.google_ai_admissions a
    where a.quota_group = v_group and a.model = p_model
      and a.admitted_at > v_row.window_at - v_window and a.admitted_at <= v_now - v_window
    returning a.tokens, a.share_ids),
  owners_back as (
    update public.google_ai_share_usage u set window_requests = greatest(0, u.window_requests - b.n)
    from (select s.id, count(*)::integer as n from gone g cross join unnest(g.share_ids) as s(id) group by s.id) b
    where u.quota_group = v_group and u.share_id = b.id)
  select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
  v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
  v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);

  if v_row.window_at is null
     or not public.google_ai_fast_fits(v_row, v_win_requests, v_win_tokens, p_rpm, p_tpm, p_rpd, p_tokens, v_now,
                                       v_day_guard) then
    update public.google_ai_usage_counters c set window_requests = v_win_requests, window_tokens = v_win_tokens
    where c.id = v_row.id;
    return;
  end if;

  insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard, share_ids)
  values (p_reservation_id, v_group, p_model, v_now, p_tokens, 0, null);

  update public.google_ai_usage_counters c set
    minute_bucket   = v_minute,
    day_bucket      = v_day,
    rpm_used        = case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end + 1,
    tpm_used        = case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end + p_tokens,
    rpd_used        = v_row.rpd_used + 1,
    window_requests = v_win_requests + 1,
    window_tokens   = v_win_tokens + p_tokens,
    window_at       = v_now,
    updated_at      = v_now
  where c.id = v_row.id;

  booked_group := v_group;
  minute_bucket := v_minute;
  day_bucket := v_day;

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
                         then public.google_ai_ms_until(v_midnight + v_day_guard, v_now) end);
end
$$;

-- Whether one more request of p_tokens fits a counter row of today, away from the day guard, with
-- the window's sums given: the checks of google_ai_try_book when no share or pacing applies.
create or replace function public.google_ai_fast_fits(
  p_row public.google_ai_usage_counters, p_win_requests integer, p_win_tokens bigint,
  p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamptz, p_day_guard interval)
returns boolean
language sql stable parallel safe
as $$
  select p_row.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
     and p_now operator(pg_catalog.<) (public.google_ai_pacific_midnight_after(p_now) operator(pg_catalog.-) p_day_guard)
     and p_now operator(pg_catalog.>=) (((public.google_ai_pacific_day(p_now))::pg_catalog.timestamp
                                         at time zone 'America/Los_Angeles') operator(pg_catalog.+) p_day_guard)
     and (p_rpd is null or (p_row.rpd_used operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpd)
     and (p_rpm is null or (p_win_requests operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpm)
     and (p_tpm is null or (p_win_tokens operator(pg_catalog.+) p_tokens) operator(pg_catalog.<=) p_tpm)
$$;

-- The queue-aware reservation, as in 20261122035000_fair_queue.sql, trying the fast booking first
-- when nobody is queued for the model; an admission it makes carries its quota ('quota', the shape
-- of google_ai_answer_quota, which llm-invoke then need not call).
create or replace function public.google_ai_admit_at(
  p_now timestamptz,
  p_model text,
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_client_id uuid default null,
  p_token_id uuid default null,
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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
  v_key record;
  v_reservation_id uuid := gen_random_uuid();
  -- The queue
  v_class text;
  v_rank smallint;
  v_allowed_rank smallint;
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
  v_quota jsonb;
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

  -- The class: the one asked for, never above the credential's.
  v_allowed_rank := coalesce((select pc.rank from public.google_ai_clients c
                              join public.google_ai_priority_classes pc on pc.name = c.priority_class
                              where c.id = p_client_id),
                             (select min(pc.rank) from public.google_ai_priority_classes pc));
  v_rank := v_allowed_rank;
  if p_priority is not null then
    v_rank := greatest(coalesce((select pc.rank from public.google_ai_priority_classes pc where pc.name = p_priority),
                                v_allowed_rank), v_allowed_rank);
  end if;
  select pc.name into v_class from public.google_ai_priority_classes pc where pc.rank = v_rank;

  -- The model and its limits (google_ai_request_limits, read in this one statement).
  select l.model,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd,
         case when public.google_ai_effective_limit(l.tpm, l.safety_margin) < p_estimated_tokens
              then 'too_large' end as blocked_by
    into v_limits
  from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1;
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
      v_turn := v_ticket.turn; v_since := v_ticket.enqueued_at;
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
        and (q.class_rank, q.turn, q.enqueued_at) < (v_rank, v_turn, v_since);
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd,
        p_exclude_key_ids, v_now, v_ahead + 1) t;
      -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks.
      -- (No turn today anywhere: book_best_group names the reopening.)
      v_may_book := v_turn_at is null or v_due_ahead < v_free_now;
    end if;

    if v_may_book and not v_queued then
      -- Nothing but the limits in the way: the fast booking, with the quota it leaves.
      select f.booked_group, f.minute_bucket, f.day_bucket, f.quota into v_group, v_minute, v_day, v_quota
      from public.google_ai_book_fast(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id, p_caller, p_client_id) f;
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
        and (q.class_rank, q.turn, q.enqueued_at) < (v_rank, v_turn, v_since);
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd, p_exclude_key_ids, v_now,
        v_ahead + 1) t;
      -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls,
      -- the slot is this one's once its ticket lapses. When the next opening lies beyond this
      -- caller's wait, that is its chance: it asks again then (one call more if the waiter did come).
      if v_free_now > 0 and v_due_lease is not null
         and coalesce(v_turn_at > v_now + p_wait_left_ms * interval '1 millisecond', true) then
        v_turn_at := v_due_lease + interval '1 millisecond';
      end if;
      -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
      -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and
      -- asking again would not either, so it is answered now rather than given a turn.
      if v_may_book and v_reopens_at is null and v_recheck_at is null then
        v_turn_at := null;
      end if;
      -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
      v_expected := greatest(v_turn_at, least(v_reopens_at, v_recheck_at), v_now + interval '50 milliseconds');
      if v_turn_at is null and v_reopens_at is null then
        v_expected := null;
      end if;
      if v_expected <= v_now + p_wait_left_ms * interval '1 millisecond' then
        insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
          token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
        values (coalesce(v_ticket.ticket_id, gen_random_uuid()), v_limits.model, v_class, v_rank, p_caller,
          p_client_id, p_token_id, p_request_id, p_model, v_turn, v_since, p_estimated_tokens, v_blocked_by,
          v_expected, v_expected + v_grace, v_ahead + 1)
        on conflict (ticket_id) do update set
          expected_at = excluded.expected_at, lease_until = excluded.lease_until,
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
      -- Behind a queue, capacity for this caller comes with its turn.
      v_reopens_at := coalesce(v_expected, greatest(v_turn_at, v_reopens_at));
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
                               then greatest(0, ceil(extract(epoch from (v_recheck_at - v_now)) * 1000))::bigint end);
  end if;

  select * into v_key from public.google_ai_serving_key(v_group, v_limits.model, p_exclude_key_ids);
  if v_key.id is null then
    raise exception 'the keys of quota group % changed during the reservation; retry', v_group
      using errcode = '40001';
  end if;

  if v_ticket.ticket_id is not null then
    delete from public.google_ai_queue q where q.ticket_id = v_ticket.ticket_id;
  end if;

  if p_idempotent and p_request_id is not null then
    perform public.google_ai_hold_request(p_caller, p_request_id, v_limits.model, v_now);
  end if;

  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class)
  values (v_reservation_id, 'reserved', p_request_id, p_caller, p_client_id, p_token_id, v_limits.model,
    p_model, p_attempt, v_key.id, v_key.key_alias, v_group, v_minute, v_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'), v_class);

  v_answer := jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key.id,
    'key_alias', v_key.key_alias,
    'env_var_name', v_key.env_var_name,
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
-- Access (as in the access file): the new steps are the owner's, called only by the reservation.
revoke all on function
  public.google_ai_book_fast(text, integer, integer, integer, integer, uuid[], timestamptz, timestamptz, uuid, text, uuid),
  public.google_ai_fast_fits(public.google_ai_usage_counters, integer, bigint, integer, integer, integer, integer,
                             timestamptz, interval)
from public, anon, authenticated, service_role;
