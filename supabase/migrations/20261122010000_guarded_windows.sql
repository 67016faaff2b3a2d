-- Admission that holds under Google's own clock. Google counts a request when it arrives, on its
-- clock, with a minute window it does not publish (fixed at :00, fixed with an offset, or sliding);
-- a booking made at :59.9 can arrive at :00.0. So the gateway no longer books calendar minutes:
--
-- Minutes (RPM, TPM): a request is admitted at time a only if the admissions of the last
-- W = 60 s + minute_guard_ms, plus this one, fit the limit. Any 60-second span on Google's side holds
-- arrivals whose admissions lie less than 60 s + (delay spread) apart, so while the guard covers the
-- spread of network delays, no 60-second span however aligned sees more than the limit arrive
-- (proof: docs/architecture.md, "Windows that hold on Google's clock"). The admissions of the last W
-- are rows of google_ai_admissions; their sums are kept on the counter row, so the check stays O(1)
-- under the row lock and each admission row is expired once.
--
-- Day (RPD): Google resets at Pacific midnight on its own clock. An admission within day_guard_ms
-- of a midnight counts in both days it could land in (rpd_next_used / rpd_prev_used).
--
-- Capacity given back: finalize lowers an admission's tokens to Google's count (release removes it),
-- at once in the window sums. A TPM refusal while admissions of the window are still in flight
-- carries recheck_after_ms, so waiters ask again soon instead of sleeping to the oldest expiry.

-- Settings ---------------------------------------------------------------------------------------
create table if not exists public.google_ai_admission_settings (
  id              boolean primary key default true constraint google_ai_admission_settings_one_row check (id),
  minute_guard_ms integer not null default 1000 check (minute_guard_ms between 0 and 30000),
  day_guard_ms    integer not null default 5000 check (day_guard_ms between 0 and 600000),
  recheck_ms      integer not null default 2000 check (recheck_ms between 100 and 60000),
  updated_at      timestamptz not null default now()
);
insert into public.google_ai_admission_settings (id) values (true) on conflict (id) do nothing;

comment on table public.google_ai_admission_settings is
  'How far admission allows for Google''s clock: minute_guard_ms (>= the spread of network delays; the minute '
  'window is 60 s plus this), day_guard_ms (>= clock offset + delay at Pacific midnight), recheck_ms (how soon '
  'a TPM waiter asks again while tokens of its window may still be given back).';

-- The admissions of the current window ------------------------------------------------------------
create table if not exists public.google_ai_admissions (
  reservation_id uuid primary key,
  quota_group    text not null,
  model          text not null,
  admitted_at    timestamptz not null,
  tokens         integer not null,
  -- Booked on the estimate; false once finalize wrote Google's count.
  in_flight      boolean not null default true,
  -- Also counted in the next (+1) or previous (-1) Pacific day: admitted within day_guard_ms of midnight.
  day_guard      smallint not null default 0
);
create index if not exists google_ai_admissions_window_idx
  on public.google_ai_admissions (quota_group, model, admitted_at);
comment on table public.google_ai_admissions is
  'Admissions of the last minute + guard per quota group and model (the sliding window); expired rows are '
  'removed by the next admission of their group. No caller data, no secrets.';

alter table public.google_ai_usage_counters add column if not exists window_requests integer not null default 0;
alter table public.google_ai_usage_counters add column if not exists window_tokens bigint not null default 0;
alter table public.google_ai_usage_counters add column if not exists window_at timestamptz;
alter table public.google_ai_usage_counters add column if not exists rpd_next_used integer not null default 0;
alter table public.google_ai_usage_counters add column if not exists rpd_prev_used integer not null default 0;
comment on column public.google_ai_usage_counters.window_requests is
  'Admissions in the sliding window (the last 60 s + minute guard): the rows of google_ai_admissions.';
comment on column public.google_ai_usage_counters.rpd_next_used is
  'Requests admitted within the day guard before midnight, counted for the next Pacific day too.';
comment on column public.google_ai_usage_counters.rpd_prev_used is
  'Requests of the previous Pacific day, plus those admitted within the day guard after midnight.';

create or replace function public.google_ai_admission_guard()
returns public.google_ai_admission_settings
language sql stable set search_path = ''
as $$
  select coalesce((select s from public.google_ai_admission_settings s where s.id),
                  row(true, 1000, 5000, 2000, now())::public.google_ai_admission_settings)
$$;

