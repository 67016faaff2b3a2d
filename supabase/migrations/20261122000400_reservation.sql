-- The reservation RPC and its companions. Each is one call, one round trip, one transaction.
--
-- Why it cannot over-admit: a booking happens only while the transaction holds the row lock of the
-- (quota group, model) counter row, and the check reads that locked row, so no two bookings ever
-- see the same "used" value. Why it cannot deadlock: a transaction waits for a counter row lock
-- only while it holds no other counter row lock (a try on a row that turns out full is rolled back
-- in a subtransaction, which releases its lock). Other rows are always locked in one global order:
-- attempt row -> token row -> client row -> counter row. Reserve takes (token, client,) counter and
-- only inserts its attempt row; finalize and release start from the attempt row. Nobody waits for an
-- earlier row in that order while holding a later one, so no cycle forms.
--
-- google_ai_reserve_at is the whole reservation, one call; the functions before it are its steps:
-- try_book (lock and check one counter row), book_waiting, idempotent_answer and hold_request,
-- request_limits, candidate_groups, book_best_group, serving_key and record_refusal.

-- Booking on a counter row -----------------------------------------------------------------------

-- One try at booking a request on a quota group's counter row. Returns 'booked', 'skipped' (row
-- locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd', 'rpm', 'tpm'.
-- The subtransaction (begin ... exception) gives the row lock back when the row is full, so the
-- caller can move on to the next group without holding it.
create or replace function public.google_ai_try_book(
  p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz, p_skip_locked boolean,
  out outcome text, out minute_bucket timestamptz, out day_bucket date)
language plpgsql set search_path = ''
as $$
declare
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_rpm_used integer;
  v_tpm_used integer;
  v_rpd_used integer;
begin
  begin
    for i in 1 .. 2 loop
      if p_skip_locked then
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update skip locked;
      else
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update;
      end if;
      exit when found;
      -- Not found: locked by someone else (SKIP LOCKED), or missing (first use of the group, or
      -- removed by housekeeping). A missing row is created and locked on the second pass.
      if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                   where c.quota_group = p_quota_group and c.model = p_model) then
        outcome := 'skipped';
        return;
      end if;
      insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
      values (p_quota_group, p_model, 0, 0, 0)
      on conflict (quota_group, model) where quota_group is not null do nothing;
    end loop;
    if v_row.id is null then
      raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
    end if;

    -- Decide with the time at which we hold the lock, and never move a window backwards.
    v_now := coalesce(p_now, pg_catalog.clock_timestamp());
    v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_rpm_used := case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end;
    v_tpm_used := case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end;
    v_rpd_used := case when v_row.day_bucket = v_day then v_row.rpd_used else 0 end;

    outcome := case
      when p_rpd is not null and v_rpd_used + 1 > p_rpd then 'rpd'
      when p_rpm is not null and v_rpm_used + 1 > p_rpm then 'rpm'
      when p_tpm is not null and v_tpm_used + p_tokens > p_tpm then 'tpm'
      else 'booked' end;
    minute_bucket := v_minute;
    day_bucket := v_day;

    if outcome <> 'booked' then
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket = v_minute,
      day_bucket    = v_day,
      rpm_used      = v_rpm_used + 1,
      tpm_used      = v_tpm_used + p_tokens,
      rpd_used      = v_rpd_used + 1,
      updated_at    = v_now
    where c.id = v_row.id;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, minute_bucket and day_bucket keep the values set above
  end;
end
$$;

-- When a window that blocked a request opens again: the next minute, or Pacific midnight for the day.
create or replace function public.google_ai_reopens_at(p_limit text, p_now timestamptz)
returns timestamptz language sql immutable parallel safe set search_path = ''
as $$
  select case when p_limit = 'rpd' then public.google_ai_pacific_midnight_after(p_now)
              else public.google_ai_minute_window(p_now) + interval '1 minute' end
$$;

