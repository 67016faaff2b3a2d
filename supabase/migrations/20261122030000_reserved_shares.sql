-- Reserved shares, pacing and service callers' daily budgets, as rows.
--
-- Shares (google_ai_quota_shares): per model, a part of RPM and/or RPD that only its owner — a
-- priority class, or one caller (a Kaggle client `client:<name>`, or a service caller's label) — may
-- use, applied to each quota group's (effective) limit. A request that does not own a share may book
-- only while
--     used + 1 <= limit - sum over the shares it does not own of max(0, share - owner's use)
-- in the same window (the sliding minute for RPM; the guarded Pacific day for RPD, both days near
-- midnight); an owner may use the whole limit. The owner's use is kept per (share, quota group) in
-- google_ai_share_usage and on each admission (share_ids), written in the same booking, under the
-- same counter-row lock, and given back the way the window gives back (expiry, release): so the
-- decision reads exact values in O(shares of the model), and concurrent bookings cannot over-admit
-- (docs/architecture.md, "Reserved shares and pacing"). A request that owns two shares of the same
-- limit (a class's and its caller's) counts in both: give one owner a share per limit.
--
-- Pacing (pace_burst on a share row): its owner may not have used more of a group's Pacific day than
--     pace_burst + floor(usable x elapsed part of the day)
-- where usable is the group's RPD less the day shares of other owners. A refusal (limit `pace`)
-- names the exact moment the allowance reaches the next request.
--
-- Service callers' budgets (google_ai_caller_budgets): requests and input tokens per Pacific day for
-- a service caller, checked and booked in the booking's transaction (the budget row is locked
-- before any counter row, as a Kaggle client's is), given back by release and reconciled by
-- finalize; refusal `caller_budget` until Pacific midnight.
--
-- The booking learns who asks: google_ai_book_best_group, google_ai_book_waiting and
-- google_ai_try_book take the request's class, caller, client and attempt; the admission
-- (google_ai_admit_at, 20261122035000_fair_queue.sql) passes them.

-- Shares -----------------------------------------------------------------------------------------
create table if not exists public.google_ai_quota_shares (
  id             bigint generated always as identity primary key,
  model          text not null references public.google_ai_model_limits (model) on update cascade on delete cascade,
  -- The owner: a class, or one caller (`client:<name>` for a Kaggle client, else a service caller's label).
  priority_class text references public.google_ai_priority_classes (name) on update cascade on delete cascade,
  caller         text constraint google_ai_quota_shares_caller_check check (caller ~ '^[A-Za-z0-9._:@-]{1,80}$'),
  -- Kept for the owner out of each quota group's limit (requests; null: nothing kept).
  reserved_rpm   integer constraint google_ai_quota_shares_rpm_check check (reserved_rpm >= 0),
  reserved_rpd   integer constraint google_ai_quota_shares_rpd_check check (reserved_rpd >= 0),
  -- Pacing of the owner's day (null: not paced): requests allowed ahead of the even spread.
  pace_burst     integer constraint google_ai_quota_shares_pace_check check (pace_burst >= 0),
  notes          text,
  created_at     timestamptz not null default now(),
  constraint google_ai_quota_shares_one_owner check (num_nonnulls(priority_class, caller) = 1),
  constraint google_ai_quota_shares_something check (num_nonnulls(reserved_rpm, reserved_rpd, pace_burst) >= 1),
  constraint google_ai_quota_shares_owner_key unique nulls not distinct (model, priority_class, caller)
);
comment on table public.google_ai_quota_shares is
  'Per model, the requests of each quota group''s RPM/RPD kept for one owner (a priority class or a caller), '
  'and the optional pacing of the owner''s day (pace_burst; only for a model with an RPD). Others may book '
  'only what the owners'' unused shares leave over; an owner may use the whole limit.';

create table if not exists public.google_ai_share_usage (
  quota_group     text not null,
  share_id        bigint not null references public.google_ai_quota_shares (id) on delete cascade,
  -- The owner's admissions in the group's sliding window (the rows of google_ai_admissions naming the share).
  window_requests integer not null default 0,
  -- The owner's requests in the group's Pacific day, kept like the counter row's (rpd_used, next, prev).
  day_bucket      date,
  day_used        integer not null default 0,
  day_next_used   integer not null default 0,
  day_prev_used   integer not null default 0,
  primary key (quota_group, share_id)
);
create index if not exists google_ai_share_usage_share_idx on public.google_ai_share_usage (share_id);
comment on table public.google_ai_share_usage is
  'What each share''s owner used of a quota group, written only under that group''s counter-row lock.';

alter table public.google_ai_admissions add column if not exists share_ids bigint[];
comment on column public.google_ai_admissions.share_ids is
  'The shares whose owner made this admission: their window counts give it back when it leaves the window.';

-- Service callers' daily budgets ---------------------------------------------------------------
create table if not exists public.google_ai_caller_budgets (
  -- A service caller's label (x-caller; Kaggle clients have their budgets on google_ai_clients).
  caller             text primary key
    constraint google_ai_caller_budgets_caller_check check (caller ~ '^[A-Za-z0-9._:@-]{1,80}$' and caller !~* '^client:'),
  daily_max_requests integer constraint google_ai_caller_budgets_requests_check check (daily_max_requests >= 0),
  daily_max_tokens   integer constraint google_ai_caller_budgets_tokens_check check (daily_max_tokens >= 0),
  day_bucket         date,
  requests_today     integer not null default 0,
  tokens_today       bigint not null default 0,
  notes              text,
  created_at         timestamptz not null default now()
);
comment on table public.google_ai_caller_budgets is
  'Requests and input tokens a service caller may book per Pacific day (null: no limit); requests_today and '
  'tokens_today are booked with each reservation. Refusal caller_budget until Pacific midnight.';

-- Pacing -----------------------------------------------------------------------------------------
-- What a paced owner may have used of Pacific day p_day at p_at: the burst, plus the part of the
-- usable requests that the elapsed part of the day (23, 24 or 25 hours) earns.
create or replace function public.google_ai_pace_allowance(p_at timestamptz, p_day date, p_burst integer, p_usable integer)
returns integer
language sql stable set search_path = ''
as $$
  select p_burst + floor(greatest(0, p_usable)::numeric
           * least(greatest(extract(epoch from p_at - d.s), 0), extract(epoch from d.e - d.s))
           / extract(epoch from d.e - d.s))::integer
  from (select (p_day::timestamp at time zone 'America/Los_Angeles') as s,
               ((p_day + 1)::timestamp at time zone 'America/Los_Angeles') as e) d
$$;

-- The first moment of Pacific day p_day at which the allowance reaches p_used + 1 (to the
-- microsecond, the clock's resolution); null when it does not within that day. The allowance at
-- s + e is burst + floor(usable x e / L), so it reaches need = p_used + 1 - burst at
-- e = ceil(need x L / usable), which lies within the day (e < L) exactly when need < usable.
create or replace function public.google_ai_pace_opens_at(p_day date, p_used integer, p_burst integer, p_usable integer)
returns timestamptz
language sql stable set search_path = ''
as $$
  select case when n.need <= 0 then d.s
              -- The allowance reaches burst + usable only at the day's end, which is the next day.
              when p_usable <= 0 or n.need >= p_usable then null
              else d.s + ceil(n.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / p_usable)
                         * interval '1 microsecond' end
  from (select (p_day::timestamp at time zone 'America/Los_Angeles') as s,
               ((p_day + 1)::timestamp at time zone 'America/Los_Angeles') as e) d,
       (select p_used + 1 - p_burst as need) n
$$;

-- Window reopening with shares ---------------------------------------------------------------------
-- When the sliding window has room again for one more request of p_tokens for a requester that does
-- not own some RPM shares: walking its admissions oldest first, the first moment the ones left, plus
-- what the other owners may still claim of their shares, leave a request over (an owner's admission
-- leaving gives its owner room, not the others). Without such shares: google_ai_window_reopens_at.
-- Null: never within the window (the shares kept from this requester cover the limit).
create or replace function public.google_ai_window_reopens_for(
  p_quota_group text, p_model text, p_now timestamptz, p_window interval,
  p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text)
returns timestamptz
language plpgsql stable set search_path = ''
as $$
declare
  v_ids bigint[];
  v_kept integer[];
  v_used integer[];
  v_left_requests integer;
  v_left_tokens bigint;
  v_held integer;
  v_adm record;
begin
  select array_agg(s.id order by s.id), array_agg(s.reserved_rpm order by s.id) into v_ids, v_kept
  from public.google_ai_quota_shares s
  where s.model = p_model and s.reserved_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  if v_ids is null or p_rpm is null then
    return public.google_ai_window_reopens_at(p_quota_group, p_model, p_now, p_window, p_rpm, p_tpm, p_tokens);
  end if;

  select count(*), coalesce(sum(a.tokens), 0) into v_left_requests, v_left_tokens
  from public.google_ai_admissions a
  where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window;
  select array_agg((select count(*) from public.google_ai_admissions a
                    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
                      and i.id = any (a.share_ids))::integer order by i.n)
    into v_used
  from unnest(v_ids) with ordinality as i(id, n);

  for v_adm in
    select a.admitted_at, a.tokens, a.share_ids from public.google_ai_admissions a
    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
    order by a.admitted_at, a.reservation_id
  loop
    v_left_requests := v_left_requests - 1;
    v_left_tokens := v_left_tokens - v_adm.tokens;
    v_held := 0;
    for i in 1 .. cardinality(v_ids) loop
      if v_ids[i] = any (v_adm.share_ids) then
        v_used[i] := v_used[i] - 1;
      end if;
      v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
    end loop;
    if v_left_requests + 1 + v_held <= p_rpm and (p_tpm is null or v_left_tokens + p_tokens <= p_tpm) then
      return v_adm.admitted_at + p_window;
    end if;
  end loop;
  return null;
end
$$;

-- What a requester may still use of a quota group, as the queue counts it (an unlocked read, like
-- the queue's): the times at which slots of the sliding window are free for it, counting requests
-- only — p_now once per slot free now, then the moment each admission whose leaving frees a slot
-- for it leaves (an owner's admission leaving frees a slot for its owner, not for the others) — and
-- the requests of today the others' day shares keep from it. Without shares kept from it: every
-- admission's leaving opens a slot, and nothing of the day is kept.
create or replace function public.google_ai_share_room(
  p_quota_group text, p_model text, p_now timestamptz, p_window interval, p_rpm integer,
  p_class text, p_caller text, out openings timestamptz[], out day_held integer)
language plpgsql stable set search_path = ''
as $$
declare
  v_ids bigint[];
  v_kept integer[];
  v_used integer[];
  v_count integer;
  v_free integer;
  v_room integer;
  v_held integer;
  v_adm record;
  v_day date := public.google_ai_pacific_day(p_now);
begin
  select coalesce(sum(greatest(0, s.reserved_rpd - case when u.day_bucket = v_day then u.day_used
                                                        when u.day_bucket = v_day - 1 then u.day_next_used
                                                        else 0 end)), 0)::integer
    into day_held
  from public.google_ai_quota_shares s
  left join public.google_ai_share_usage u on u.quota_group = p_quota_group and u.share_id = s.id
  where s.model = p_model and s.reserved_rpd is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  if p_rpm is null then
    return;
  end if;

  select array_agg(s.id order by s.id), array_agg(s.reserved_rpm order by s.id) into v_ids, v_kept
  from public.google_ai_quota_shares s
  where s.model = p_model and s.reserved_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  v_ids := coalesce(v_ids, '{}'); v_kept := coalesce(v_kept, '{}');
  select count(*) into v_count from public.google_ai_admissions a
  where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window;
  select coalesce(array_agg((select count(*) from public.google_ai_admissions a
                             where a.quota_group = p_quota_group and a.model = p_model
                               and a.admitted_at > p_now - p_window and i.id = any (a.share_ids))::integer
                            order by i.n), '{}')
    into v_used
  from unnest(v_ids) with ordinality as i(id, n);
  v_held := 0;
  for i in 1 .. cardinality(v_ids) loop
    v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
  end loop;
  v_free := greatest(0, p_rpm - v_count - v_held);
  openings := array_fill(p_now, array[v_free]);

  for v_adm in
    select a.admitted_at, a.share_ids from public.google_ai_admissions a
    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
    order by a.admitted_at, a.reservation_id
  loop
    v_count := v_count - 1;
    v_held := 0;
    for i in 1 .. cardinality(v_ids) loop
      if v_ids[i] = any (v_adm.share_ids) then
        v_used[i] := v_used[i] - 1;
      end if;
      v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
    end loop;
    v_room := greatest(0, p_rpm - v_count - v_held);
    if v_room > v_free then
      openings := openings || array_fill(v_adm.admitted_at + p_window, array[v_room - v_free]);
      v_free := v_room;
    end if;
  end loop;
end
$$;

-- Booking on a counter row, with shares and pacing --------------------------------------------------
-- google_ai_try_book of 20261122010000_guarded_windows.sql, plus the requester (p_class, p_caller):
-- under the counter-row lock it reads the owners' use of the model's shares in this group (rolled to
-- the current day like the counter row), refuses what the shares kept from this requester or its
-- pacing do not leave, and books the requester's own shares' use with the admission.
drop function if exists public.google_ai_try_book(text, text, integer, integer, integer, integer, timestamptz, boolean, uuid);

create or replace function public.google_ai_try_book(
  p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz, p_skip_locked boolean, p_reservation_id uuid default null,
  p_class text default null, p_caller text default null,
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
  -- Shares
  v_share record;
  v_used integer;
  v_next integer;
  v_prev integer;
  v_reserved_rpd integer := 0;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_held_next integer := 0;
  v_held_prev integer := 0;
  v_owned bigint[] := '{}';
  v_owned_win integer[] := '{}';
  v_owned_used integer[] := '{}';
  v_owned_next integer[] := '{}';
  v_owned_prev integer[] := '{}';
  v_pace_burst integer[] := '{}';
  v_pace_kept integer[] := '{}';
  v_pace_used integer[] := '{}';
  v_pace_next integer[] := '{}';
  v_usable integer;
  v_pace_at timestamptz;
  v_at timestamptz;
  v_window_full boolean;
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

    -- Admissions that left the window (each is expired once, by the first try after it left); the
    -- owners of shares get their window count back with them.
    with gone as (
      delete from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at <= v_now - v_window
      returning a.tokens, a.share_ids),
    owners_back as (
      update public.google_ai_share_usage u set window_requests = greatest(0, u.window_requests - b.n)
      from (select s.id, count(*)::integer as n from gone g cross join unnest(g.share_ids) as s(id) group by s.id) b
      where u.quota_group = p_quota_group and u.share_id = b.id)
    select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
    if v_row.window_at is null then
      -- A new counter row (first use, or housekeeping removed an idle one): count what is in the window.
      select count(*), coalesce(sum(a.tokens), 0) into v_win_requests, v_win_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model;
      -- The owners' use starts again with the row: their admissions in the window, nothing of the day.
      delete from public.google_ai_share_usage u
      where u.quota_group = p_quota_group
        and u.share_id in (select s.id from public.google_ai_quota_shares s where s.model = p_model);
      insert into public.google_ai_share_usage (quota_group, share_id, window_requests)
      select p_quota_group, s.id, count(*)::integer
      from public.google_ai_admissions a
      cross join unnest(a.share_ids) as x(id)
      join public.google_ai_quota_shares s on s.id = x.id and s.model = p_model
      where a.quota_group = p_quota_group and a.model = p_model
      group by s.id;
    else
      v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
      v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);
    end if;

    -- The model's shares in this group: what the others' shares keep from this requester, and the
    -- use of its own (rolled to the current day like the counter row).
    for v_share in
      select s.id, s.reserved_rpm, s.reserved_rpd, s.pace_burst,
             coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
             coalesce(u.window_requests, 0) as win, u.day_bucket, coalesce(u.day_used, 0) as day_used,
             coalesce(u.day_next_used, 0) as day_next_used, coalesce(u.day_prev_used, 0) as day_prev_used
      from public.google_ai_quota_shares s
      left join public.google_ai_share_usage u on u.quota_group = p_quota_group and u.share_id = s.id
      where s.model = p_model
      order by s.id
    loop
      if v_share.day_bucket = v_day then
        v_used := v_share.day_used; v_next := v_share.day_next_used; v_prev := v_share.day_prev_used;
      elsif v_share.day_bucket = v_day - 1 then
        v_used := v_share.day_next_used; v_next := 0; v_prev := v_share.day_used;
      else
        v_used := 0; v_next := 0; v_prev := 0;
      end if;
      v_reserved_rpd := v_reserved_rpd + coalesce(v_share.reserved_rpd, 0);
      if v_share.owned then
        v_owned := v_owned || v_share.id;
        v_owned_win := v_owned_win || v_share.win;
        v_owned_used := v_owned_used || v_used;
        v_owned_next := v_owned_next || v_next;
        v_owned_prev := v_owned_prev || v_prev;
        if v_share.pace_burst is not null then
          -- Checked below, once the day shares of all owners are known.
          v_pace_burst := v_pace_burst || v_share.pace_burst;
          v_pace_kept := v_pace_kept || coalesce(v_share.reserved_rpd, 0);
          v_pace_used := v_pace_used || v_used;
          v_pace_next := v_pace_next || v_next;
        end if;
      else
        v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_share.win);
        v_held_rpd := v_held_rpd + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_used);
        v_held_next := v_held_next + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_next);
        v_held_prev := v_held_prev + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_prev);
      end if;
    end loop;

    -- Pacing: each paced share the requester owns must allow one more of the day (usable: the
    -- group's day less what other owners' shares keep). The refusal names when the last one allows.
    for i in 1 .. case when p_rpd is null then 0 else cardinality(v_pace_burst) end loop
      v_usable := p_rpd - (v_reserved_rpd - v_pace_kept[i]);
      if v_pace_used[i] + 1 > public.google_ai_pace_allowance(v_now, v_day, v_pace_burst[i], v_usable) then
        -- Today, else tomorrow (counting what the guard before midnight booked ahead), else later.
        v_at := coalesce(public.google_ai_pace_opens_at(v_day, v_pace_used[i], v_pace_burst[i], v_usable),
                         public.google_ai_pace_opens_at(v_day + 1, v_pace_next[i], v_pace_burst[i], v_usable),
                         ((v_day + 2)::timestamp at time zone 'America/Los_Angeles'));
        v_pace_at := greatest(v_pace_at, v_at);
      end if;
    end loop;

    v_window_full := (p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm)
                  or (p_tpm is not null and v_win_tokens + p_tokens > p_tpm);
    outcome := case
      when p_rpd is not null and (v_rpd_used + 1 > p_rpd - v_held_rpd
                                  or (v_near_end and v_rpd_next + 1 > p_rpd - v_held_next)
                                  or (v_near_start and v_rpd_prev + 1 > p_rpd - v_held_prev)) then 'rpd'
      when v_pace_at is not null then 'pace'
      when p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm then 'rpm'
      when p_tpm is not null and v_win_tokens + p_tokens > p_tpm then 'tpm'
      else 'booked' end;
    minute_bucket := v_minute;
    day_bucket := v_day;

    if outcome <> 'booked' then
      if outcome = 'rpd' then
        -- Today's count is spent until midnight, and the guard after it still counts yesterday's.
        reopens_at := case when v_near_end and v_rpd_used + 1 <= p_rpd - v_held_rpd
                           then public.google_ai_pacific_midnight_after(v_midnight) + v_day_guard
                           else v_midnight + v_day_guard end;
      else
        if v_window_full then
          reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, v_now, v_window, p_rpm, p_tpm,
            p_tokens, p_class, p_caller);
          if outcome = 'tpm' and exists (select 1 from public.google_ai_admissions a
                                         where a.quota_group = p_quota_group and a.model = p_model
                                           and a.in_flight and a.admitted_at > v_now - v_window) then
            recheck_at := v_now + v_guard.recheck_ms * interval '1 millisecond';
          end if;
        end if;
        if outcome = 'pace' then
          -- Paced until then, and the window must have room by then too.
          reopens_at := greatest(v_pace_at, reopens_at);
          recheck_at := null;
        end if;
      end if;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard, share_ids)
    values (coalesce(p_reservation_id, gen_random_uuid()), p_quota_group, p_model, v_now, p_tokens,
            case when v_near_end then 1 when v_near_start then -1 else 0 end,
            case when cardinality(v_owned) > 0 then v_owned end);

    if cardinality(v_owned) > 0 then
      insert into public.google_ai_share_usage as u (quota_group, share_id, window_requests, day_bucket, day_used,
        day_next_used, day_prev_used)
      select p_quota_group, o.id, o.win + 1, v_day, o.used + 1,
             o.next + case when v_near_end then 1 else 0 end, o.prev + case when v_near_start then 1 else 0 end
      from unnest(v_owned, v_owned_win, v_owned_used, v_owned_next, v_owned_prev) as o(id, win, used, next, prev)
      on conflict (quota_group, share_id) do update set
        window_requests = excluded.window_requests, day_bucket = excluded.day_bucket, day_used = excluded.day_used,
        day_next_used = excluded.day_next_used, day_prev_used = excluded.day_prev_used;
    end if;

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

