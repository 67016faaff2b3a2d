-- A housekeeping step that fails is rolled back alone, the run still writes its one log row (status
-- 'failed', the sanitized error) and returns instead of raising, and the other steps keep their work.
begin;
create extension if not exists pgtap with schema extensions;
select plan(15);

update public.google_ai_maintenance_settings set batch_size = 1;
insert into public.google_ai_attempts (status, caller, model, created_at)
values ('succeeded', 'old', 'gemma-3-27b-it', now() - interval '90 days');
insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason) values
  ('proj-x', 'gemma-3-27b-it', now() - interval '2 hours', 'harmless'),  -- deleted first (oldest first), in batch 1
  ('proj-x', 'gemini-2.5-flash', now() - interval '1 hour', 'boom');      -- fails in batch 2

-- A trigger makes deleting one of the cooldowns fail, with secrets in its message.
create function public.hk_test_boom() returns trigger language plpgsql as $$
begin
  if old.reason = 'boom' then
    raise exception 'disk on fire: postgres://admin:hunter2@db.example.com/postgres, key sb_secret_abcdef123456, AIzaSyA1234567890abcdefghijklmnopqrstu';
  end if;
  return old;
end $$;
create trigger hk_test_boom before delete on public.google_ai_cooldowns for each row execute function public.hk_test_boom();

create temp table before_log as select coalesce(max(id), 0) as id from public.google_ai_maintenance_log;
select lives_ok($$ create temp table run as select public.google_ai_housekeeping() as r $$,
  'a failing step does not make the run raise (that would roll its log row back)');

select is((select (r ->> 'status', r ->> 'ok')::text from run), '(failed,false)', 'the run reports failed');
select is((select r -> 'failed_steps' from run), '["expired_cooldowns"]'::jsonb, 'and names the failed step');
select is((select count(*)::int from public.google_ai_maintenance_log where id > (select id from before_log)), 1,
  'a failed run writes exactly one log row');
select is((select (operation, status)::text from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run)),
  '(housekeeping,failed)', 'with status failed');
select ok((select completed_at is not null and details -> 'failed_steps' = '["expired_cooldowns"]'
           from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run)),
  'with its completion time and the failed step in details');
select is((select details -> 'steps' -> 'expired_cooldowns' ->> 'sqlstate' from public.google_ai_maintenance_log
           where id = (select (r ->> 'log_id')::int from run)), 'P0001', 'the step records the SQLSTATE');
select matches((select details -> 'steps' -> 'expired_cooldowns' ->> 'error' from public.google_ai_maintenance_log
                where id = (select (r ->> 'log_id')::int from run)), '^disk on fire', 'and the error message');
select ok((select position('hunter2' in details::text) = 0 and position('sb_secret_abcdef' in details::text) = 0
                  and position('AIzaSyA123' in details::text) = 0
           from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run)),
  'the logged error is sanitized: no password, no service key, no Google key');
select is((select count(*)::int from public.google_ai_cooldowns where model in ('gemma-3-27b-it', 'gemini-2.5-flash') and quota_group = 'proj-x'), 2,
  'the failed step is rolled back as a whole (batches it finished before the error too)');
select is((select count(*)::int from public.google_ai_attempts where caller = 'old'), 0, 'the other steps keep their work');
select is((select tables_affected from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run)),
  array['google_ai_attempts'], 'tables_affected lists only what was really changed');

-- The sanitizer on its own.
select is(public.google_ai_sanitize_error(E'Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl\nnext'),
  'Authorization: Bearer [redacted] next', 'bearer tokens and JWTs are redacted, control characters flattened');
select is(length(public.google_ai_sanitize_error(repeat('x', 2000))), 500, 'messages are capped at 500 characters');
select is(public.google_ai_sanitize_error('Incorrect API key provided: sk-proj-AbCdEf0123456789xyz. Find yours'),
  'Incorrect API key provided: [redacted]. Find yours', 'OpenAI keys are redacted');

select * from finish();
rollback;
