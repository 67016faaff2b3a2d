-- Reserved shares, pacing and service callers' budgets, with the clock injected: what others may book
-- of a share, the exact times refusals name (a share's window, the pace through a whole Pacific day,
-- DST included), capacity given back by release, and the rows' access.
begin;
create extension if not exists pgtap with schema extensions;
select plan(59);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

-- The shares here are the test's own: without the default share of `interactive`.
update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null;

delete from public.google_ai_api_keys;
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values ('s1', 'KEY_S1', 'proj-s', 1);
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values
  ('day-model', null, null, 20), ('minute-model', 5, null, null), ('paced-model', null, null, 96),
  ('dst-model', null, null, 100);

-- One request: p_class null is the credential's class (a service caller's: interactive).
create function pg_temp.a(p_model text, p_at text, p_caller text, p_class text default null) returns jsonb
language sql as $$
  select pg_temp.reserve_at(p_now => p_at::timestamptz, p_models => array[p_model], p_estimated_tokens => 10,
    p_caller => p_caller, p_request_id => null, p_priority => p_class)
$$;
-- Books until refused; how many were admitted.
create function pg_temp.fill(p_model text, p_at text, p_caller text, p_class text default null) returns integer
language plpgsql as $$
declare n integer := 0;
begin
  while (pg_temp.a(p_model, p_at, p_caller, p_class) ->> 'ok')::boolean loop
    n := n + 1;
  end loop;
  return n;
end $$;

-- docs/keys-and-shares.md's example, as one insert.
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd) values ('day-model', 'interactive', 8);

-- A day share against a batch flood ------------------------------------------------------------------
select is(pg_temp.fill('day-model', '2026-11-23 18:00:00+00', 'notebook', 'batch'), 12,
  'batch books 12 of 20: the 8 kept for interactive are not its');
select is(pg_temp.a('day-model', '2026-11-23 18:00:01+00', 'notebook', 'batch') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpd', 'cause', 'share_kept', 'retry_after_ms', 50404000,
                     'retry_at', '2026-11-24T08:00:05+00:00'),
  'the refusal is rpd, until Pacific midnight plus the day guard');
select is(pg_temp.fill('day-model', '2026-11-23 18:00:02+00', 'bot'), 8, 'the bot still gets its 8');
select is((select (u.day_used, u.window_requests)::text
           from public.google_ai_usage_counters c, unnest(c.share_use) u), '(8,8)',
  'the owner''s use is counted on its share''s row');
select is((select (rpd_used)::text from public.google_ai_usage_counters where model = 'day-model'), '20',
  'the day holds exactly its limit');

-- Release gives the owner's count back, as the day gets its request back.
select ok((public.google_ai_release((select a.reservation_id from public.google_ai_attempts a
  where a.model = 'day-model' and a.caller = 'bot' and a.status = 'reserved' order by a.id limit 1), 'test') ->> 'ok')::boolean,
  'one of the bot''s reservations is released');
select is((select (u.day_used, u.window_requests)::text
           from public.google_ai_usage_counters c, unnest(c.share_use) u), '(7,7)',
  'the release gave the owner''s use back in the day and the window');
select ok(not (pg_temp.a('day-model', '2026-11-23 18:00:03+00', 'notebook', 'batch') ->> 'ok')::boolean,
  'the slot given back is still the share''s: batch is refused');
select ok((pg_temp.a('day-model', '2026-11-23 18:00:04+00', 'bot') ->> 'ok')::boolean, 'the bot takes it');
select ok((public.google_ai_release((select a.reservation_id from public.google_ai_attempts a
  where a.model = 'day-model' and a.caller = 'notebook' and a.status = 'reserved' order by a.id limit 1), 'test') ->> 'ok')::boolean,
  'a batch reservation is released');
select ok((pg_temp.a('day-model', '2026-11-23 18:00:05+00', 'notebook', 'batch') ->> 'ok')::boolean,
  'and batch may book it again');
