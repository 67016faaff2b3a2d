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
