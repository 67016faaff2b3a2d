-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: the built-in models arrive with the migrations (`supabase db push` applies no seed):
--   Google's, OpenAI's and Anthropic's model rows with their limits, aliases, capabilities, life cycle
--   (shutdown dates, successors), thinking ceilings and spread, and a price row for each, as
--   docs/models.md and docs/cost-and-budgets.md list them. Each row is inserted only when missing and
--   described once (while its limits_source is null), so a row the owner has, changed or cleared keeps
--   its values: the owner's production rows keep their limits and get only the columns they never had
--   (a model row deleted before this runs comes back: retire a model with is_active = false instead).
--   The Claude rows and prices come in the shape 20261128073410_claude_limits_rows.sql and
--   20261128075457_anthropic_cache_write_price_rows.sql gave the rows seeded before them. Applied twice,
--   nothing changes. A model or price added later is a rows migration of its own, after this one.

-- Google's models from the owner's table (seed 001): per Google Cloud project, per model.
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

-- Their life cycle, and the models of December 2026; their admissions spread over the window (one at a
-- time, then one per window / RPM: a person waits for the next slot, not for a flooded window), set
-- once with the rest of a row's description: a row described before keeps what the owner chose.
do $rows$
declare
  v_first_described text[];
  v_inserted text[];