select is(pg_temp.fill('day-model', '2026-11-24 08:00:05+00', 'notebook', 'batch'), 12,
  'the next Pacific day (after the guard) keeps the share again: batch books 12');

-- Two owners: a class and one caller; each books what the other's share leaves.
insert into public.google_ai_quota_shares (model, caller, reserved_rpd) values ('day-model', 'notebook-a', 2);
select is(pg_temp.fill('day-model', '2026-11-25 18:00:00+00', 'notebook-b', 'batch'), 10,
  'a caller owning no share books what both shares leave (20 - 8 - 2)');
select is(pg_temp.fill('day-model', '2026-11-25 18:00:01+00', 'notebook-a', 'batch'), 2, 'the caller with a share books its own 2');
select is(pg_temp.fill('day-model', '2026-11-25 18:00:02+00', 'bot'), 8, 'the class with a share books its own 8');
delete from public.google_ai_quota_shares where caller = 'notebook-a';

-- A minute share: exact reopening ------------------------------------------------------------------
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm) values ('minute-model', 'interactive', 2);
select is(pg_temp.fill('minute-model', '2026-11-23 10:00:00+00', 'notebook', 'batch'), 3, 'batch books 3 of the 5 a minute');
select is(pg_temp.a('minute-model', '2026-11-23 10:00:01+00', 'notebook', 'batch') ->> 'retry_at', '2026-11-23T10:01:01+00:00',
  'batch is refused until its oldest admission leaves the window (60 s + 1 s guard)');
select is(pg_temp.fill('minute-model', '2026-11-23 10:00:02+00', 'bot'), 2, 'the bot books the 2 kept for it');
select is(pg_temp.a('minute-model', '2026-11-23 10:00:03+00', 'bot') ->> 'retry_at', '2026-11-23T10:01:01+00:00',
  'the full window refuses the bot too, until the oldest admission leaves');
-- The bot's two admissions leave first in the next window: they give the bot room, not batch.
select ok((pg_temp.a('minute-model', '2026-11-23 10:02:00+00', 'bot') ->> 'ok')::boolean
          and (pg_temp.a('minute-model', '2026-11-23 10:02:00+00', 'bot') ->> 'ok')::boolean, 'a window later the bot books 2 first');
select is(pg_temp.fill('minute-model', '2026-11-23 10:02:01+00', 'notebook', 'batch'), 3, 'then batch 3');
select is(pg_temp.a('minute-model', '2026-11-23 10:02:02+00', 'notebook', 'batch') ->> 'retry_at', '2026-11-23T10:03:02+00:00',
  'batch''s refusal names when its own first admission leaves, not the bot''s earlier ones');
select is(pg_temp.a('minute-model', '2026-11-23 10:03:01.5+00', 'notebook', 'batch') ->> 'retry_at', '2026-11-23T10:03:02+00:00',
  'after the bot''s admissions left, the slots are the share''s again: batch still waits');
select ok((pg_temp.a('minute-model', '2026-11-23 10:03:02+00', 'notebook', 'batch') ->> 'ok')::boolean,
  'batch is admitted at the time it was named');
select is((select (public.google_ai_ring_at('2026-11-23 10:03:02+00', interval '61 s', u.ring_low, u.ring,
             u.window_requests, null)).sum_requests
           from public.google_ai_usage_counters c cross join lateral unnest(c.share_use) u
           join public.google_ai_quota_shares s on s.id = u.share_id
           where s.model = 'minute-model'), 0, 'the owner''s window count left with its admissions');

-- What the queue counts: in a window where the bot's admissions leave first, each waiter's turn is
-- when a slot opens for it.
select ok((pg_temp.a('minute-model', '2026-11-23 10:05:00+00', 'bot') ->> 'ok')::boolean
          and (pg_temp.a('minute-model', '2026-11-23 10:05:00+00', 'bot') ->> 'ok')::boolean
          and pg_temp.fill('minute-model', '2026-11-23 10:05:01+00', 'notebook', 'batch') = 3, 'the bot 2, then batch 3');
