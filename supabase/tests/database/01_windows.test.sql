-- Windows: minute windows start at :00; the day is the Pacific calendar day, DST included; the ring
-- of seconds keeps working after 2038 (epoch seconds past 2^31).
begin;
create extension if not exists pgtap with schema extensions;
select plan(13);

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

-- After 2038-01-19 an epoch second no longer fits an integer: the ring's walks count offsets.
create temp table ring_2040 as
select (public.google_ai_ring_at('2040-01-01 00:00:00.25+00', interval '61 s', null, null, 0, 0, 1, 5)).*;
update ring_2040 r set (ring_low, ring, sum_requests, sum_tokens) = (select n.ring_low, n.ring, n.sum_requests, n.sum_tokens
  from public.google_ai_ring_at('2040-01-01 00:00:30+00', interval '61 s', r.ring_low, r.ring, r.sum_requests,
    r.sum_tokens, 1, 5) n);
select is((select sum_requests from ring_2040), 2, 'in 2040 the ring counts two admissions 30 s apart');
select is((select public.google_ai_ring_frees_at(ring_low, ring, interval '61 s') from ring_2040),
  '2040-01-01 00:01:01.25+00'::timestamptz, 'and names when the first leaves: its time plus the guarded window');
select is((select (public.google_ai_ring_at('2040-01-01 00:01:40+00', interval '61 s', ring_low, ring, sum_requests,
             sum_tokens)).sum_requests from ring_2040), 0, 'and lets both go once they left the window');

select * from finish();
rollback;