begin
  -- Rows described here for the first time (below: their admissions spread over the window).
  select coalesce(array_agg(l.model), '{}') into v_first_described from public.google_ai_model_limits l
  where l.model in ('gemma-3-27b-it', 'gemini-2.5-flash', 'gemini-2.5-flash-lite') and l.limits_source is null;

  -- Their life cycle, described once (the owner's rows included: only columns they never had). A row
  -- whose limits are not these (the owner's own) is said to be so, not given these figures' source.
  update public.google_ai_model_limits l set
    shutdown_date = coalesce(l.shutdown_date, d.shutdown_date),
    successor = coalesce(l.successor, d.successor),
    supports_images = coalesce(l.supports_images, d.supports_images),
    limits_source = case when (l.rpm, l.tpm, l.rpd) is not distinct from (d.rpm, d.tpm, d.rpd) then d.limits_source
                         else 'The owner''s own figures, kept (not the seed''s). The seed''s: ' || d.limits_source end
  from (values
    ('gemma-3-27b-it', 30, 15000, 14400, null::date, 'gemma-4-31b-it', null::boolean,
     'Free tier 30 RPM / 15K TPM / 14,400 RPD as listed 2026-07-18 (cheahjs/free-llm-api-resources, from Google''s '
     'Cloud Quotas API). Users report Google answers 404 NOT_FOUND for it since about 2026-05 (machinewrapped/'
     'llm-subtrans#420, sohzm/cheating-daddy#327): no shutdown date was published; Gemma 4 replaced it.'),
    ('gemini-2.5-flash', 5, 250000, 20, date '2026-12-01', 'gemini-3.5-flash-lite', true,
     'Free tier 5 RPM / 250K TPM / 20 RPD as listed 2026-07-18 (cheahjs/free-llm-api-resources, Cloud Quotas API). '
     'Shutdown 2026-12-01, routed to gemini-3.5-flash-lite: Google''s deprecations page as quoted 2026-11-10.'),
    ('gemini-2.5-flash-lite', 10, 250000, 20, null::date, null, true,
     'Free tier 10 RPM / 250K TPM / 20 RPD as listed 2026-07-18 (cheahjs/free-llm-api-resources, Cloud Quotas API). '
     'Not deprecated (Google''s deprecations page as quoted 2026-11-10).')
  ) as d(model, rpm, tpm, rpd, shutdown_date, successor, supports_images, limits_source)
  where l.model = d.model and l.limits_source is null;

  -- The models Google serves in December 2026. Free-tier figures as listed on 2026-07-18; where no row
  -- was published the figures are an assumption, and limits_source says so: correct them from the
  -- project's own quota page (AI Studio, or the Cloud Quotas API) with one UPDATE.
  with inserted as (
  insert into public.google_ai_model_limits
    (model, rpm, tpm, rpd, aliases, supports_system_instruction, supports_json_mode, supports_tools,
     supports_images, shutdown_date, successor, limits_source, notes)
  values
    ('gemma-4-31b-it', 30, 15000, 14400, '{}', true, true, true, null, null, null,
     'Assumed: no Gemma 4 row was published (2026-07-18 list, cheahjs/free-llm-api-resources; possibly unlimited, '
     'which that list skips). Gemma 3 27B''s free-tier figures are used until the project''s quota page says otherwise.',
     'Gemma 4 31B: takes a system instruction and tools natively (google-gemma/cookbook#307, freellmapi#583); '
     'JSON mode assumed. The successor of gemma-3-27b-it.'),
    ('gemma-4-26b-a4b-it', 30, 15000, 14400, '{}', true, true, true, null, null, null,
     'Assumed: no Gemma 4 row was published (2026-07-18 list, cheahjs/free-llm-api-resources). Gemma 3 27B''s '
     'free-tier figures are used until the project''s quota page says otherwise.',
     'Gemma 4 26B A4B (mixture of experts): system instruction and tools as gemma-4-31b-it; JSON mode assumed.'),
    ('gemini-3.5-flash', 5, 250000, 20, '{}', true, true, true, true, null, 'gemini-3.6-flash',
     'Free tier 5 RPM / 250K TPM / 20 RPD as listed 2026-07-18 (cheahjs/free-llm-api-resources, Cloud Quotas API). '
     'GA 2026-05-19 (Google''s changelog); marked deprecated and routed by Google to gemini-3.6-flash, no shutdown '
     'date published (Google''s deprecations page, 2026-11).',
     'Gemini 3.5 Flash (deprecated: Google routes it to gemini-3.6-flash).'),
    ('gemini-3.6-flash', 5, 250000, 20, '{}', true, true, true, true, null, null,
     'Assumed: GA 2026-07-21, after the 2026-07-18 list; Gemini 3.5 Flash''s free tier (5 RPM / 250K TPM / 20 RPD) '
     'is used until the project''s quota page says otherwise.',
     'Gemini 3.6 Flash: where Google routes gemini-3.5-flash.'),
    ('gemini-3.7-flash', 5, 250000, 20, '{}', true, true, true, true, null, null,
     'Assumed: GA 2026-08-13 (Google''s changelog), after the 2026-07-18 list; Gemini 3.5 Flash''s free tier is used '
     'until the project''s quota page says otherwise.',
     'Gemini 3.7 Flash.'),
    ('gemini-3.8-flash', 5, 250000, 20, '{gemini-flash-latest}', true, true, true, true, null, null,
     'Assumed: GA 2026-09-02 (Google''s changelog), after the 2026-07-18 list; Gemini 3.5 Flash''s free tier is used '
     'until the project''s quota page says otherwise.',
     'Gemini 3.8 Flash, the newest Flash: Google''s gemini-flash-latest is taken to name it (check with models.get).'),
    ('gemini-3.5-flash-lite', 15, 250000, 500, '{gemini-flash-lite-latest}', true, true, true, true, null, null,
     'Assumed: GA 2026-07-21, after the 2026-07-18 list; Gemini 3.1 Flash-Lite''s free tier (15 RPM / 250K TPM / '
     '500 RPD) is used until the project''s quota page says otherwise.',
     'Gemini 3.5 Flash-Lite, the newest Flash-Lite (Google''s gemini-flash-lite-latest is taken to name it): where '
     'Google routes gemini-2.5-flash after its shutdown.'),
    ('gemini-3.1-flash-lite', 15, 250000, 500, '{}', true, true, true, true, date '2027-05-07', null,
     'Free tier 15 RPM / 250K TPM / 500 RPD as listed 2026-07-18 (cheahjs/free-llm-api-resources, Cloud Quotas API). '
     'GA 2026-05-07, shutdown 2027-05-07 (Google''s deprecations page).',
     'Gemini 3.1 Flash-Lite.')
  on conflict (model) do nothing
  returning model)
  select coalesce(array_agg(model), '{}') into v_inserted from inserted;

  update public.google_ai_model_limits l set spread_burst = 1
  where l.model = any (v_first_described || v_inserted) and l.spread_burst is null;
end
$rows$;

-- Fallback is the owner's choice, per model row (requests may also name their own chain with
-- fallback_models). gemini-2.5-flash shuts down on 2026-12-01; to have every request that names it
-- served by its successor when it can no longer serve:
--   update public.google_ai_model_limits
--   set fallback_models = '{gemini-3.5-flash-lite,gemini-2.5-flash-lite}' where model = 'gemini-2.5-flash';
-- When Google withdraws a model (404 NOT_FOUND) the gateway marks the row withdrawn on the first such
-- answer and requests move on to its chain; with no chain they are answered 404 model_withdrawn,
-- naming the successor. A caller's name is an alias: repoint it with one UPDATE, no deploy (the row
-- that gains an alias takes it from the row that had it):
--   update public.google_ai_model_limits set aliases = aliases || '{gemma-3-27b}' where model = 'gemma-4-31b-it';
-- To retire a row sooner, `set is_active = false` (its chain still applies).

