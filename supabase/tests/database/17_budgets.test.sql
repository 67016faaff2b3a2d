-- One budget shape for a token (its life), a client and a service caller (a Pacific day and month):
-- the roll-over, the verdict, the counting step and what is left, on the owners' own rows.
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

-- At 2026-06-10 12:00 Pacific (19:00 UTC): the client's counts are of yesterday, its month's spend of
-- this month; the caller's month's spend is of May.
insert into public.google_ai_clients (name, secret_hash, models, daily_max_requests, daily_max_tokens, day_bucket,
  requests_today, tokens_today, daily_max_usd, month_bucket, monthly_max_usd, spent_month_usd, spent_today_usd)
values ('budget-client', 'budget-secret', '{m}', 10, 1000, '2026-06-09', 9, 900, 1.00, '2026-06-01', 5.00, 4.50, 0.20);
insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_tokens, requests_used, tokens_used,
  max_usd, spent_usd)
select c.id, 'budget-token', '{m}', now(), 10, 3, 3, 0.50, 0.40 from public.google_ai_clients c
where c.name = 'budget-client';
insert into public.google_ai_caller_budgets (caller, daily_max_requests, day_bucket, requests_today, tokens_today,
  month_bucket, monthly_max_usd, spent_month_usd, spent_today_usd)
values ('budget-bot', 2, '2026-06-10', 2, 50, '2026-05-01', 40, 30, 1);
create temp table b as
select (select public.google_ai_budget_of(c) from public.google_ai_clients c where c.name = 'budget-client') as client,
       (select public.google_ai_budget_of(t) from public.google_ai_tokens t where t.token_hash = 'budget-token') as token,
       (select public.google_ai_budget_of(s) from public.google_ai_caller_budgets s where s.caller = 'budget-bot') as caller;

select is((select (public.google_ai_budget_on(client, date '2026-06-10')).requests from b), 0,
  'a day''s counts are of their day: none on the next');
select is((select (public.google_ai_budget_on(client, date '2026-06-10')).spent_month_usd from b), 4.50,
  'the month''s spend stays within its month');
select is((select (public.google_ai_budget_on(caller, date '2026-06-10')).spent_month_usd from b), 0::numeric,
  'and is none in another month');
select is((select (public.google_ai_budget_on(token, date '2030-01-01')).requests from b), 3,
  'a token''s counts are of its life, never rolled over');

select is((select row(v.cause, v.period, v.reopens_at)::text
           from b, public.google_ai_budget_verdict(caller, '2026-06-10 19:00+00', 1, 10, 0.01) v),
  row('budget', 'day', timestamptz '2026-06-11 07:00+00')::text,
  'a service caller''s third request of a 2 a day: refused until Pacific midnight');
select is((select row(v.cause, v.period, v.reopens_at)::text
           from b, public.google_ai_budget_verdict(client, '2026-06-10 19:00+00', 0, 10, 0.60) v),
  row('spend_budget', 'month', timestamptz '2026-07-01 07:00+00')::text,
  'a client''s call past its month''s money: refused until the next Pacific month');
select is((select row(v.cause, v.period, v.reopens_at)::text
           from b, public.google_ai_budget_verdict(client, '2026-06-10 19:00+00', 0, 10, null) v),
  row('spend_budget', 'day', null)::text, 'a price not known is refused by the day''s money, never reopening');
select is((select row(v.cause, v.period, v.reopens_at)::text
           from b, public.google_ai_budget_verdict(caller, '2026-06-10 19:00+00', 0, 10, null) v),
  row('spend_budget', 'month', null)::text, 'and by the month''s where the day has none');
select is((select row(v.cause, v.period, v.reopens_at)::text
           from b, public.google_ai_budget_verdict(token, '2026-06-10 19:00+00', 0, 5, 0.20) v),
  row('spend_budget', 'life', null)::text, 'a token''s money is of its life, never reopening');
select is((select row(v.cause, v.period)::text
           from b, public.google_ai_budget_verdict(client, '2026-06-10 19:00+00', 1, 10, 0.05) v),
  row(null, null)::text, 'a client''s new day lets a call in that fits its day and month');

select is((select row(n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd)::text
           from b, public.google_ai_budget_counted(client, date '2026-06-10', 1, 10, 0.05, true) n),
  row(date '2026-06-10', 1, 10, 0.05, date '2026-06-01', 4.55)::text,
  'a booking starts a new day''s counts and adds to the month''s');
select is((select row(n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd)::text
           from b, public.google_ai_budget_counted(caller, date '2026-06-10', 1, 10, 0.05, true) n),
  row(date '2026-06-10', 3, 60, 1.05, date '2026-06-01', 0.05)::text,
  'a booking on the same day adds to it, and starts a new month''s spend');
select is((select row(n.bucket, n.requests, n.tokens, n.spent_usd, n.spent_month_usd)::text
           from b, public.google_ai_budget_counted(client, date '2026-06-10', -1, -10, -0.05, false) n),
  row(date '2026-06-09', 9, 900, 0.20, 4.45)::text,
  'an end moves only the day and month its booking counted in');
select is((select row(n.requests, n.tokens, n.spent_usd)::text
           from b, public.google_ai_budget_counted(token, date '2026-06-10', -5, -10, -0.50, false) n),
  row(0, 0, 0)::text, 'never below nothing');

select is((select row(l.requests, l.tokens, l.usd, l.month_usd)::text
           from b, public.google_ai_budget_left(caller, date '2026-06-10') l),
  row(0, null, null, 40)::text, 'what is left: none of a spent count, null where there is no limit');
select is((select row(l.requests, l.tokens, l.usd)::text
           from b, public.google_ai_budget_left(token, date '2026-06-10') l),
  row(null, 7, 0.10)::text, 'a token''s left of its life');

select * from finish();
rollback;