-- Books on the first of p_groups that fits, waiting for each row lock in turn (holding no other
-- counter lock while it waits). Reports the earliest reopening among the full ones.
create or replace function public.google_ai_book_waiting(
  p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz,
  out booked_group text, out minute_bucket timestamptz, out day_bucket date,
  out blocked_by text, out reopens_at timestamptz)
language plpgsql set search_path = ''
as $$
declare
  v_group text;
  v_try record;
  v_at timestamptz;
begin
  foreach v_group in array p_groups loop
    select * into v_try from public.google_ai_try_book(v_group, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now, false);
    if v_try.outcome = 'booked' then
      booked_group := v_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
      return;
    end if;
    v_at := public.google_ai_reopens_at(v_try.outcome, coalesce(p_now, pg_catalog.clock_timestamp()));
    if reopens_at is null or v_at < reopens_at then
      reopens_at := v_at; blocked_by := v_try.outcome;
    end if;
  end loop;
end
$$;

-- Idempotency ------------------------------------------------------------------------------------
-- For a request the caller named with its own request_id: the answer to give instead of reserving,
-- or null to go on. A request id this caller completed within 24 hours is answered from the stored
-- response; one whose earlier call still holds its lease (in flight, or between attempts) is refused
-- as in_progress. The advisory lock serialises concurrent duplicates until the first one's marker
-- (google_ai_hold_request, in the same transaction) is committed.
create or replace function public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_prior public.google_ai_responses;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return jsonb_build_object('ok', false, 'limit', 'duplicate', 'response', v_prior.response,
      'retry_after_ms', null, 'retry_at', null);
  elsif v_prior.status = 'in_progress' and v_prior.expires_at > p_now then
    return jsonb_build_object('ok', false, 'limit', 'in_progress',
      'retry_after_ms', greatest(1000, ceil(extract(epoch from (v_prior.expires_at - p_now)) * 1000))::bigint,
      'retry_at', v_prior.expires_at);
  end if;
  return null;
end
$$;

-- The request's idempotency marker: in flight until finalize stores the answer, with a lease a
-- little longer than an Edge Function's wall clock, so a crashed caller cannot block its id.
create or replace function public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamptz)
returns void
language sql set search_path = ''
as $$
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, p_now + interval '7 minutes')
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at
$$;

-- Choosing a quota group -------------------------------------------------------------------------
-- The model a request names and the limits it is held to (after the safety margin). blocked_by says
-- why no group can take it at all: unknown_model, or too_large (more tokens than a minute allows).
create or replace function public.google_ai_request_limits(p_model text, p_estimated_tokens integer,
  out model text, out rpm integer, out tpm integer, out rpd integer, out blocked_by text)
language plpgsql stable set search_path = ''
as $$
declare
  v_model public.google_ai_model_limits := public.google_ai_resolve_model(p_model);
begin
  if v_model.id is null then
    blocked_by := 'unknown_model';
    return;
  end if;
  model := v_model.model;
  rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  tpm := public.google_ai_effective_limit(v_model.tpm, v_model.safety_margin);
  rpd := public.google_ai_effective_limit(v_model.rpd, v_model.safety_margin);
  if tpm is not null and p_estimated_tokens > tpm then
    blocked_by := 'too_large';
  end if;
end
$$;

-- The quota groups that may serve p_model (through an active key the caller did not exclude), one
-- row each: the priority of its best key, the cooldown in force at p_now and what it used in the
-- current minute and Pacific day (an unlocked read), ranked in the order the reservation tries
-- them: priority (lower first), then headroom (the smallest remaining fraction of RPM, TPM and
-- RPD, largest first), then name.
create or replace function public.google_ai_candidate_groups(
  p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamptz)
returns table (quota_group text, priority integer, cooldown_until timestamptz,
               rpm_used integer, tpm_used integer, rpd_used integer, rank bigint)
