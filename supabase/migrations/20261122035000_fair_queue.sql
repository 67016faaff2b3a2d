-- A fair admission queue. Before this, a WAIT caller that was refused slept until the window
-- reopened and raced every other caller for it: no order, a notebook's burst could take every slot
-- ahead of the bot, and every poll was a reservation that wrote a refused row.
--
-- Now a WAIT request that cannot be admitted takes a ticket in the same round trip that refused it
-- and learns its place and the time its turn comes (expected_at): the opening of the sliding window
-- that the tickets ahead of it leave over. It sleeps until then (holding no connection) and is
-- admitted by its next call. Order: priority class first (interactive before batch), then turns
-- that alternate between callers (start-time fair queueing: a caller's next ticket takes the turn
-- after the later of its own last ticket and the head of its class), then arrival.
--
-- Why it cannot over-admit: the queue only decides who may try; the booking is still the exact,
-- locked google_ai_try_book (with the reserved shares, pacing and caller budgets of
-- 20261122030000_reserved_shares.sql, which the admission tells who asks). Why it does not idle: a caller may book while fewer tickets ahead of
-- it are due (expected_at reached) than slots are free, so a slot nobody due claims goes to whoever
-- asks. Why it does not starve: turns only grow within a class, and a ticket whose waiter stops
-- calling lapses grace_ms after its turn (lease_until) and stops counting.

create table if not exists public.google_ai_queue_settings (
  id       boolean primary key default true constraint google_ai_queue_settings_one_row check (id),
  -- How long a queued request's turn is kept for it after the time it was given; then its ticket lapses.
  grace_ms integer not null default 3000 check (grace_ms between 100 and 60000),
  updated_at timestamptz not null default now()
);
insert into public.google_ai_queue_settings (id) values (true) on conflict (id) do nothing;
comment on table public.google_ai_queue_settings is
  'The admission queue: grace_ms, how long a turn is kept for a waiter that has not called yet before its ticket lapses.';

-- Tickets ----------------------------------------------------------------------------------------
create table if not exists public.google_ai_queue (
  ticket_id      uuid primary key default gen_random_uuid(),
  model          text not null,
  priority_class text not null references public.google_ai_priority_classes (name),
  class_rank     smallint not null,
  caller         text not null,
  client_id      uuid,
  token_id       uuid,
  request_id     text,
  requested_model text,
  -- Fair order within a class (see above); ties go to the earlier arrival.
  turn           bigint not null,
  enqueued_at    timestamptz not null,
  tokens         integer not null,
  limit_hit      text not null,
  -- When its turn comes, as computed at its last call, and how long the ticket lives without a call.
  expected_at    timestamptz not null,
  lease_until    timestamptz not null,
  position       integer not null
);
create index if not exists google_ai_queue_order_idx
  on public.google_ai_queue (model, class_rank, turn, enqueued_at);
create index if not exists google_ai_queue_lease_idx on public.google_ai_queue (model, lease_until);
create index if not exists google_ai_queue_caller_idx on public.google_ai_queue (model, caller, class_rank);
comment on table public.google_ai_queue is
  'Requests waiting for capacity, in admission order (class_rank, turn, enqueued_at). A ticket ends when its '
  'request is admitted, gives up, or stops calling (lease_until): then an abandoned attempt row records it.';

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the
-- quota groups that may serve the model today: each group offers its free slots now, then one slot
-- as each admission of its window leaves it (admitted_at + window), then the same again a window
-- later. Null turn_at: no group can serve today (day used up or cooling down everywhere).
create or replace function public.google_ai_queue_turn_at(
  p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamptz, p_slots integer,
  out free_now integer, out turn_at timestamptz)
language plpgsql stable set search_path = ''
as $$
declare
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_group record;
  v_expiries timestamptz[];
  v_count integer;
  v_openings timestamptz[] := '{}';
  v_day_left bigint := 0;
  v_n integer;