-- OpenAI's models the bot calls. OpenAI counts TPM per organization and model on a request's input plus
-- its max_tokens on arrival, so booked_output_tokens is set (4096 when a request names none). Limits
-- belong to the organization's usage tier and rise as it pays: correct them with one UPDATE from the
-- organization's limits page (or the x-ratelimit-limit-* headers OpenAI answers with). The key row is
-- the owner's to add (README, "Deploying to a Supabase project").
insert into public.google_ai_model_limits
  (model, provider, rpm, tpm, rpd, booked_output_tokens, aliases, supports_system_instruction, supports_json_mode,
   supports_tools, supports_images, shutdown_date, successor, spread_burst, limits_source, notes)
values
  ('gpt-4o', 'openai', 500, 30000, null, 4096, '{}', true, true, true, true, null, null, 1,
   'Usage tier 1: 500 RPM / 30,000 TPM, no daily cap, per organization: OpenAI''s rate-limit table '
   '(platform.openai.com/docs/guides/rate-limits) as quoted in community.openai.com/t/1028595, read 2026-11-27; '
   'OpenAI''s 429s of 2026 still say "Limit 30000" (continuedev/continue#10502, #11472). '
   'No shutdown announced (OpenAI''s deprecations page as archived 2026-04 to 2026-06).',
   'GPT-4o, the model the bot calls (parse_event_via_4o, ask_4o). Left ChatGPT in 2026-02; the API serves it.'),
  ('gpt-4o-mini', 'openai', 500, 200000, null, 4096, '{}', true, true, true, true, null, null, 1,
   'Usage tier 1: 500 RPM / 200,000 TPM per organization: OpenAI''s rate-limit table '
   '(platform.openai.com/docs/guides/rate-limits) as quoted in community.openai.com/t/1028595, read 2026-11-27; '
   'that table also lists 10,000 RPD, not set here. '
   'No shutdown announced (OpenAI''s deprecations page as archived 2026-04 to 2026-06).',
   'GPT-4o mini.')
on conflict (model) do nothing;

-- Anthropic's Claude models (docs/anthropic.md), one row per version under the dated id Anthropic's
-- model list names, its short name an alias, so both names count one quota. Anthropic counts per
-- organization and family three limits, RPM, ITPM (input, cache reads excluded) and OTPM (max_tokens on
-- arrival, corrected at the end), each a bucket refilling continuously. The rows hold Tier 1's RPM, ITPM
-- and OTPM (itpm, otpm; no TPM), their buckets holding a whole minute (bucket_share 1: Anthropic does not
-- publish the capacity; lower it if its 429s refuse bursts the minute allows), and the answer a call is
-- sent with when its caller names none (booked_output_tokens, booked in OTPM). Limits rise with the tier:
-- correct them with one UPDATE from the Console's limits page (or the anthropic-ratelimit-*-limit
-- headers). The key row is the owner's to add (README, "Deploying to a Supabase project"): one
-- organization is one quota group.
insert into public.google_ai_model_limits
  (model, provider, rpm, itpm, otpm, bucket_share, booked_output_tokens, aliases, supports_system_instruction,
   supports_json_mode, supports_tools, supports_images, shutdown_date, successor, spread_burst, limits_source, notes)