language sql stable set search_path = ''
as $$
  with keys as (
    select distinct on (public.google_ai_quota_group(k.project_id, k.id))
           public.google_ai_quota_group(k.project_id, k.id) as quota_group,
           k.priority
    from public.google_ai_api_keys k
    where k.is_active
      and (k.models is null or p_model = any (k.models))
      and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
    order by public.google_ai_quota_group(k.project_id, k.id), k.priority nulls last
  ), usage as (
    select g.quota_group, g.priority, cd.cooldown_until,
           case when c.minute_bucket = public.google_ai_minute_window(p_now) then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket = public.google_ai_minute_window(p_now) then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket = public.google_ai_pacific_day(p_now) then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_usage_counters c
      on c.quota_group = g.quota_group and c.model = p_model
    left join public.google_ai_cooldowns cd
      on cd.quota_group = g.quota_group and cd.model = p_model and cd.cooldown_until > p_now
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         row_number() over (
           order by u.priority nulls last,
                    least(coalesce(1 - u.rpm_used::numeric / nullif(p_rpm, 0), 1),
                          coalesce(1 - u.tpm_used::numeric / nullif(p_tpm, 0), 1),
                          coalesce(1 - u.rpd_used::numeric / nullif(p_rpd, 0), 1)) desc,
                    u.quota_group)
  from usage u
$$;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time). Groups cooling down are skipped.
-- Within a priority tier a group whose row another reservation holds is passed over (SKIP LOCKED)
-- so concurrent callers spread across groups; before moving to a lower tier the passed-over groups
-- are tried again, waiting for their locks, so a busy row is never mistaken for a full one.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model.
create or replace function public.google_ai_book_best_group(
  p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[],
  p_now timestamptz, p_at timestamptz,
  out booked_group text, out minute_bucket timestamptz, out day_bucket date,
  out blocked_by text, out reopens_at timestamptz)
language plpgsql set search_path = ''
as $$
declare
  v_candidate record;
  v_tier integer;
  v_first boolean := true;
  v_skipped text[] := '{}';
  v_outcome text;
  v_try record;
  v_wait record;
  v_at timestamptz;
begin
  for v_candidate in
    select * from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
    order by c.rank
  loop
    -- Leaving a priority tier: wait for the groups of that tier that were only busy.
    if not v_first and v_candidate.priority is distinct from v_tier and cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now);
      if v_wait.booked_group is not null then
        booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
        return;
      end if;
      if reopens_at is null or v_wait.reopens_at < reopens_at then
        reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by;
      end if;
      v_skipped := '{}';
    end if;
    v_first := false;
    v_tier := v_candidate.priority;

    if v_candidate.cooldown_until is not null then
      v_outcome := 'cooldown';
      v_at := v_candidate.cooldown_until;
    -- Pre-check on the unlocked read, to pass over a full group without taking its lock. Usage
    -- mostly grows within a window; only a concurrent release or a finalize below the estimate
    -- lowers it, so this can rarely refuse a request that would just have fitted (never admit
    -- one that does not: admission is decided under the lock).
    elsif p_rpd is not null and v_candidate.rpd_used + 1 > p_rpd then
      v_outcome := 'rpd';
    elsif p_rpm is not null and v_candidate.rpm_used + 1 > p_rpm then
      v_outcome := 'rpm';
    elsif p_tpm is not null and v_candidate.tpm_used + p_tokens > p_tpm then
      v_outcome := 'tpm';
    else
      select * into v_try from public.google_ai_try_book(v_candidate.quota_group, p_model,
        p_rpm, p_tpm, p_rpd, p_tokens, p_now, true);
      v_outcome := v_try.outcome;
      if v_outcome = 'booked' then
        booked_group := v_candidate.quota_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
        return;
      end if;
    end if;

    if v_outcome = 'skipped' then
      v_skipped := v_skipped || v_candidate.quota_group;
    else
      if v_outcome <> 'cooldown' then
        v_at := public.google_ai_reopens_at(v_outcome, p_at);
      end if;
      if reopens_at is null or v_at < reopens_at then
        reopens_at := v_at; blocked_by := v_outcome;
      end if;
    end if;
  end loop;

  -- The last tier's busy groups.
  if cardinality(v_skipped) > 0 then
    select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now);
    if v_wait.booked_group is not null then
      booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
      return;
    elsif reopens_at is null or v_wait.reopens_at < reopens_at then
      reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by;
    end if;
  end if;

  if v_first then
    blocked_by := 'no_active_key';
  end if;