begin
  free_now := 0;
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    select array_agg(a.admitted_at + v_window order by a.admitted_at) into v_expiries
    from public.google_ai_admissions a
    where a.quota_group = v_group.quota_group and a.model = p_model and a.admitted_at > p_now - v_window;
    v_count := coalesce(cardinality(v_expiries), 0);
    free_now := free_now + greatest(0, p_rpm - v_count);
    v_openings := v_openings || array_fill(p_now, array[greatest(0, p_rpm - v_count)])
                             || coalesce(v_expiries[greatest(1, v_count - p_rpm + 1):v_count], '{}');
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  if free_now >= p_slots then
    turn_at := p_now;
    return;
  end if;
  select array_agg(o order by o) into v_openings from unnest(v_openings) o;
  v_n := cardinality(v_openings);
  turn_at := greatest(p_now, v_openings[((p_slots - 1) % v_n) + 1] + ((p_slots - 1) / v_n) * v_window);
end
$$;

-- Tickets whose waiter stopped calling: removed, each leaving an abandoned attempt row (nothing lost).
create or replace function public.google_ai_queue_lapse(p_model text, p_now timestamptz)
returns integer
language plpgsql set search_path = ''
as $$
declare
  v_lapsed integer;
begin
  with gone as (
    delete from public.google_ai_queue q
    where q.model = p_model and q.lease_until < p_now
    returning q.*)
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, wait_ms, priority_class, error_message, finished_at)
  select 'abandoned', g.request_id, g.caller, g.client_id, g.token_id, g.model, g.requested_model, 1, g.tokens,
    g.limit_hit, greatest(0, extract(epoch from (g.expected_at - g.enqueued_at)) * 1000)::integer, g.priority_class,
    'left the queue: no call within the grace after its turn', p_now
  from gone g;
  get diagnostics v_lapsed = row_count;
  return v_lapsed;
end
$$;

-- The reservation, queue-aware ------------------------------------------------------------------
-- As before (idempotency, limits, booking on the best group, key, attempt row, or the refusal),
-- plus: p_priority (a class the caller asks for; never above its credential's: service callers may
-- ask for any, clients for theirs and lower), p_queue_ticket (the ticket an earlier refusal gave),
-- p_wait_left_ms (how much longer the caller will wait; null or 0: it will not, so no ticket).
drop function if exists public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean);
drop function if exists public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean);