-- A WAIT request refused by a share learns the share's opening as its turn.
select is(pg_temp.reserve_at(p_now => '2026-11-23 10:05:03+00', p_models => array['minute-model'], p_estimated_tokens => 10,
            p_caller => 'notebook', p_request_id => null, p_priority => 'batch', p_wait_left_ms => 600000) -> 'queue' ->> 'expected_at',
  '2026-11-23T10:06:02+00:00', 'a batch waiter''s turn is when a slot opens for batch, not when the bot''s admissions leave');
delete from public.google_ai_queue;
select is(pg_temp.reserve_at(p_now => '2026-11-23 10:05:03+00', p_models => array['minute-model'], p_estimated_tokens => 10,
            p_caller => 'bot', p_request_id => null, p_priority => 'interactive', p_wait_left_ms => 600000) -> 'queue' ->> 'expected_at',
  '2026-11-23T10:06:01+00:00', 'the bot''s turn is when its own first admission leaves');
delete from public.google_ai_queue;

-- Pacing through a Pacific day ----------------------------------------------------------------------
-- paced-model: 96 a day, batch paced with a burst of 2: one more request every 15 minutes.
insert into public.google_ai_quota_shares (model, priority_class, pace_burst) values ('paced-model', 'batch', 2);
select is(pg_temp.fill('paced-model', '2026-11-23 08:00:10+00', 'notebook', 'batch'), 2, 'at the start of the day: the burst');
select is(pg_temp.a('paced-model', '2026-11-23 08:00:11+00', 'notebook', 'batch') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'pace', 'cause', 'pace', 'retry_after_ms', 889000,
    'retry_at', '2026-11-23T08:15:00+00:00'),
  'a paced refusal names the moment the pace allows the next request (a 96th of the day after midnight)');
select ok(not (pg_temp.a('paced-model', '2026-11-23 08:14:59.999+00', 'notebook', 'batch') ->> 'ok')::boolean,
  'a millisecond before it: refused');
select ok((pg_temp.a('paced-model', '2026-11-23 08:15:00+00', 'notebook', 'batch') ->> 'ok')::boolean, 'at it: admitted');
select is(pg_temp.fill('paced-model', '2026-11-23 09:00:00+00', 'bot'), 93, 'the pace is batch''s: the bot may use the rest of the day');

-- A whole day in steps of 7 minutes: after each step's fill, batch has used exactly what the pace
-- allows (burst + floor(usable x elapsed part of the day)), and every refusal named the exact time.
create function pg_temp.walk(p_model text, p_day date, p_step interval, p_burst integer, p_usable integer)
returns text language plpgsql as $$
declare
  v_start timestamptz := p_day::timestamp at time zone 'America/Los_Angeles';
  v_end timestamptz := (p_day + 1)::timestamp at time zone 'America/Los_Angeles';
  v_len numeric := extract(epoch from v_end - v_start);
  v_next_len numeric := extract(epoch from ((p_day + 2)::timestamp at time zone 'America/Los_Angeles') - v_end);
  v_at timestamptz := v_start + interval '1 second';
  v_used integer := 0;
  v_expected integer;
  v_refusal jsonb;
  v_bad integer := 0;
  v_steps integer := 0;
begin
  while v_at < v_end loop
    v_used := v_used + pg_temp.fill(p_model, v_at::text, 'notebook', 'batch');
    v_expected := least(p_usable, p_burst + floor(p_usable * extract(epoch from v_at - v_start) / v_len)::integer);
    v_refusal := pg_temp.a(p_model, v_at::text, 'notebook', 'batch');
    if v_used <> v_expected then
      v_bad := v_bad + 1;
    elsif v_used < p_usable and ((v_refusal ->> 'retry_at')::timestamptz <> case
            when v_used + 1 - p_burst < p_usable
            then v_start + ceil((v_used + 1 - p_burst) * v_len * 1000000 / p_usable) * interval '1 microsecond'
            -- Not today: the next day's first request (its burst, else a usable-th of that day).
            else v_end + greatest(0, ceil((1 - p_burst) * v_next_len * 1000000 / p_usable)) * interval '1 microsecond' end
          or v_refusal ->> 'limit' <> 'pace') then
      v_bad := v_bad + 1;
    end if;
    v_steps := v_steps + 1;
    v_at := v_at + p_step;
  end loop;
  return format('%s steps, %s used, %s wrong', v_steps, v_used, v_bad);