values
  ('claude-sonnet-4-5-20250929', 'anthropic', 50, 30000, 8000, 1, 4096, '{claude-sonnet-4-5}', true, true, true, true,
   null, null, 1,
   'Usage tier 1, Claude Sonnet 4.x (one pool for the family): 50 RPM, 30,000 ITPM, 8,000 OTPM per organization: '
   'Anthropic''s rate-limits page (docs.claude.com/en/api/rate-limits) as copied by anthropic.mintlify.app and '
   'rate-limits.apis.io, read 2026-11-28. Bucket capacity unpublished: a whole minute assumed (bucket_share 1).',
   'Claude Sonnet 4.5. Context 200,000, output up to 64,000 (Anthropic''s models page).'),
  ('claude-haiku-4-5-20251001', 'anthropic', 50, 50000, 10000, 1, 4096, '{claude-haiku-4-5}', true, true, true, true,
   null, null, 1,
   'Usage tier 1, Claude Haiku 4.5: 50 RPM, 50,000 ITPM, 10,000 OTPM per organization: Anthropic''s rate-limits '
   'page as copied by anthropic.mintlify.app and rate-limits.apis.io, read 2026-11-28. Bucket capacity: as '
   'Sonnet''s.',
   'Claude Haiku 4.5. Context 200,000, output up to 64,000.'),
  ('claude-opus-4-5-20251101', 'anthropic', 50, 30000, 8000, 1, 4096, '{claude-opus-4-5}', true, true, true, true,
   null, null, 1,
   'Usage tier 1, Claude Opus 4.x (one pool for the family): 50 RPM, 30,000 ITPM, 8,000 OTPM per organization: '
   'Anthropic''s rate-limits page as copied by anthropic.mintlify.app and rate-limits.apis.io, read 2026-11-28. '
   'Bucket capacity: as Sonnet''s.',
   'Claude Opus 4.5. Context 200,000, output up to 64,000.')
on conflict (model) do nothing;