-- The implementation takes a new name (google_ai_admit_at): the earlier migrations, applied again,
-- re-create google_ai_reserve_at with its old arguments, and two overloads that differ only in
-- trailing defaults would make their calls ambiguous. google_ai_reserve_at stays, calling it.
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
  v_grace interval := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
                       * interval '1 millisecond';
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
  v_allowed_rank := coalesce((select public.google_ai_class_rank(c.priority_class)
                              from public.google_ai_clients c where c.id = p_client_id),
                             (select min(pc.rank) from public.google_ai_priority_classes pc));
  v_rank := greatest(coalesce(public.google_ai_class_rank(p_priority), v_allowed_rank), v_allowed_rank);
  select pc.name into v_class from public.google_ai_priority_classes pc where pc.rank = v_rank;

  select * into v_limits from public.google_ai_request_limits(p_model, p_estimated_tokens);
  v_blocked_by := v_limits.blocked_by;

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

    if v_may_book then
      select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at, b.recheck_at
        into v_group, v_minute, v_day, v_blocked_by, v_reopens_at, v_recheck_at
      from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id,
        v_class, p_caller, p_client_id, p_attempt) b;
    else
      v_blocked_by := case when v_limits.rpm is not null then 'rpm' else 'tpm' end;
    end if;
  end if;

  if v_group is null then
    if v_blocked_by in ('rpm', 'tpm', 'rpd', 'cooldown', 'pace') and coalesce(p_wait_left_ms, 0) > 0 then
      -- In line. Tickets of a model are taken one at a time, so each one's place and time count every
      -- ticket before it (the lock is the model's and lasts until this call commits; no counter row
      -- is held by now: a full try gave its lock back).
      perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || v_limits.model));
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

  return jsonb_build_object(
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
end
$$;

-- As before, for the tests that inject the clock and older scripts: no class asked for, no queue.
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
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_at(p_now, p_model, p_estimated_tokens, p_caller, p_request_id, p_exclude_key_ids,
    p_attempt, p_wait_ms, p_metadata, p_client_id, p_token_id, p_idempotent, null, null, null)
$$;

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
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_at(null, p_model, p_estimated_tokens, p_caller, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, null, null, p_idempotent,
    p_priority, p_queue_ticket, p_wait_left_ms)
$$;

-- Reserving with a token: as before (token and client checked and booked with the quota, all or
-- nothing); the client's class bounds the request's (google_ai_admit_at reads it). A queued
-- refusal books no budget: the budget is booked when the request is admitted.
create or replace function public.google_ai_admit_with_token_at(
  p_now timestamptz,
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

  v_result := public.google_ai_admit_at(p_now, p_model, p_estimated_tokens, 'client:' || v_client.name,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, v_client.id, v_token.id, p_idempotent,
    p_priority, p_queue_ticket, p_wait_left_ms);

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
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_with_token_at(p_now, p_token_hash, p_model, p_estimated_tokens, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, null, null, null)
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
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_with_token_at(null, p_token_hash, p_model, p_estimated_tokens, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms)
$$;

-- The operator's view -----------------------------------------------------------------------------
create or replace view public.google_ai_queue_now
with (security_invoker = true) as
select q.model, q.priority_class, min(q.class_rank) as class_rank,
       count(*)::int as waiting,
       count(distinct q.caller)::int as callers,
       min(q.enqueued_at) as oldest_since,
       max(q.expected_at) as last_turn_at
from public.google_ai_queue q
where q.lease_until >= now()
group by q.model, q.priority_class;
comment on view public.google_ai_queue_now is
  'Requests waiting now, per model and class: how many, from how many callers, since when, and when the last turn comes.';

create or replace view public.google_ai_wait_by_class_1h
with (security_invoker = true) as
select a.model, coalesce(a.priority_class, 'interactive') as priority_class,
       count(*) filter (where a.status not in ('refused', 'abandoned'))::int as admitted,
       count(*) filter (where a.status = 'refused')::int as refused,
       count(*) filter (where a.status = 'abandoned')::int as abandoned,
       percentile_disc(0.5) within group (order by coalesce(a.wait_ms, 0))
         filter (where a.status not in ('refused', 'abandoned')) as wait_ms_p50,
       percentile_disc(0.95) within group (order by coalesce(a.wait_ms, 0))
         filter (where a.status not in ('refused', 'abandoned')) as wait_ms_p95,
       max(coalesce(a.wait_ms, 0)) filter (where a.status not in ('refused', 'abandoned')) as wait_ms_max
from public.google_ai_attempts a
where a.created_at > now() - interval '1 hour' and a.attempt = 1
group by 1, 2;
comment on view public.google_ai_wait_by_class_1h is
  'The last hour per model and class: first attempts admitted, refused and abandoned in the queue, and how long the admitted waited.';

-- Access (as in the access file) -------------------------------------------------------------------
alter table public.google_ai_queue enable row level security;
alter table public.google_ai_queue_settings enable row level security;
revoke all on table public.google_ai_queue_settings from anon, authenticated, service_role;
grant select, update on public.google_ai_queue_settings to service_role;
revoke all on table public.google_ai_queue,
  public.google_ai_queue_now, public.google_ai_wait_by_class_1h from anon, authenticated, service_role;
grant select on public.google_ai_queue, public.google_ai_queue_now, public.google_ai_wait_by_class_1h to service_role;

do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_queue_turn_at(text, integer, integer, uuid[], timestamptz, integer)',
    'public.google_ai_queue_lapse(text, timestamptz)',
    'public.google_ai_admit_at(timestamptz, text, integer, text, text, uuid[], integer, integer, jsonb, uuid, uuid, boolean, text, uuid, integer)',
    'public.google_ai_admit_with_token_at(timestamptz, text, text, integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)',
    'public.google_ai_reserve_at(timestamptz, text, integer, text, text, uuid[], integer, integer, jsonb, uuid, uuid, boolean)',
    'public.google_ai_reserve_with_token_at(timestamptz, text, text, integer, text, uuid[], integer, integer, jsonb, boolean)',
    'public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)',
    'public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;

-- The RPCs, for operators (service_role) and the Edge Functions' role, as before (revoked first, so
-- applying the files again grants in the same order).
revoke all on function
  public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer),
  public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)
from eve_gateway;
grant execute on function
  public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer),
  public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)
to service_role, eve_gateway;
