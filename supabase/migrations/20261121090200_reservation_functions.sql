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

-- Windows --------------------------------------------------------------------------------------
-- Minute windows start at second :00; the day is the calendar day in America/Los_Angeles, so the
-- day window is 23 or 25 hours long on DST change days. Both come from the database clock.
create or replace function public.google_ai_minute_window(p_at timestamptz)
returns timestamptz language sql immutable parallel safe set search_path = ''
as $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

create or replace function public.google_ai_pacific_day(p_at timestamptz)
returns date language sql immutable parallel safe set search_path = ''
as $$ select (p_at at time zone 'America/Los_Angeles')::date $$;

create or replace function public.google_ai_pacific_midnight_after(p_at timestamptz)
returns timestamptz language sql immutable parallel safe set search_path = ''
as $$ select ((public.google_ai_pacific_day(p_at) + 1)::timestamp at time zone 'America/Los_Angeles') $$;

-- A limit after the model's safety margin; null means "no limit", 0 (or less) means "closed".
-- A positive limit never drops below 1, so a margin cannot silently close a model.
create or replace function public.google_ai_effective_limit(p_limit integer, p_margin numeric)
returns integer language sql immutable parallel safe set search_path = ''
as $$ select case when p_limit is null then null
                  when p_limit <= 0 then 0
                  else greatest(1, floor(p_limit * (1 - coalesce(p_margin, 0))))::integer end $$;

-- The model row a caller's name resolves to (by name, else by alias).
create or replace function public.google_ai_resolve_model(p_model text)
returns public.google_ai_model_limits language sql stable set search_path = ''
as $$
  select l.* from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1
$$;

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

-- The reservation RPC with an injectable clock (p_now null: the database clock). Tests cross
-- minute and day boundaries with it; the gateway calls google_ai_reserve below.
--
-- Order of choice: quota groups by the priority of their best key (lower first), then by headroom
-- (the smallest remaining fraction of RPM, TPM and RPD), then by name. Groups cooling down are
-- skipped. Within a priority tier a group whose row is locked by another reservation is passed over
-- (SKIP LOCKED) so concurrent callers spread across groups; before moving to a lower tier the
-- passed-over groups are tried again, waiting for their locks, so a busy row is never mistaken
-- for a full one.
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
  v_minute timestamptz := public.google_ai_minute_window(v_now);
  v_day date := public.google_ai_pacific_day(v_now);
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_tpm integer;
  v_rpd integer;
  v_candidate record;
  v_tier integer;
  v_first boolean := true;
  v_skipped text[] := '{}';
  v_outcome text;
  v_try record;
  v_wait record;
  v_booked_group text;
  v_booked_minute timestamptz;
  v_booked_day date;
  v_blocked_by text;
  v_reopens_at timestamptz;
  v_at timestamptz;
  v_retry_ms bigint;
  v_key record;
  v_reservation_id uuid;
  v_prior public.google_ai_responses;