end
$$;

-- The key that serves a booked group: the group's best active key for the model that the caller
-- did not exclude (all nulls when there is none).
create or replace function public.google_ai_serving_key(p_quota_group text, p_model text, p_exclude_key_ids uuid[],
  out id uuid, out key_alias text, out env_var_name text)
language sql stable set search_path = ''
as $$
  select k.id, k.key_alias, k.env_var_name
  from public.google_ai_api_keys k
  where k.is_active
    and public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
    and (k.models is null or p_model = any (k.models))
    and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
  order by k.priority nulls last, k.key_alias
  limit 1
$$;

-- A refusal in the attempt log; returns the milliseconds until p_retry_at (null: none known). One
-- refused row per request and attempt, not one per poll: a WAIT caller asking again (it has waited,
-- so p_wait_ms > 0) updates the row its first refusal wrote during this wait.
create or replace function public.google_ai_record_refusal(
  p_now timestamptz, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid,
  p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer,
  p_limit text, p_retry_at timestamptz, p_wait_ms integer, p_metadata jsonb)
returns bigint
language plpgsql set search_path = ''
as $$
declare
  v_retry_ms bigint := case when p_retry_at is null then null
                            else greatest(0, ceil(extract(epoch from (p_retry_at - p_now)) * 1000))::bigint end;
begin
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  if coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, p_model, p_requested_model,
      p_attempt, p_estimated_tokens, p_limit, v_retry_ms, p_wait_ms, coalesce(p_metadata, '{}'));
  end if;
  return v_retry_ms;
end
$$;

-- The reservation ----------------------------------------------------------------------------------
-- The reservation RPC with an injectable clock (p_now null: the database clock). Tests cross
-- minute and day boundaries with it; the gateway calls google_ai_reserve below. One call does it
-- all, in one transaction: the idempotency answer, the model's limits, the booking on the best
-- quota group, the serving key, the idempotency marker and the attempt row — or the refusal.
create or replace function public.google_ai_reserve_at(
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
  p_idempotent boolean default false)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_limits record;
  v_group text;
  v_minute timestamptz;
  v_day date;
  v_blocked_by text;
  v_reopens_at timestamptz;
  v_retry_ms bigint;
  v_key record;
  v_reservation_id uuid;
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

  select * into v_limits from public.google_ai_request_limits(p_model, p_estimated_tokens);
  v_blocked_by := v_limits.blocked_by;
  if v_blocked_by is null then
    select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at
      into v_group, v_minute, v_day, v_blocked_by, v_reopens_at
    from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
      p_estimated_tokens, p_exclude_key_ids, p_now, v_now) b;
  end if;

  if v_group is null then
    v_retry_ms := public.google_ai_record_refusal(v_now, p_caller, p_request_id, p_client_id, p_token_id,
      coalesce(v_limits.model, p_model), p_model, p_attempt, p_estimated_tokens,
      v_blocked_by, v_reopens_at, p_wait_ms, p_metadata);
    return jsonb_build_object(
      'ok', false,
      'limit', v_blocked_by,
      'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at,
      'model', v_limits.model,
      'max_tokens', case when v_limits.blocked_by = 'too_large' then v_limits.tpm end);
  end if;

  select * into v_key from public.google_ai_serving_key(v_group, v_limits.model, p_exclude_key_ids);
  if v_key.id is null then
    -- The group's keys were deactivated between the candidate read and now: roll the booking back
    -- with the whole call (the caller sees a retryable error) rather than hand out no key.
    raise exception 'the keys of quota group % changed during the reservation; retry', v_group
      using errcode = '40001';
  end if;

  if p_idempotent and p_request_id is not null then
    perform public.google_ai_hold_request(p_caller, p_request_id, v_limits.model, v_now);
  end if;

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata)
  values ('reserved', p_request_id, p_caller, p_client_id, p_token_id, v_limits.model, p_model,
    p_attempt, v_key.id, v_key.key_alias, v_group, v_minute, v_day,
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'))
  returning reservation_id into v_reservation_id;

  return jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key.id,
    'key_alias', v_key.key_alias,
    'env_var_name', v_key.env_var_name,
    'quota_group', v_group,
    'model', v_limits.model,
    'minute_bucket', v_minute,
    'day_bucket', v_day);