-- Books on the first of p_groups that fits, waiting for each row lock in turn, as before, for the
-- requester (p_class, p_caller).
drop function if exists public.google_ai_book_waiting(text[], text, integer, integer, integer, integer, timestamptz, uuid);

create or replace function public.google_ai_book_waiting(
  p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer,
  p_tokens integer, p_now timestamptz, p_reservation_id uuid, p_class text, p_caller text,
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
      p_reservation_id, p_class, p_caller);
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

-- Books the request on the best candidate group that fits, as in 20261122010000_guarded_windows.sql,
-- for the requester: its class and caller reach the locked try (shares, pacing), and a service
-- caller's daily budget (p_client_id null) is checked first, its row locked before any counter row
-- (the order a Kaggle client's row is taken in), and booked with the admission. A request counts
-- on its first attempt; its estimated tokens on every admitted attempt (finalize reconciles them).
drop function if exists public.google_ai_book_best_group(text, integer, integer, integer, integer, uuid[], timestamptz, timestamptz, uuid);

create or replace function public.google_ai_book_best_group(
  p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[],
  p_now timestamptz, p_at timestamptz, p_reservation_id uuid,
  p_class text, p_caller text, p_client_id uuid, p_attempt integer,
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
      select * from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
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

-- Settling, as in 20261122010000_guarded_windows.sql, and a released admission gives its owner's use
-- of the shares back the same way it gives the window and the day back: the window count while the
-- admission is still in it, the day count when the share's day is still the booking's. Once the
-- admission left the window its shares are the ones its caller and class own now (a share created
-- since then loses a count it never had, floored at 0: its owner keeps more, never less).
create or replace function public.google_ai_settle_admission(
  p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
returns void
language plpgsql set search_path = ''
as $$
declare
  v_row public.google_ai_usage_counters;
  v_adm public.google_ai_admissions;
  v_delta bigint;
  v_shares bigint[];
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

  if p_released then
    v_shares := case when v_adm.reservation_id is not null then v_adm.share_ids
                     else (select array_agg(s.id) from public.google_ai_quota_shares s
                           where s.model = p_att.model
                             and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)) end;
    if cardinality(v_shares) > 0 then
      update public.google_ai_share_usage u set
        window_requests = case when v_adm.reservation_id is not null
                               then greatest(0, u.window_requests - 1) else u.window_requests end,
        day_used = case when u.day_bucket = p_att.day_bucket then greatest(0, u.day_used - 1) else u.day_used end,
        day_next_used = case when u.day_bucket = p_att.day_bucket and v_adm.day_guard = 1
                             then greatest(0, u.day_next_used - 1) else u.day_next_used end,
        day_prev_used = case when u.day_bucket = p_att.day_bucket and v_adm.day_guard = -1
                             then greatest(0, u.day_prev_used - 1) else u.day_prev_used end
      where u.quota_group = p_att.quota_group and u.share_id = any (v_shares);
    end if;
  end if;
end
$$;

-- Budgets follow the reservation's life cycle, as in 20261122000300_clients_and_tokens.sql (a token
-- and its client), and a service caller's budget too: finalize reconciles its tokens by
-- actual - estimate, release gives back what the reservation booked (on the booking's Pacific day).
create or replace function public.google_ai_adjust_token_budget(
  p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer)
returns void
language plpgsql set search_path = ''
as $$
begin
  if p_requests = 0 and p_tokens = 0 then
    return;
  end if;
  if p_attempt.token_id is not null then
    update public.google_ai_tokens t set
      requests_used = greatest(0, t.requests_used + p_requests),
      tokens_used = greatest(0, t.tokens_used + p_tokens)
    where t.id = p_attempt.token_id;
    update public.google_ai_clients c set
      requests_today = greatest(0, c.requests_today + p_requests),
      tokens_today = greatest(0, c.tokens_today + p_tokens)
    where c.id = p_attempt.client_id and c.day_bucket = public.google_ai_pacific_day(p_attempt.created_at);
  elsif p_attempt.client_id is null then
    update public.google_ai_caller_budgets b set
      requests_today = greatest(0, b.requests_today + p_requests),
      tokens_today = greatest(0, b.tokens_today + p_tokens)
    where b.caller = p_attempt.caller
      and b.day_bucket = coalesce(p_attempt.day_bucket, public.google_ai_pacific_day(p_attempt.created_at));
  end if;
end
$$;

-- The operator's views ----------------------------------------------------------------------------
-- Each share in each quota group that serves its model: what its owner used in the window and today,
-- what the share still keeps from the others, and for a paced owner what its pace allows by now.
create or replace view public.google_ai_shares_today
with (security_invoker = true) as
with clock as (
  select now() as at, (now() at time zone 'America/Los_Angeles')::date as day,
         (60000 + coalesce((select st.minute_guard_ms from public.google_ai_admission_settings st where st.id), 1000))
           * interval '1 millisecond' as window_length
), groups as (
  select distinct s.id as share_id, public.google_ai_quota_group(k.project_id, k.id) as quota_group
  from public.google_ai_quota_shares s
  join public.google_ai_api_keys k on k.is_active and (k.models is null or s.model = any (k.models))
), kept as (
  select s.model, sum(coalesce(s.reserved_rpd, 0))::integer as reserved_rpd from public.google_ai_quota_shares s group by s.model
)
select s.model,
       coalesce(s.priority_class, s.caller) as owner,
       case when s.priority_class is not null then 'class' else 'caller' end as owner_kind,
       g.quota_group,
       s.reserved_rpm,
       s.reserved_rpd,
       s.pace_burst,
       w.used_in_window,
       d.used_today,
       case when s.reserved_rpm is not null then greatest(0, s.reserved_rpm - w.used_in_window) end as rpm_kept_now,
       case when s.reserved_rpd is not null then greatest(0, s.reserved_rpd - d.used_today) end as rpd_kept_today,
       case when s.pace_burst is not null and l.rpd is not null then
         public.google_ai_pace_allowance(c.at, c.day, s.pace_burst, l.rpd - (kept.reserved_rpd - coalesce(s.reserved_rpd, 0)))
       end as pace_allows_today
from public.google_ai_quota_shares s
join groups g on g.share_id = s.id
join kept on kept.model = s.model
cross join clock c
left join public.google_ai_share_usage u on u.share_id = s.id and u.quota_group = g.quota_group
left join lateral (
  select public.google_ai_effective_limit(m.rpd, m.safety_margin) as rpd
  from public.google_ai_model_limits m where m.model = s.model) l on true
cross join lateral (
  select count(*)::int as used_in_window from public.google_ai_admissions a
  where a.quota_group = g.quota_group and a.model = s.model and s.id = any (a.share_ids)
    and a.admitted_at > c.at - c.window_length) w
cross join lateral (
  select case when u.day_bucket = c.day then u.day_used when u.day_bucket = c.day - 1 then u.day_next_used
              else 0 end as used_today) d;
comment on view public.google_ai_shares_today is
  'Reserved shares and pacing per quota group: the owner''s use in the window and today, what the share still '
  'keeps from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';

create or replace view public.google_ai_caller_budgets_today
with (security_invoker = true) as
select b.caller,
       b.daily_max_requests,
       case when b.day_bucket = (now() at time zone 'America/Los_Angeles')::date then b.requests_today else 0 end
         as requests_today,
       b.daily_max_tokens,
       case when b.day_bucket = (now() at time zone 'America/Los_Angeles')::date then b.tokens_today else 0 end
         as tokens_today,
       (((now() at time zone 'America/Los_Angeles')::date + 1)::timestamp at time zone 'America/Los_Angeles')
         as resets_at,
       b.notes
from public.google_ai_caller_budgets b;
comment on view public.google_ai_caller_budgets_today is
  'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';

-- Access (as in the access file: RLS on, nothing for the Data API roles; operators manage the rows) -
alter table public.google_ai_quota_shares enable row level security;
alter table public.google_ai_share_usage enable row level security;
alter table public.google_ai_caller_budgets enable row level security;
revoke all on table public.google_ai_quota_shares, public.google_ai_share_usage, public.google_ai_caller_budgets,
  public.google_ai_shares_today, public.google_ai_caller_budgets_today
  from anon, authenticated, service_role;
grant select, insert, update, delete on public.google_ai_quota_shares, public.google_ai_caller_budgets to service_role;
grant select on public.google_ai_share_usage, public.google_ai_shares_today, public.google_ai_caller_budgets_today
  to service_role;
do $$
declare
  v_seq text := pg_catalog.pg_get_serial_sequence('public.google_ai_quota_shares', 'id');
begin
  execute format('revoke all on sequence %s from anon, authenticated, service_role', v_seq);
  execute format('grant usage on sequence %s to service_role', v_seq);
end
$$;

do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_pace_allowance(timestamptz, date, integer, integer)',
    'public.google_ai_pace_opens_at(date, integer, integer, integer)',
    'public.google_ai_window_reopens_for(text, text, timestamptz, interval, integer, integer, integer, text, text)',
    'public.google_ai_share_room(text, text, timestamptz, interval, integer, text, text)',
    'public.google_ai_try_book(text, text, integer, integer, integer, integer, timestamptz, boolean, uuid, text, text)',
    'public.google_ai_book_waiting(text[], text, integer, integer, integer, integer, timestamptz, uuid, text, text)',
    'public.google_ai_book_best_group(text, integer, integer, integer, integer, uuid[], timestamptz, timestamptz, uuid, text, text, uuid, integer)',
    'public.google_ai_settle_admission(public.google_ai_attempts, integer, boolean)',
    'public.google_ai_adjust_token_budget(public.google_ai_attempts, integer, integer)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;
-- The pure pacing rule, for the operator's view (security_invoker: it runs as service_role).
grant execute on function public.google_ai_pace_allowance(timestamptz, date, integer, integer) to service_role;