-- The most each Gemini model may think beside its answer (max_thinking_tokens), which a budget in money
-- books: Gemini's thinking is not capped by maxOutputTokens. Gemini 2.5 Flash and Flash-Lite take a
-- thinkingBudget of at most 24,576 (Google's launch notes: "thinking budget with up to 24k token");
-- Gemini 3 models take a thinking level instead, with no published ceiling: their output limit
-- (65,536, Google's model pages) is assumed. Gemma, OpenAI and Anthropic think within their answer's
-- limit (null). Set only where still null and never set before (its source, added to the row's
-- limits_source, says it was): a ceiling the owner cleared stays cleared.
update public.google_ai_model_limits l set max_thinking_tokens = d.tokens,
  limits_source = concat_ws(' ', l.limits_source, d.source)
from (values
  ('gemini-2.5-flash', 24576),
  ('gemini-2.5-flash-lite', 24576),
  ('gemini-3.1-flash-lite', 65536),
  ('gemini-3.5-flash', 65536),
  ('gemini-3.5-flash-lite', 65536),
  ('gemini-3.6-flash', 65536),
  ('gemini-3.7-flash', 65536),
  ('gemini-3.8-flash', 65536)
) as d0(model, tokens)
cross join lateral (select d0.model, d0.tokens, case when d0.tokens = 24576
  then 'Thinking: a thinkingBudget of at most 24,576 (Google''s Gemini 2.5 Flash launch notes, read 2026-11-27).'
  else 'Thinking: no ceiling published (a thinking level, not a budget); the output limit, 65,536, assumed '
       '(Google''s model pages, read 2026-11-27).' end as source) d
where l.model = d.model and l.max_thinking_tokens is null and coalesce(l.limits_source, '') not like '%Thinking: %';

-- What each call costs (google_ai_model_prices), in US dollars per million tokens, per tier, as read on
-- 2026-11-27 (Google, OpenAI) and 2026-11-28 (Anthropic) from the copies named in each row, which quote
-- the providers' pricing pages (check them against the pages). The owner's Google projects are on the
-- free tier: each Gemini and Gemma model has a 'free' row (0), which prices a call that asks for no
-- tier; the paid rows beside it price flex or priority calls, and every call once the 'free' row is
-- deleted (the project billed). A model or tier with no row costs null (unknown), never 0:
-- gemini-3.6-flash has no published paid price in any copy found, so only its free row is here.
-- Anthropic's rows hold input, cache reads (cached input), cache writes for an hour (2 x input) and for
-- 5 minutes (1.25 x input), and output (docs/anthropic.md). Inserted for a model that has a row and no
-- price yet: a price the owner corrected stays, and so does a tier the owner deleted (the 'free' row of a
-- project that is billed).
insert into public.google_ai_model_prices
  (model, service_tier, input_per_mtok, cached_input_per_mtok, cache_write_1h_per_mtok, cache_write_5m_per_mtok,
   output_per_mtok, source, read_on)
select p.model, p.tier, p.input, p.cached, p.write_1h, p.write_5m, p.output, p.source, p.read_on
from (values
  ('gemma-3-27b-it', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07 '
   '(api-evangelist/deepmind plans/deepmind-plans-pricing.yml).'),
  ('gemma-4-31b-it', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Gemma 4: "Free of charge", free tier only, no paid tier: ai.google.dev/gemini-api/docs/pricing as '
   'transcribed 2026-10-07 (api-evangelist/deepmind plans/deepmind-plans-pricing.yml).'),
  ('gemma-4-26b-a4b-it', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Gemma 4: "Free of charge", free tier only, no paid tier: ai.google.dev/gemini-api/docs/pricing as '
   'transcribed 2026-10-07 (api-evangelist/deepmind plans/deepmind-plans-pricing.yml).'),
  ('gemini-2.5-flash', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-2.5-flash', 'standard', 0.30, 0.03, null, null, 2.50, date '2026-11-27',
   'Input $0.30 (text/image/video): ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07 '
   '(api-evangelist/deepmind); output $2.50 including thinking, caching 90% off: Google''s page as quoted by '
   'deploybase.ai (2026-03).'),
  ('gemini-2.5-flash', 'flex', 0.15, 0.015, null, null, 1.25, date '2026-11-27',
   'Half of standard: Google''s Flex tier is 50% off (announcement of 2026-04-02, as reported by circlo.io).'),
  ('gemini-2.5-flash-lite', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-2.5-flash-lite', 'standard', 0.10, null, null, null, 0.40, date '2026-11-27',
   'Output $0.40: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07 (api-evangelist/deepmind); '
   'input $0.10: hivebook.wiki Gemini 2.5 (standard tier). Cached price not found: a cached call costs null.'),
  ('gemini-3.5-flash', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-3.5-flash', 'standard', 1.50, 0.15, null, null, 9.00, date '2026-11-27',
   'Input $1.50, output $9.00: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07 '
   '(api-evangelist/deepmind); cached input 10% of input (betterhackernews.com item 48242210).'),
  ('gemini-3.5-flash', 'flex', 0.75, 0.075, null, null, 4.50, date '2026-11-27',
   'Half of standard: Google''s Flex tier is 50% off (announcement of 2026-04-02, as reported by circlo.io).'),
  ('gemini-3.5-flash-lite', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-3.5-flash-lite', 'standard', 0.30, null, null, null, 2.50, date '2026-11-27',
   'Input $0.30 (text/image/video/audio), output $2.50: ai.google.dev/gemini-api/docs/pricing as transcribed '
   '2026-10-07 (api-evangelist/deepmind). Cached price not found: a cached call costs null.'),
  ('gemini-3.6-flash', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07. No paid '
   'price found in any stored copy: no standard row.'),
  ('gemini-3.7-flash', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-3.7-flash', 'standard', 0.75, 0.075, null, null, 3.75, date '2026-11-27',
   'Launch price $0.75 in / $3.75 out (standard $1.50 / $7.50 later), cache reads discounted alike: '
   'BerriAI/litellm discussion 36799 (Gemini 3.7 Flash release).'),
  ('gemini-3.8-flash', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-3.8-flash', 'standard', 0.75, 0.075, null, null, 3.75, date '2026-11-27',
   '$0.75 in / $3.75 out including thinking through 2026-12-31, $1.50 / $7.50 from 2027-01-01 (update this row '
   'then): ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07 (api-evangelist/deepmind); cache '
   'reads $0.075: BerriAI/litellm discussion 39357.'),
  ('gemini-3.8-flash', 'flex', 0.375, 0.0375, null, null, 1.875, date '2026-11-27',
   'Half of standard: batch and flex at half the standard rate (BerriAI/litellm discussion 39357).'),
  ('gemini-3.1-flash-lite', 'free', 0, 0, null, null, 0, date '2026-11-27',
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing as transcribed 2026-10-07.'),
  ('gemini-3.1-flash-lite', 'standard', 0.25, 0.025, null, null, 1.50, date '2026-11-27',
   'List price $0.25 in / $0.025 cached / $1.50 out: docs.apiyi.com (list price, data of 2026-07-31) and '
   'vercel.com/ai-gateway/models/gemini-3.1-flash-lite.'),
  ('gpt-4o', 'standard', 2.50, 1.25, null, null, 10.00, date '2026-11-27',
   '$2.50 in / $1.25 cached / $10.00 out: developers.openai.com/api/docs/pricing as quoted by '
   'chatgptpricing-akr.pages.dev; platform.openai.com/docs/pricing (2026-05) as quoted by aimodelcalc.pages.dev.'),
  ('gpt-4o-mini', 'standard', 0.15, 0.075, null, null, 0.60, date '2026-11-27',
   '$0.15 in / $0.075 cached / $0.60 out: developers.openai.com/api/docs/pricing as quoted by '
   'chatgptpricing-akr.pages.dev; platform.openai.com/docs/pricing (2026-05) as quoted by aimodelcalc.pages.dev.'),
  ('claude-sonnet-4-5-20250929', 'standard', 3.00, 0.30, 6.00, 3.75, 15.00, date '2026-11-28',
   '$3 in / $0.30 cache hits / $15 out ($3.75 5-minute and $6 1-hour cache writes): Anthropic''s pricing page '
   '(docs.anthropic.com/en/docs/about-claude/pricing) as stored, for the Sonnet 4 family; Sonnet 4.5 at the '
   'same price: deploybase.ai (2026-03).'),
  ('claude-haiku-4-5-20251001', 'standard', 1.00, 0.10, 2.00, 1.25, 5.00, date '2026-11-28',
   '$1 in / $0.10 cache hits / $5 out ($1.25 and $2 cache writes): platform.claude.com models/haiku-4-5 '
   'overview and the pricing rule (writes 1.25x and 2x input, reads 0.1x).'),
  ('claude-opus-4-5-20251101', 'standard', 5.00, 0.50, 10.00, 6.25, 25.00, date '2026-11-28',
   '$5 in / $0.50 cache hits / $25 out ($6.25 and $10 cache writes): platform.claude.com model pages of the '
   'Opus line at $5 / $25 and deploybase.ai (2026-03) for Opus 4.5.')
) as p(model, tier, input, cached, write_1h, write_5m, output, read_on, source)
where exists (select 1 from public.google_ai_model_limits l where l.model = p.model)
  and not exists (select 1 from public.google_ai_model_prices q where q.model = p.model)
on conflict (model, service_tier) do nothing;