-- When the sliding window has room again for one more request of p_tokens under both limits: when
-- the shortest run of its oldest admissions that frees enough has left it (admitted_at + window).
create or replace function public.google_ai_window_reopens_at(
  p_quota_group text, p_model text, p_now timestamptz, p_window interval,
  p_rpm integer, p_tpm integer, p_tokens integer)
returns timestamptz
language sql stable set search_path = ''
as $$
  select min(a.admitted_at) + p_window
  from (
    select w.admitted_at,
           count(*) over () - row_number() over (order by w.admitted_at, w.reservation_id) as left_requests,
           sum(w.tokens) over () - sum(w.tokens) over (order by w.admitted_at, w.reservation_id) as left_tokens
    from public.google_ai_admissions w
    where w.quota_group = p_quota_group and w.model = p_model and w.admitted_at > p_now - p_window
  ) a
  where (p_rpm is null or a.left_requests + 1 <= p_rpm)
    and (p_tpm is null or a.left_tokens + p_tokens <= p_tpm)
$$;

-- Booking on a counter row -----------------------------------------------------------------------
-- One try at booking a request on a quota group's counter row, as before (the row lock decides;
-- the subtransaction gives the lock back when the row is full), now against the sliding window and
-- the guarded day. Returns when the blocking window reopens (reopens_at) and, for TPM while tokens
-- of the window may still be given back, when to ask again (recheck_at).
drop function if exists public.google_ai_book_best_group(text, integer, integer, integer, integer, uuid[], timestamptz, timestamptz);
drop function if exists public.google_ai_book_waiting(text[], text, integer, integer, integer, integer, timestamptz);
drop function if exists public.google_ai_try_book(text, text, integer, integer, integer, integer, timestamptz, boolean);

create or replace function public.google_ai_try_book(
  p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz, p_skip_locked boolean, p_reservation_id uuid default null,
  out outcome text, out minute_bucket timestamptz, out day_bucket date,
  out reopens_at timestamptz, out recheck_at timestamptz)
language plpgsql set search_path = ''
as $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_midnight timestamptz;
  v_day_start timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_rpm_used integer;
  v_tpm_used integer;
  v_rpd_used integer;
  v_rpd_next integer;
  v_rpd_prev integer;
  v_gone_requests integer;
  v_gone_tokens bigint;
  v_win_requests integer;
  v_win_tokens bigint;
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
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_rpm_used := case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end;
    v_tpm_used := case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end;
    if v_row.day_bucket = v_day then
      v_rpd_used := v_row.rpd_used; v_rpd_next := v_row.rpd_next_used; v_rpd_prev := v_row.rpd_prev_used;
    elsif v_row.day_bucket = v_day - 1 then
      -- The day rolled over: what was counted ahead becomes today's, yesterday's count stays in view.
      v_rpd_used := v_row.rpd_next_used; v_rpd_next := 0; v_rpd_prev := coalesce(v_row.rpd_used, 0);
    else
      v_rpd_used := 0; v_rpd_next := 0; v_rpd_prev := 0;
    end if;
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_day_start := (v_day::timestamp at time zone 'America/Los_Angeles');
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < v_day_start + v_day_guard;

    -- Admissions that left the window (each is expired once, by the first try after it left).
    with gone as (
      delete from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at <= v_now - v_window
      returning a.tokens)
    select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
    if v_row.window_at is null then
      -- A new counter row (first use, or housekeeping removed an idle one): count what is in the window.
      select count(*), coalesce(sum(a.tokens), 0) into v_win_requests, v_win_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model;
    else
      v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
      v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);
    end if;

    outcome := case
      when p_rpd is not null and (v_rpd_used + 1 > p_rpd
                                  or (v_near_end and v_rpd_next + 1 > p_rpd)
                                  or (v_near_start and v_rpd_prev + 1 > p_rpd)) then 'rpd'
      when p_rpm is not null and v_win_requests + 1 > p_rpm then 'rpm'
      when p_tpm is not null and v_win_tokens + p_tokens > p_tpm then 'tpm'
      else 'booked' end;
    minute_bucket := v_minute;
    day_bucket := v_day;

    if outcome <> 'booked' then
      if outcome = 'rpd' then
        -- Today's count is spent until midnight, and the guard after it still counts yesterday's.
        reopens_at := case when v_near_end and v_rpd_used + 1 <= p_rpd
                           then public.google_ai_pacific_midnight_after(v_midnight) + v_day_guard
                           else v_midnight + v_day_guard end;
      else
        reopens_at := public.google_ai_window_reopens_at(p_quota_group, p_model, v_now, v_window, p_rpm, p_tpm, p_tokens);
        if outcome = 'tpm' and exists (select 1 from public.google_ai_admissions a
                                       where a.quota_group = p_quota_group and a.model = p_model
                                         and a.in_flight and a.admitted_at > v_now - v_window) then
          recheck_at := v_now + v_guard.recheck_ms * interval '1 millisecond';
        end if;
      end if;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard)
    values (coalesce(p_reservation_id, gen_random_uuid()), p_quota_group, p_model, v_now, p_tokens,
            case when v_near_end then 1 when v_near_start then -1 else 0 end);

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_day,
      rpm_used        = v_rpm_used + 1,
      tpm_used        = v_tpm_used + p_tokens,
      rpd_used        = v_rpd_used + 1,
      rpd_next_used   = v_rpd_next + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_rpd_prev + case when v_near_start then 1 else 0 end,
      window_requests = v_win_requests + 1,
      window_tokens   = v_win_tokens + p_tokens,
      window_at       = v_now,
      updated_at      = v_now
    where c.id = v_row.id;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, buckets, reopens_at and recheck_at keep the values set above
  end;
