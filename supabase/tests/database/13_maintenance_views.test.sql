-- The usage views: current windows against limits, as the admission counts them (admissions that
-- left the sliding window count as nothing), cooldowns in force, the last 24 hours by caller; readable by service_role only.
begin;
create extension if not exists pgtap with schema extensions;
select plan(20);

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, safety_margin) values ('view-model', 10, 1000, 100, 0.1);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active, models) values
  ('a1', 'KEY_A1', 'proj-a', 1, true, array['view-model']),
  ('a2', 'KEY_A2', 'proj-a', 2, true, array['view-model']),
  ('b1', 'KEY_B1', 'proj-b', 1, true, array['view-model']),
  ('c1', 'KEY_C1', 'proj-c', 1, false, array['view-model']);
-- Usage booked as the admission books it (google_ai_book_group: the sliding window's ring, the day in
-- the zone of the model's provider).
-- The model's row as the request resolves it (google_ai_request_limits: its limits after the margin).
create function pg_temp.book(p_group text, p_model text, p_n integer, p_tokens integer, p_at timestamptz)
    returns text language plpgsql as $$
declare
  v_model public.google_ai_model_limits := public.google_ai_request_limits(p_model);
  v_request public.google_ai_request;  -- p_tokens, one request
  v_outcomes text[] := '{}';
begin
  v_request.model := p_model;
  v_request.estimated_tokens := p_tokens;
  v_request.requests := 1;
  for i in 1..p_n loop
    v_outcomes := v_outcomes || (public.google_ai_book_group(p_group, v_model, null::public.google_ai_priority_classes,
      null::public.google_ai_caller, v_request, p_at, false, public.google_ai_day_zone(p_model))).outcome;
  end loop;
  return array_to_string(v_outcomes, ',');
end $$;
-- (The shares the classes keep of every model are left out: the view is about the group's window.)
delete from public.google_ai_quota_shares where model = 'view-model';
select pg_temp.book('proj-a', 'view-model', 3, 100, now());
-- booked two minutes ago: out of the window now, the day's count still stands
select pg_temp.book('proj-b', 'view-model', 7, 100, now() - interval '2 minutes');
-- a group whose only key is inactive, used yesterday
select pg_temp.book('proj-c', 'view-model', 1, 10, now() - interval '1 day');
insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, quota_id) values
  ('proj-b', 'view-model', now() + interval '42 seconds', 'rate_limited', 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier'),
  ('proj-a', 'view-model', now() - interval '1 second', 'over', null);

select is((select (active_keys, key_aliases, rpm_used, rpm_limit, rpm_left, tpm_used, tpm_limit, tpm_left, rpd_used, rpd_limit, state)::text
           from public.google_ai_usage_now where quota_group = 'proj-a' and model = 'view-model'),
  '(2,"{a1,a2}",3,9,6,300,900,600,3,90,open)', 'a group in use: its sliding window and day against the limits after the 10% margin');
-- (in the first two minutes of a Pacific day, those seven were yesterday's)
select is((select (rpm_used, tpm_used, rpm_left, rpd_used, rpd_left)::text from public.google_ai_usage_now where quota_group = 'proj-b'),
  case when public.google_ai_pacific_day(now() - interval '2 minutes') = public.google_ai_pacific_day(now())
       then '(0,0,0,7,83)' else '(0,0,0,0,90)' end, 'admissions that left the window count as nothing; the day still counts; a cooldown leaves nothing to book');
select is((select (state, cooldown_reason)::text from public.google_ai_usage_now where quota_group = 'proj-b'),
  '(cooldown,rate_limited)', 'a cooldown in force shows, and is what would refuse a request now');
select is((select (active_keys, rpd_used, state)::text from public.google_ai_usage_now where quota_group = 'proj-c'),
  '(0,0,no_active_key)', 'a group without an active key: yesterday''s count is not today''s');
select ok((select minute_resets_at between now() + interval '59 seconds' and now() + interval '62 seconds'
           from public.google_ai_usage_now where quota_group = 'proj-a'),
  'the window frees room when its first admission leaves it (60 s and the guard after it)');
select is((select day_resets_at at time zone 'America/Los_Angeles' from public.google_ai_usage_now where quota_group = 'proj-a'),
  ((now() at time zone 'America/Los_Angeles')::date + 1)::timestamp, 'the day resets at the next Pacific midnight');

select is(pg_temp.book('proj-a', 'view-model', 6, 50, now()), 'booked,booked,booked,booked,booked,booked', 'six more fit');
select is((select (state, rpm_left, minute_resets_at > now())::text from public.google_ai_usage_now where quota_group = 'proj-a'),
  '(rpm,0,t)', 'a full window shows as rpm, with room again when its first admission leaves');

-- What the view shows left is what the next request can book: one token more is refused, that many fit.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, safety_margin) values ('view-tokens', 10, 1000, 100, 0);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active, models) values
  ('d1', 'KEY_D1', 'proj-d', 1, true, array['view-tokens']);
delete from public.google_ai_quota_shares where model = 'view-tokens';
select pg_temp.book('proj-d', 'view-tokens', 1, 700, now());
select is((select (tpm_used, tpm_left)::text from public.google_ai_usage_now where quota_group = 'proj-d'), '(700,300)',
  'tokens used and left in the window');
select is(pg_temp.book('proj-d', 'view-tokens', 1, 301, now()), 'tpm', 'one token more than shown left is refused');
select is(pg_temp.book('proj-d', 'view-tokens', 1, 300, now()), 'booked', 'what is shown left is booked');

select is((select array_agg(quota_group) from public.google_ai_cooldowns_active where model = 'view-model'), array['proj-b'],
  'only cooldowns in force are listed');
select is((select (key_aliases, seconds_left between 1 and 42)::text from public.google_ai_cooldowns_active where quota_group = 'proj-b'),
  '({b1},t)', 'with the keys they hold back and the seconds left');

-- The last 24 hours by caller.
insert into public.google_ai_attempts (status, caller, model, request_id, attempt, limit_hit, input_tokens, output_tokens, created_at) values
  ('upstream_error', 'view-bot', 'view-model', 'r1', 1, null, null, null, now() - interval '1 hour'),
  ('succeeded', 'view-bot', 'view-model', 'r1', 2, null, 120, 30, now() - interval '1 hour'),
  ('succeeded', 'view-bot', 'view-model', 'r2', 1, null, 80, 20, now() - interval '2 hours'),
  ('refused', 'view-bot', 'view-model', 'r3', 1, 'rpm', null, null, now() - interval '3 hours'),
  ('refused', 'view-bot', 'view-model', 'r4', 1, 'rpd', null, null, now() - interval '3 hours'),
  ('succeeded', 'view-bot', 'view-model', 'old', 1, null, 1000, 1000, now() - interval '25 hours'),
  ('refused', 'client:kaggle', 'view-model', 'k1', 1, 'cooldown', null, null, now() - interval '5 minutes');
select is((select (requests, attempts, succeeded, failed, refused, refused_rpm, refused_rpd)::text
           from public.google_ai_usage_by_caller_24h where caller = 'view-bot'),
  '(4,5,2,1,2,1,1)', 'requests (distinct), attempts by outcome and refusals by limit for the last 24 hours');
select is((select (input_tokens, output_tokens, total_tokens)::text from public.google_ai_usage_by_caller_24h where caller = 'view-bot'),
  '(200,50,250)', 'tokens of successful calls; the attempt from 25 hours ago is out');
select is((select refused_cooldown from public.google_ai_usage_by_caller_24h where caller = 'client:kaggle'), 1,
  'each caller has its own row');

-- Access.
select is((select count(*)::int from pg_class where relname in ('google_ai_usage_now', 'google_ai_cooldowns_active', 'google_ai_usage_by_caller_24h')
           and reloptions @> array['security_invoker=true']), 3, 'the views run with their caller''s rights');
set local role service_role;
select lives_ok($$ select * from public.google_ai_usage_now, public.google_ai_cooldowns_active, public.google_ai_usage_by_caller_24h $$,
  'service_role can read the views');
reset role;
set local role anon;
select throws_ok($$ select * from public.google_ai_usage_now $$, '42501', null, 'anon cannot read the usage view');
reset role;
set local role authenticated;
select throws_ok($$ select * from public.google_ai_usage_by_caller_24h $$, '42501', null, 'authenticated cannot read the caller view');
reset role;

select * from finish();
rollback;
