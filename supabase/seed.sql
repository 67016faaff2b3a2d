-- Seed data for a local project only (applied by `supabase db reset` and by the local harness;
-- `supabase db push` does not apply it unless asked to with --include-seed): the key rows a local
-- stack serves with. Everything the gateway needs to serve on any project (the providers, the models,
-- their limits, aliases, life cycle and prices) arrives with the migrations
-- (20261122000200_rows_and_schedule.sql and any rows migration after it; docs/models.md). A
-- deployed project adds its own key rows (README, "Deploying to a Supabase project"). Re-running it never overwrites an
-- operator's edit: rows are inserted only when missing.

-- The key the owner's processes use today, under the name they already use. Its value is an Edge
-- Function secret (`supabase secrets set GOOGLE_API_KEY=...`), never a column.
insert into public.google_ai_api_keys (key_alias, provider, env_var_name, is_active, priority, notes)
values ('default', 'google', 'GOOGLE_API_KEY', true, 100, 'Seeded: the pre-gateway GOOGLE_API_KEY.')
on conflict (key_alias) do nothing;

-- The organization's key under the name OpenAI's SDK reads (`supabase secrets set OPENAI_API_KEY=...`).
-- Not added beside a key row of OpenAI the owner already has: one organization is one quota group,
-- and a second row for it under another project_id would count its limits twice.
insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, is_active, priority, notes)
select 'openai-default', 'openai', 'OPENAI_API_KEY', 'org-default', true, 100,
       'Seeded: the bot''s OPENAI_API_KEY. project_id names its OpenAI organization (one quota group).'
where not exists (select 1 from public.google_ai_api_keys k where k.serves_provider = 'openai')
on conflict (key_alias) do nothing;

-- No Anthropic key row: the local stack adds its own (scripts/local-stack.ts), pointed at the simulator.
