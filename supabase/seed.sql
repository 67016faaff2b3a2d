-- Seed data (applied by `supabase db reset` and by the local harness; `supabase db push` does not
-- apply it unless asked to with --include-seed). Re-running it never overwrites operator edits.

-- Model limits from the owner's table (seed 001): per Google Cloud project, per model.
insert into public.google_ai_model_limits
  (model, rpm, tpm, rpd, aliases, supports_system_instruction, supports_json_mode, notes)
values
  ('gemma-3-27b-it', 30, 15000, 14400, array['gemma-3-27b'], false, false,
   'Gemma 3 27B: no system instruction (folded into the first user turn), no JSON mode, no function calling.'),
  ('gemini-2.5-flash', 5, 250000, 20, '{}', true, true,
   'Gemini 2.5 Flash free tier. Announced for shutdown on 2026-12-01: give it a fallback chain (below).'),
  ('gemini-2.5-flash-lite', 10, 250000, 20, '{}', true, true,
   'Gemini 2.5 Flash-Lite free tier (10 RPM / 250K TPM / 20 RPD, seen 2026-07).')
on conflict (model) do nothing;

-- Fallback is the operator's choice, per model row (requests may also name their own chain with
-- fallback_models). "Flash, else Flash-Lite, else Gemma" for every request that names Flash:
--   update public.google_ai_model_limits
--   set fallback_models = '{gemini-2.5-flash-lite,gemma-3-27b-it}' where model = 'gemini-2.5-flash';
-- When Google retires Flash, the maintenance function's catalogue stops listing it and requests move
-- on to its chain by themselves; to retire it sooner, `set is_active = false` (the chain still applies).
-- Or remap the name outright: `update ... set aliases = aliases || '{gemini-2.5-flash}'` on another
-- row, with Flash's own row inactive (an active row's alias wins over an inactive row's name).

-- The key the owner's processes use today, under the name they already use. Its value is an Edge
-- Function secret (`supabase secrets set GOOGLE_API_KEY=...`), never a column.
insert into public.google_ai_api_keys (key_alias, provider, env_var_name, is_active, priority, notes)
values ('default', 'google', 'GOOGLE_API_KEY', true, 100, 'Seeded: the pre-gateway GOOGLE_API_KEY.')
on conflict (key_alias) do nothing;
