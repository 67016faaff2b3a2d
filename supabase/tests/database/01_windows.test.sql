-- Windows: minute windows start at :00; the day is the Pacific calendar day, DST included.
begin;
create extension if not exists pgtap with schema extensions;
select plan(10);

select is(public.google_ai_minute_window('2026-11-21 10:15:42.5+00'), '2026-11-21 10:15:00+00'::timestamptz,
  'a minute window starts at second :00');
select is(public.google_ai_minute_window('2026-11-21 10:15:00+00'), '2026-11-21 10:15:00+00'::timestamptz,
  'second :00 belongs to the minute it starts');

-- 07:59:59 UTC is 23:59:59 PST of the day before.
select is(public.google_ai_pacific_day('2026-11-21 07:59:59+00'), '2026-11-20'::date,
  'one second before Pacific midnight (PST) is still the previous Pacific day');
select is(public.google_ai_pacific_day('2026-11-21 08:00:00+00'), '2026-11-21'::date,
  'Pacific midnight (PST, UTC-8) starts the new day');
select is(public.google_ai_pacific_day('2026-07-01 07:00:00+00'), '2026-07-01'::date,
  'Pacific midnight in summer (PDT, UTC-7) starts the new day');

select is(public.google_ai_pacific_midnight_after('2026-11-21 12:00:00+00'), '2026-11-22 08:00:00+00'::timestamptz,
  'next Pacific midnight in winter is 08:00 UTC');
-- DST starts 2026-03-08 at 02:00 PST: that day has 23 hours.
select is(public.google_ai_pacific_midnight_after('2026-03-08 09:00:00+00'), '2026-03-09 07:00:00+00'::timestamptz,
  'on the spring-forward day the next midnight is 23 hours after the last');
select is(public.google_ai_pacific_midnight_after('2026-03-08 09:00:00+00') - '2026-03-08 08:00:00+00'::timestamptz,
  interval '23 hours', 'the spring-forward Pacific day lasts 23 hours');
-- DST ends 2026-11-01 at 02:00 PDT: that day has 25 hours.
select is(public.google_ai_pacific_midnight_after('2026-11-01 12:00:00+00') - '2026-11-01 07:00:00+00'::timestamptz,
  interval '25 hours', 'the fall-back Pacific day lasts 25 hours');

select is(public.google_ai_effective_limit(10, 0.2), 8, 'a 20% safety margin admits 80% of the limit');

select * from finish();
rollback;