end $$;

delete from public.google_ai_usage_counters;
select is(pg_temp.walk('paced-model', '2026-11-24', interval '7 minutes', 2, 96), '206 steps, 96 used, 0 wrong',
  'a 24-hour day walked in 7-minute steps: the pace holds at every step and names every opening exactly');
select is(pg_temp.fill('paced-model', '2026-11-25 08:00:05+00', 'notebook', 'batch'), 2,
  'after Pacific midnight (and its guard) the next day''s burst is there');

-- The day DST starts (2026-03-08, 23 hours) and the day it ends (2026-11-01, 25 hours). With no
-- burst the 100th request is the next day's: the day's allowance reaches it only at its end.
insert into public.google_ai_quota_shares (model, priority_class, pace_burst) values ('dst-model', 'batch', 0);
select is(pg_temp.walk('dst-model', '2026-03-08', interval '10 minutes', 0, 100), '138 steps, 99 used, 0 wrong',
  'the 23-hour day: 100 spread over 23 hours');
select is(pg_temp.a('dst-model', '2026-03-09 07:00:00+00', 'notebook', 'batch') ->> 'retry_at', '2026-03-09T07:14:24+00:00',
  'the next (24-hour) day starts at 07:00 UTC, its first request a 100th of a day later');
select is(pg_temp.walk('dst-model', '2026-11-01', interval '10 minutes', 0, 100), '150 steps, 99 used, 0 wrong',
  'the 25-hour day: 100 spread over 25 hours');
select is(pg_temp.a('dst-model', '2026-11-02 07:59:59+00', 'notebook', 'batch') ->> 'retry_at', '2026-11-02T08:14:24+00:00',
  'its last second: the next request is the next day''s first, a 100th of a 24-hour day after 08:00 UTC');

-- A day share and pacing together: the pace spreads what the shares leave batch.
delete from public.google_ai_usage_counters;
update public.google_ai_quota_shares set pace_burst = 1 where model = 'dst-model';
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd) values ('dst-model', 'interactive', 52);
select is(pg_temp.walk('dst-model', '2026-11-24', interval '10 minutes', 1, 48), '144 steps, 48 used, 0 wrong',
  'batch, paced with a burst of 1, spreads the 48 the bot''s 52 leave over the day');

-- Service callers' budgets -------------------------------------------------------------------------
insert into public.google_ai_caller_budgets (caller, daily_max_requests, daily_max_tokens) values ('cron', 3, 25);
select ok((pg_temp.a('day-model', '2026-11-26 18:00:00+00', 'cron') ->> 'ok')::boolean, 'a budgeted caller books');
select ok((pg_temp.a('day-model', '2026-11-26 18:00:01+00', 'cron') ->> 'ok')::boolean, 'and again (20 of its 25 tokens)');
select is(pg_temp.a('day-model', '2026-11-26 18:00:02+00', 'cron') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'caller_budget', 'cause', 'budget', 'retry_after_ms', 50398000,
                     'retry_at', '2026-11-27T08:00:00+00:00', 'period', 'day'),
  'a third would pass its daily tokens: caller_budget until Pacific midnight, naming its period');
select is((select (limit_hit, caller)::text from public.google_ai_attempts where status = 'refused' order by id desc limit 1),
  '(caller_budget,cron)', 'the refusal is in the attempt log');