end
$$;

-- Books on the first of p_groups that fits, waiting for each row lock in turn (holding no other
-- counter lock while it waits). Reports the earliest reopening among the full ones.
create or replace function public.google_ai_book_waiting(
  p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz, p_reservation_id uuid default null,
  out booked_group text, out minute_bucket timestamptz, out day_bucket date,
  out blocked_by text, out reopens_at timestamptz, out recheck_at timestamptz)
language plpgsql set search_path = ''
as $$
declare
  v_group text;
  v_try record;
begin
  foreach v_group in array p_groups loop
    select * into v_try from public.google_ai_try_book(v_group, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now, false,
      p_reservation_id);
    if v_try.outcome = 'booked' then
      booked_group := v_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
      return;
    end if;
    if reopens_at is null or v_try.reopens_at < reopens_at then
      reopens_at := v_try.reopens_at; blocked_by := v_try.outcome;
    end if;
    if v_try.recheck_at is not null and (recheck_at is null or v_try.recheck_at < recheck_at) then
      recheck_at := v_try.recheck_at;
    end if;
  end loop;
end
$$;

-- Books the request on the best candidate group that fits, as before (priority tiers, SKIP LOCKED
-- within a tier, the passed-over groups waited for before the next tier, cooldowns skipped). The
-- unlocked RPD/RPM pre-check still reads the calendar counters: they never exceed the guarded ones
-- (a calendar minute lies inside the last 60 s + guard), so a group it passes over is full, and its
-- reopening is read from the window's admissions.
create or replace function public.google_ai_book_best_group(
  p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[],
  p_now timestamptz, p_at timestamptz, p_reservation_id uuid default null,
  out booked_group text, out minute_bucket timestamptz, out day_bucket date,
  out blocked_by text, out reopens_at timestamptz, out recheck_at timestamptz)
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
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
begin
  for v_candidate in
    select * from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
    order by c.rank
  loop
    if not v_first and v_candidate.priority is distinct from v_tier and cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
        p_reservation_id);
      if v_wait.booked_group is not null then
        booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
        return;
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
      v_outcome := 'rpm';
      v_at := public.google_ai_window_reopens_at(v_candidate.quota_group, p_model, p_at, v_window, p_rpm, p_tpm, p_tokens);
    else
      -- TPM is always decided under the lock: its refusal says when tokens of the window may come back.
      select * into v_try from public.google_ai_try_book(v_candidate.quota_group, p_model,
        p_rpm, p_tpm, p_rpd, p_tokens, p_now, true, p_reservation_id);
      v_outcome := v_try.outcome;
      if v_outcome = 'booked' then
        booked_group := v_candidate.quota_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
        return;
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
      p_reservation_id);
    if v_wait.booked_group is not null then
      booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
      return;
    elsif reopens_at is null or v_wait.reopens_at < reopens_at then
      reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by;
    end if;
    recheck_at := least(recheck_at, v_wait.recheck_at);
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

-- The day reopens after midnight plus the day guard (the first moments of a day still count for the
-- day before, on a clock that may lag ours).
create or replace function public.google_ai_reopens_at(p_limit text, p_now timestamptz)
returns timestamptz language sql stable parallel safe set search_path = ''
as $$
  select case when p_limit = 'rpd'
              then public.google_ai_pacific_midnight_after(p_now)
                   + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
              else public.google_ai_minute_window(p_now) + interval '1 minute' end
$$;