begin
  if p_estimated_tokens is null or p_estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_caller is null or length(p_caller) = 0 or p_model is null or length(p_model) = 0 then
    raise exception 'p_caller and p_model are required' using errcode = '22023';
  end if;

  -- Idempotency (p_idempotent: the caller named the request with its own request_id). A request id
  -- this caller completed within 24 hours is answered from the stored response; one whose earlier
  -- call still holds its lease (in flight, or between attempts) is refused as in_progress. The
  -- advisory lock serialises concurrent duplicates until the first one's marker is committed below.
  if p_idempotent and p_request_id is not null and p_attempt = 1 then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
    select * into v_prior from public.google_ai_responses r
    where r.caller = p_caller and r.request_id = p_request_id;
    if v_prior.status = 'done' and v_prior.created_at > v_now - interval '24 hours' then
      return jsonb_build_object('ok', false, 'limit', 'duplicate', 'response', v_prior.response,
        'retry_after_ms', null, 'retry_at', null);
    elsif v_prior.status = 'in_progress' and v_prior.expires_at > v_now then
      return jsonb_build_object('ok', false, 'limit', 'in_progress',
        'retry_after_ms', greatest(1000, ceil(extract(epoch from (v_prior.expires_at - v_now)) * 1000))::bigint,
        'retry_at', v_prior.expires_at);
    end if;
  end if;

  v_model := public.google_ai_resolve_model(p_model);
  if v_model.id is null then
    v_blocked_by := 'unknown_model';
  else
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
    v_tpm := public.google_ai_effective_limit(v_model.tpm, v_model.safety_margin);
    v_rpd := public.google_ai_effective_limit(v_model.rpd, v_model.safety_margin);
    if v_tpm is not null and p_estimated_tokens > v_tpm then
      v_blocked_by := 'too_large';
    end if;
  end if;

  if v_blocked_by is null then
    for v_candidate in
      with keys as (
        select distinct on (coalesce(k.project_id, 'key:' || k.id::text))
               coalesce(k.project_id, 'key:' || k.id::text) as quota_group,
               k.priority
        from public.google_ai_api_keys k
        where k.is_active
          and (k.models is null or v_model.model = any (k.models))
          and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
        order by coalesce(k.project_id, 'key:' || k.id::text), k.priority nulls last
      ), usage as (
        select g.quota_group, g.priority, cd.cooldown_until,
               case when c.minute_bucket = v_minute then c.rpm_used else 0 end as rpm_used,
               case when c.minute_bucket = v_minute then c.tpm_used else 0 end as tpm_used,
               case when c.day_bucket = v_day then c.rpd_used else 0 end as rpd_used
        from keys g
        left join public.google_ai_usage_counters c
          on c.quota_group = g.quota_group and c.model = v_model.model
        left join public.google_ai_cooldowns cd
          on cd.quota_group = g.quota_group and cd.model = v_model.model and cd.cooldown_until > v_now
      )
      select u.* from usage u
      order by u.priority nulls last,
               least(coalesce(1 - u.rpm_used::numeric / nullif(v_rpm, 0), 1),
                     coalesce(1 - u.tpm_used::numeric / nullif(v_tpm, 0), 1),
                     coalesce(1 - u.rpd_used::numeric / nullif(v_rpd, 0), 1)) desc,
               u.quota_group
    loop
      -- Leaving a priority tier: wait for the groups of that tier that were only busy.
      if not v_first and v_candidate.priority is distinct from v_tier and cardinality(v_skipped) > 0 then
        select * into v_wait from public.google_ai_book_waiting(v_skipped, v_model.model, v_rpm, v_tpm, v_rpd,
          p_estimated_tokens, p_now);
        if v_wait.booked_group is not null then
          v_booked_group := v_wait.booked_group; v_booked_minute := v_wait.minute_bucket; v_booked_day := v_wait.day_bucket;
          exit;
        end if;
        if v_reopens_at is null or v_wait.reopens_at < v_reopens_at then
          v_reopens_at := v_wait.reopens_at; v_blocked_by := v_wait.blocked_by;
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
      elsif v_rpd is not null and v_candidate.rpd_used + 1 > v_rpd then
        v_outcome := 'rpd';
      elsif v_rpm is not null and v_candidate.rpm_used + 1 > v_rpm then
        v_outcome := 'rpm';
      elsif v_tpm is not null and v_candidate.tpm_used + p_estimated_tokens > v_tpm then
        v_outcome := 'tpm';
      else
        select * into v_try from public.google_ai_try_book(v_candidate.quota_group, v_model.model,
          v_rpm, v_tpm, v_rpd, p_estimated_tokens, p_now, true);
        v_outcome := v_try.outcome;
        if v_outcome = 'booked' then
          v_booked_group := v_candidate.quota_group; v_booked_minute := v_try.minute_bucket; v_booked_day := v_try.day_bucket;
          exit;
        end if;
      end if;

      if v_outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
      else
        if v_outcome <> 'cooldown' then
          v_at := public.google_ai_reopens_at(v_outcome, v_now);
        end if;
        if v_reopens_at is null or v_at < v_reopens_at then
          v_reopens_at := v_at; v_blocked_by := v_outcome;
        end if;
      end if;
    end loop;

    -- The last tier's busy groups.
    if v_booked_group is null and cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, v_model.model, v_rpm, v_tpm, v_rpd,
        p_estimated_tokens, p_now);
      if v_wait.booked_group is not null then
        v_booked_group := v_wait.booked_group; v_booked_minute := v_wait.minute_bucket; v_booked_day := v_wait.day_bucket;
      elsif v_reopens_at is null or v_wait.reopens_at < v_reopens_at then
        v_reopens_at := v_wait.reopens_at; v_blocked_by := v_wait.blocked_by;
      end if;
    end if;

    if v_booked_group is null and v_first then
      v_blocked_by := 'no_active_key';
    end if;
  end if;

  if v_booked_group is null then
    v_retry_ms := case when v_reopens_at is null then null
                       else greatest(0, ceil(extract(epoch from (v_reopens_at - v_now)) * 1000))::bigint end;
    -- One refused row per request and attempt, not one per poll: a WAIT caller asking again (it has
    -- waited, so p_wait_ms > 0) updates the row its first refusal wrote during this wait.
    if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
      update public.google_ai_attempts a set
        limit_hit = v_blocked_by, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
        estimated_tokens = p_estimated_tokens
      where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
        and a.status = 'refused'
        and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
    end if;
    if coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
      insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
        attempt, estimated_tokens, limit_hit, retry_after_ms, wait_ms, metadata)
      values ('refused', p_request_id, p_caller, p_client_id, p_token_id, coalesce(v_model.model, p_model), p_model,
        p_attempt, p_estimated_tokens, v_blocked_by, v_retry_ms, p_wait_ms, coalesce(p_metadata, '{}'));
    end if;
    return jsonb_build_object(
      'ok', false,
      'limit', v_blocked_by,
      'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at,
      'model', v_model.model,
      'max_tokens', case when v_blocked_by = 'too_large' then v_tpm end);
  end if;

  -- The key that serves the booked group: the group's best key the caller did not exclude.
  select k.id, k.key_alias, k.env_var_name into v_key
  from public.google_ai_api_keys k
  where k.is_active
    and coalesce(k.project_id, 'key:' || k.id::text) = v_booked_group
    and (k.models is null or v_model.model = any (k.models))
    and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
  order by k.priority nulls last, k.key_alias
  limit 1;
  if v_key.id is null then
    -- The group's keys were deactivated between the candidate read and now: roll the booking back
    -- with the whole call (the caller sees a retryable error) rather than hand out no key.
    raise exception 'the keys of quota group % changed during the reservation; retry', v_booked_group
      using errcode = '40001';
  end if;

  -- The request's idempotency marker: in flight until finalize stores the answer, with a lease a
  -- little longer than an Edge Function's wall clock, so a crashed caller cannot block its id.
  if p_idempotent and p_request_id is not null then
    insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at)
    values (p_caller, p_request_id, 'in_progress', v_model.model, v_now, v_now + interval '7 minutes')
    on conflict (caller, request_id) do update set
      status = 'in_progress', response = null, model = excluded.model,
      created_at = excluded.created_at, expires_at = excluded.expires_at;
  end if;

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata)
  values ('reserved', p_request_id, p_caller, p_client_id, p_token_id, v_model.model, p_model,
    p_attempt, v_key.id, v_key.key_alias, v_booked_group, v_booked_minute, v_booked_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'))
  returning reservation_id into v_reservation_id;

  return jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key.id,
    'key_alias', v_key.key_alias,
    'env_var_name', v_key.env_var_name,
    'quota_group', v_booked_group,
    'model', v_model.model,
    'minute_bucket', v_booked_minute,
    'day_bucket', v_booked_day);
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

