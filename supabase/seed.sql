-- Seed data (applied by `supabase db reset` and by the local harness; `supabase db push` does not
-- apply it unless asked to with --include-seed). Re-running it never overwrites operator edits.

-- Model limits from the owner's table (seed 001): per Google Cloud project, per model.
insert into public.google_ai_model_limits
  (model, rpm, tpm, rpd, aliases, supports_system_instruction, supports_json_mode, notes)
values
  ('gemma-3-27b-it', 30, 15000, 14400, array['gemma-3-27b'], false, false,
   'Gemma 3 27B: no system instruction (folded into the first user turn), no JSON mode.'),
  ('gemini-2.5-flash', 5, 250000, 20, '{}', true, true,
   'Gemini 2.5 Flash free tier.')
on conflict (model) do nothing;

-- The key the owner's processes use today, under the name they already use. Its value is an Edge
-- Function secret (`supabase secrets set GOOGLE_API_KEY=...`), never a column.
insert into public.google_ai_api_keys (key_alias, provider, env_var_name, is_active, priority, notes)
values ('default', 'google', 'GOOGLE_API_KEY', true, 100, 'Seeded: the pre-gateway GOOGLE_API_KEY.')
on conflict (key_alias) do nothing;