-- The reservation, as before, with its id named before booking and the recheck hint on a refusal ---
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
  v_recheck_at timestamptz;
  -- Named before booking: the window's admission row carries it, so finalize and release find it.
  v_reservation_id uuid := gen_random_uuid();
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
    select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at, b.recheck_at
      into v_group, v_minute, v_day, v_blocked_by, v_reopens_at, v_recheck_at
    from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
      p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id) b;
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
      'max_tokens', case when v_limits.blocked_by = 'too_large' then v_limits.tpm end,
      'recheck_after_ms', case when v_recheck_at is not null
                               then greatest(0, ceil(extract(epoch from (v_recheck_at - v_now)) * 1000))::bigint end);
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

  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata)
  values (v_reservation_id, 'reserved', p_request_id, p_caller, p_client_id, p_token_id, v_limits.model,
    p_model, p_attempt, v_key.id, v_key.key_alias, v_group, v_minute, v_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'));

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

-- The answer of finalize and release for a reservation that is not open (any more).
create or replace function public.google_ai_not_open(p_reservation_id uuid)
returns jsonb
language sql stable set search_path = ''
as $$
  select jsonb_build_object('ok', false, 'error', 'not_open',
    'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id))
$$;

-- Settles an admission on its counter row: finalize sets its tokens to Google's count (p_tokens),
-- release removes it (p_released) and gives back the request in its minute and day. The counter row
-- is locked before the admission row, the order the reservation takes them in. An admission that
-- already left the window changes only the calendar counters.
create or replace function public.google_ai_settle_admission(
  p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
returns void
language plpgsql set search_path = ''
as $$
declare
  v_row public.google_ai_usage_counters;
  v_adm public.google_ai_admissions;
  v_delta bigint;
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = p_att.model
  for update;
  if not found then
    return;
  end if;
  if p_released then
    delete from public.google_ai_admissions a where a.reservation_id = p_att.reservation_id returning * into v_adm;
  else
    select * into v_adm from public.google_ai_admissions a where a.reservation_id = p_att.reservation_id for update;
    if found then
      update public.google_ai_admissions a set tokens = p_tokens, in_flight = false
      where a.reservation_id = p_att.reservation_id;
    end if;
  end if;
  v_delta := p_tokens - coalesce(v_adm.tokens, p_att.estimated_tokens);

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + (p_tokens - p_att.estimated_tokens)) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_adm.day_guard = 1
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_adm.day_guard = -1
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
    window_requests = case when v_adm.reservation_id is not null and p_released
                           then greatest(0, c.window_requests - 1) else c.window_requests end,
    window_tokens = case when v_adm.reservation_id is not null
                         then greatest(0, c.window_tokens + v_delta) else c.window_tokens end
  where c.id = v_row.id;
end
$$;

-- Outcomes, settled in the window -----------------------------------------------------------------
-- Finalize: record the outcome of the call to Google and settle its admission at Google's input
-- token count (google_ai_settle_admission). A success also lands in
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
    return public.google_ai_not_open(p_reservation_id);
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
  end if;
  -- The window learns Google's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(v_att, greatest(0, coalesce(p_input_tokens, v_att.estimated_tokens)), false);

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$$;

-- Release: the call never reached Google, so the booking is given back (google_ai_settle_admission).
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
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, case when v_att.attempt = 1 then -1 else 0 end,
    -v_att.estimated_tokens);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;

-- Access (as in the access file: RLS on, nothing for the Data API roles, operators read) ---------
alter table public.google_ai_admissions enable row level security;
alter table public.google_ai_admission_settings enable row level security;
revoke all on table public.google_ai_admissions, public.google_ai_admission_settings
  from anon, authenticated, service_role;
grant select on public.google_ai_admissions to service_role;
grant select, update on public.google_ai_admission_settings to service_role;

-- The new and re-created steps are owner-only, like the reservation's other steps.
do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_admission_guard()',
    'public.google_ai_window_reopens_at(text, text, timestamptz, interval, integer, integer, integer)',
    'public.google_ai_try_book(text, text, integer, integer, integer, integer, timestamptz, boolean, uuid)',
    'public.google_ai_book_waiting(text[], text, integer, integer, integer, integer, timestamptz, uuid)',
    'public.google_ai_book_best_group(text, integer, integer, integer, integer, uuid[], timestamptz, timestamptz, uuid)',
    'public.google_ai_reopens_at(text, timestamptz)',
    'public.google_ai_not_open(uuid)',
    'public.google_ai_settle_admission(public.google_ai_attempts, integer, boolean)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;
