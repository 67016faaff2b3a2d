-- The usage views: current windows against limits (a row from an older minute counts as nothing
-- used now), cooldowns in force, the last 24 hours by caller; readable by service_role only.
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, safety_margin) values ('view-model', 10, 1000, 100, 0.1);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active, models) values
  ('a1', 'KEY_A1', 'proj-a', 1, true, array['view-model']),
  ('a2', 'KEY_A2', 'proj-a', 2, true, array['view-model']),
  ('b1', 'KEY_B1', 'proj-b', 1, true, array['view-model']),
  ('c1', 'KEY_C1', 'proj-c', 1, false, array['view-model']);
insert into public.google_ai_usage_counters (quota_group, model, minute_bucket, day_bucket, rpm_used, tpm_used, rpd_used) values
  ('proj-a', 'view-model', date_trunc('minute', now(), 'UTC'), (now() at time zone 'America/Los_Angeles')::date, 3, 300, 20),
  -- last used two minutes ago: nothing used this minute, the day's count still stands
  ('proj-b', 'view-model', date_trunc('minute', now(), 'UTC') - interval '2 minutes', (now() at time zone 'America/Los_Angeles')::date, 7, 700, 50),
  -- a group whose only key is inactive, used yesterday
  ('proj-c', 'view-model', date_trunc('minute', now(), 'UTC') - interval '1 day', (now() at time zone 'America/Los_Angeles')::date - 1, 1, 10, 90);
insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, quota_id) values
  ('proj-b', 'view-model', now() + interval '42 seconds', 'rate_limited', 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier'),
  ('proj-a', 'view-model', now() - interval '1 second', 'over', null);

select is((select (active_keys, key_aliases, rpm_used, rpm_limit, rpm_left, tpm_used, tpm_limit, rpd_used, rpd_limit, state)::text
           from public.google_ai_usage_now where quota_group = 'proj-a' and model = 'view-model'),
  '(2,"{a1,a2}",3,9,6,300,900,20,90,open)', 'a group in use this minute: usage against the limits after the 10% margin');
select is((select (rpm_used, tpm_used, rpd_used, rpd_left)::text from public.google_ai_usage_now where quota_group = 'proj-b'),
  '(0,0,50,40)', 'a row from an older minute counts as nothing used this minute; the day still counts');
select is((select (state, cooldown_reason)::text from public.google_ai_usage_now where quota_group = 'proj-b'),
  '(cooldown,rate_limited)', 'a cooldown in force shows, and is what would refuse a request now');
select is((select (active_keys, rpd_used, state)::text from public.google_ai_usage_now where quota_group = 'proj-c'),
  '(0,0,no_active_key)', 'a group without an active key: yesterday''s count is not today''s');
select is((select minute_resets_at - minute_window from public.google_ai_usage_now where quota_group = 'proj-a'), interval '1 minute',
  'the minute resets one minute after the window starts');
select is((select day_resets_at at time zone 'America/Los_Angeles' from public.google_ai_usage_now where quota_group = 'proj-a'),
  ((now() at time zone 'America/Los_Angeles')::date + 1)::timestamp, 'the day resets at the next Pacific midnight');

update public.google_ai_usage_counters set rpm_used = 9 where quota_group = 'proj-a';
select is((select state from public.google_ai_usage_now where quota_group = 'proj-a'), 'rpm', 'a full minute shows as rpm');

select is((select array_agg(quota_group) from public.google_ai_cooldowns_active where model = 'view-model'), array['proj-b'],
  'only cooldowns in force are listed');
select is((select (key_aliases, seconds_left between 1 and 42)::text from public.google_ai_cooldowns_active where quota_group = 'proj-b'),
  '({b1},t)', 'with the keys they hold back and the seconds left');

-- The last 24 hours by caller.
insert into public.google_ai_attempts (status, caller, model, request_id, attempt, limit_hit, input_tokens, output_tokens, created_at) values
  ('google_error', 'view-bot', 'view-model', 'r1', 1, null, null, null, now() - interval '1 hour'),
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