-- Cooldown: a quota group rests for one model until p_until (never shortened by a later call).
create or replace function public.google_ai_cooldown(
  p_quota_group text, p_model text, p_until timestamptz, p_reason text default null, p_quota_id text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_until timestamptz;
begin
  if p_quota_group is null or p_until is null then
    raise exception 'p_quota_group and p_until are required' using errcode = '22023';
  end if;
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id)
  values (p_quota_group, v_model, p_until, left(p_reason, 500), left(p_quota_id, 200))
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = excluded.reason,
    quota_id = excluded.quota_id,
    updated_at = now()
  returning c.cooldown_until into v_until;
  return jsonb_build_object('ok', true, 'quota_group', p_quota_group, 'model', v_model, 'cooldown_until', v_until);
end
$$;

-- Hook for budgets that follow a reservation (Kaggle tokens, see 20261121110000): called by finalize
-- and release with the request and token deltas to apply. A no-op until that migration replaces it.
create or replace function public.google_ai_adjust_token_budget(
  p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer)
returns void language plpgsql set search_path = ''
as $$ begin return; end $$;

-- Finalize: record the outcome of the call to Google and reconcile the booked window's tokens by
-- (actual input tokens - estimate), clamped at 0. Only the minute the reservation was booked in is
-- adjusted: once the row has rolled over, that window is history. A success also lands in
-- token_usage, and its response (when given: the caller sent its own request_id) is kept for replay.
-- Optionally cools the group down (Google's 429) in the same round trip.
create or replace function public.google_ai_finalize(
  p_reservation_id uuid,
  p_outcome text,
  p_input_tokens integer default null,
  p_output_tokens integer default null,
  p_http_status integer default null,
  p_error_code text default null,
  p_quota_id text default null,
  p_error_message text default null,
  p_latency_ms integer default null,
  p_cooldown_until timestamptz default null,
  p_cooldown_until_pacific_midnight boolean default false,
  p_response jsonb default null,
  -- The caller's verdict that Google refused the key itself (the function classifies Google's
  -- reasons: API_KEY_INVALID, API_KEY_EXPIRED, ...). Null: not given, decided here by the code.
  p_key_rejected boolean default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if p_outcome not in ('succeeded', 'google_error', 'network_error', 'timeout') then
    raise exception 'p_outcome must be succeeded, google_error, network_error or timeout' using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = p_outcome,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_input_tokens,
    output_tokens = p_output_tokens,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    quota_id = left(p_quota_id, 200),
    error_message = left(p_error_message, 1000),
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if p_outcome = 'succeeded' and p_response is not null and v_att.request_id is not null then
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    values (v_att.caller, v_att.request_id, 'done', v_att.model, p_response, now(), null)
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null;
  end if;

  if p_outcome = 'succeeded' then
    insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
    values (v_att.model, p_input_tokens, p_output_tokens,
      coalesce(p_input_tokens, 0) + coalesce(p_output_tokens, 0),
      coalesce(v_att.request_id, v_att.reservation_id::text),
      jsonb_build_object('source', 'eve-llm-gateway', 'caller', v_att.caller, 'key_alias', v_att.key_alias,
        'attempt', v_att.attempt, 'reservation_id', v_att.reservation_id));
  end if;

  -- Google says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = 'Google rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = v_att.api_key_id and k.is_active;
  end if;

  if p_cooldown_until_pacific_midnight then
    v_until := public.google_ai_pacific_midnight_after(pg_catalog.clock_timestamp());
  else
    v_until := p_cooldown_until;
  end if;
  if v_until is not null then
    perform public.google_ai_cooldown(v_att.quota_group, v_att.model, v_until,
      coalesce(p_error_code, p_outcome), p_quota_id);
  end if;

  if p_input_tokens is not null and p_input_tokens <> v_att.estimated_tokens then
    perform public.google_ai_adjust_token_budget(v_att, 0, p_input_tokens - v_att.estimated_tokens);
    update public.google_ai_usage_counters c
    set tpm_used = greatest(0, c.tpm_used + (p_input_tokens - v_att.estimated_tokens))
    where c.quota_group = v_att.quota_group and c.model = v_att.model
      and c.minute_bucket = v_att.minute_bucket;
  end if;

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$$;

-- Release: the call never reached Google, so the booking is given back: the request and its
-- estimated tokens in the booked minute (if still current) and the request in the booked day.
create or replace function public.google_ai_release(p_reservation_id uuid, p_reason text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_att public.google_ai_attempts;
begin
  update public.google_ai_attempts a set
    status = 'released',
    finished_at = pg_catalog.clock_timestamp(),
    error_message = left(p_reason, 1000)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
  end if;

  perform public.google_ai_adjust_token_budget(v_att, case when v_att.attempt = 1 then -1 else 0 end,
    -v_att.estimated_tokens);
  update public.google_ai_usage_counters c set
    rpm_used = case when c.minute_bucket = v_att.minute_bucket then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = v_att.minute_bucket
                    then greatest(0, c.tpm_used - v_att.estimated_tokens) else c.tpm_used end,
    rpd_used = case when c.day_bucket = v_att.day_bucket then greatest(0, c.rpd_used - 1) else c.rpd_used end
  where c.quota_group = v_att.quota_group and c.model = v_att.model
    and (c.minute_bucket = v_att.minute_bucket or c.day_bucket = v_att.day_bucket);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;

-- The end of an idempotent request that failed: its in-flight marker goes, so the caller may repeat
-- the request id at once (a success replaces the marker with the answer in finalize instead).
-- Any reservation of the request identifies it.
create or replace function public.google_ai_end_request(p_reservation_id uuid)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_deleted integer;
begin
  delete from public.google_ai_responses r
  using public.google_ai_attempts a
  where a.reservation_id = p_reservation_id
    and r.caller = a.caller and r.request_id = a.request_id and r.status = 'in_progress';
  get diagnostics v_deleted = row_count;
  return jsonb_build_object('ok', true, 'ended', v_deleted > 0);
end
$$;