end
$$;

-- The reservation RPC the gateway calls: the database clock, always.
create or replace function public.google_ai_reserve(
  p_model text,
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false)
returns jsonb
language sql security definer set search_path = ''
as $$
  select public.google_ai_reserve_at(null, p_model, p_estimated_tokens, p_caller, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, null, null, p_idempotent)
$$;

-- Reserving with a token -------------------------------------------------------------------------

-- The reservation RPC for token holders: checks the token and books its budget (and its client's
-- daily budget) in the same transaction as the quota booking, all-or-nothing. The token's request
-- budget counts logical requests: it is booked on attempt 1 only (retries of the same request do
-- not count again); its token budget counts every attempt's input tokens.
create or replace function public.google_ai_reserve_with_token_at(
  p_now timestamptz,
  p_token_hash text,
  p_model text,
  p_estimated_tokens integer,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_refusal text;
  v_retry_at timestamptz;
  v_count_request integer := case when coalesce(p_attempt, 1) = 1 then 1 else 0 end;
  v_requests_today integer;
  v_tokens_today integer;
  v_result jsonb;
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash for update;
  if not found then
    return jsonb_build_object('ok', false, 'limit', 'token_invalid', 'retry_after_ms', null);
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  v_model := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_requests_today := case when v_client.day_bucket = v_day then v_client.requests_today else 0 end;
  v_tokens_today := case when v_client.day_bucket = v_day then v_client.tokens_today else 0 end;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_refusal := 'token_revoked';
  elsif v_token.expires_at <= v_now then
    v_refusal := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_refusal := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null and v_token.tokens_used + p_estimated_tokens > v_token.max_tokens) then
    v_refusal := 'token_budget';
  elsif (v_client.daily_max_requests is not null and v_requests_today + v_count_request > v_client.daily_max_requests)
     or (v_client.daily_max_tokens is not null and v_tokens_today + p_estimated_tokens > v_client.daily_max_tokens) then
    v_refusal := 'client_budget';
    v_retry_at := public.google_ai_pacific_midnight_after(v_now);
  end if;

  if v_refusal is not null then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, 'client:' || v_client.name, v_client.id, v_token.id, v_model, p_model,
      coalesce(p_attempt, 1), p_estimated_tokens, v_refusal,
      ceil(extract(epoch from (v_retry_at - v_now)) * 1000)::bigint, p_wait_ms, coalesce(p_metadata, '{}'));
    return jsonb_build_object('ok', false, 'limit', v_refusal,
      'retry_after_ms', ceil(extract(epoch from (v_retry_at - v_now)) * 1000)::bigint, 'retry_at', v_retry_at,
      'client_id', v_client.id, 'token_id', v_token.id);
  end if;

  v_result := public.google_ai_reserve_at(p_now, p_model, p_estimated_tokens, 'client:' || v_client.name,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, v_client.id, v_token.id, p_idempotent);

  if (v_result ->> 'ok')::boolean then
    update public.google_ai_tokens t set
      requests_used = t.requests_used + v_count_request,
      tokens_used = t.tokens_used + p_estimated_tokens,
      last_used_at = v_now
    where t.id = v_token.id;
    update public.google_ai_clients c set
      day_bucket = v_day,
      requests_today = v_requests_today + v_count_request,
      tokens_today = v_tokens_today + p_estimated_tokens
    where c.id = v_client.id;
  end if;
  return v_result || jsonb_build_object('client_id', v_client.id, 'token_id', v_token.id);
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
  p_idempotent boolean default false)
returns jsonb
language sql security definer set search_path = ''
as $$
  select public.google_ai_reserve_with_token_at(null, p_token_hash, p_model, p_estimated_tokens, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent)
$$;