select ok((public.google_ai_finalize((select a.reservation_id from public.google_ai_attempts a
  where a.caller = 'cron' and a.status = 'reserved' order by a.id limit 1),
  '{"kind": "succeeded", "input_tokens": 4, "output_tokens": 1}'::jsonb) ->> 'ok')::boolean,
  'finalize: Google counted 4 input tokens');
select ok((pg_temp.a('day-model', '2026-11-26 18:00:03+00', 'cron') ->> 'ok')::boolean,
  'the tokens given back by finalize make room: 4 + 10 + 10 fit in 25');
select is((select (requests_today, tokens_today)::text from public.google_ai_caller_budgets where caller = 'cron'), '(3,24)',
  'the budget row counts 3 requests and 24 tokens');
select is(pg_temp.a('day-model', '2026-11-26 18:00:04+00', 'cron', null) ->> 'limit', 'caller_budget', 'its 3 requests are used up');
select ok((public.google_ai_release((select a.reservation_id from public.google_ai_attempts a
  where a.caller = 'cron' and a.status = 'reserved' order by a.id desc limit 1), 'test') ->> 'ok')::boolean,
  'a release ...');
select is((select (requests_today, tokens_today)::text from public.google_ai_caller_budgets where caller = 'cron'), '(2,14)',
  '... gives its request and tokens back');
update public.google_ai_caller_budgets set daily_max_requests = 1 where caller = 'cron';
select is(pg_temp.reserve_at(p_now => '2026-11-26 18:00:05+00', p_models => array['day-model'],
            p_estimated_tokens => 0, p_caller => 'cron', p_request_id => null, p_attempt => 2) ->> 'limit',
  'caller_budget', 'a budget lowered below today''s use refuses a retry too, though a retry adds no request');
update public.google_ai_caller_budgets set daily_max_requests = 3 where caller = 'cron';
select ok((pg_temp.a('day-model', '2026-11-27 08:00:00+00', 'cron') ->> 'ok')::boolean, 'the budget starts again at Pacific midnight');
select throws_ok($$ insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('client:x', 1) $$, '23514', null,
  'a Kaggle client''s budget is on its client row, not here');

-- A reservation without its admission's time (a row from before admitted_at was written) gives its day
-- back on release, in its owner's share too, and is not looked for in the window.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('legacy-model', 5, null, 10);
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm, reserved_rpd)
  values ('legacy-model', 'interactive', 2, 3);
select ok((pg_temp.a('legacy-model', '2026-11-27 09:00:00+00', 'bot') ->> 'ok')::boolean, 'the bot books on legacy-model');
update public.google_ai_attempts set admitted_at = null where model = 'legacy-model';
select ok((public.google_ai_release((select a.reservation_id from public.google_ai_attempts a where a.model = 'legacy-model'),
  'test') ->> 'ok')::boolean, 'a reservation without its admission''s time is released');
select is((select (u.day_used, u.window_requests)::text
           from public.google_ai_usage_counters c, unnest(c.share_use) u where c.model = 'legacy-model'), '(0,1)',
  'its owner''s day is given back; its window is not looked in');

-- Access --------------------------------------------------------------------------------------------
select ok(has_table_privilege('service_role', 'public.google_ai_quota_shares', 'insert, update, delete')
          and has_table_privilege('service_role', 'public.google_ai_caller_budgets', 'insert, update, delete'),
  'service_role manages shares and budgets');
select ok(has_table_privilege('service_role', 'public.google_ai_usage_counters', 'select')
          and not has_table_privilege('service_role', 'public.google_ai_usage_counters', 'insert, update, delete'),
  'service_role reads the owners'' use (on the counter rows), never writes it');
set local role service_role;
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd) values ('gemini-2.5-flash', 'interactive', 8);
select is((select (owner, quota_group, rpd_kept_today)::text from public.google_ai_shares_today where model = 'gemini-2.5-flash'),
  '(interactive,proj-s,8)', 'as service_role: a share is one insert, and the view shows what it keeps today per quota group');
reset role;

select * from finish();
rollback;
