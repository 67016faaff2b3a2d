-- What declarative schemas cannot hold (supabase/schemas has no DML): the rows the gateway needs
-- to run and the pg_cron schedule. Every statement keeps what is there: applied twice, nothing changes.

-- The built-in providers, each its dialect's own row, reached at its dialect's base URL and read by its
-- dialect's key pattern unless the operator's row says otherwise. The owner's key rows all read as
-- google or openai (the adoption migration stopped on any other, naming the rows), and every model row's
-- provider is google unless it says otherwise: the foreign keys the baseline added to the owner's two
-- tables NOT VALID (a check it cannot make before these rows exist) are validated here.
insert into public.google_ai_providers (name, dialect, display_name) values
  ('google', 'google', 'Google'),
  ('openai', 'openai', 'OpenAI')
on conflict (name) do nothing;

alter table public.google_ai_api_keys validate constraint google_ai_api_keys_provider_fkey;

alter table public.google_ai_model_limits validate constraint google_ai_model_limits_provider_fkey;

-- The settings singletons (one row each, id = true): the defaults are the columns' defaults.
insert into public.google_ai_maintenance_settings (id) values (true) on conflict (id) do nothing;

insert into public.google_ai_admission_settings (id) values (true) on conflict (id) do nothing;

-- The two priority classes every credential names.
insert into public.google_ai_priority_classes (name, rank, description) values
  ('interactive', 0, 'A person waits for the answer (the bot). Default for service-key callers.'),
  ('batch', 10, 'Many calls, nobody waiting on each (Kaggle parsers). Default for Kaggle clients.')
on conflict (name) do nothing;

insert into public.google_ai_queue_settings (id) values (true) on conflict (id) do nothing;

-- The models the owner already has are spread (google_ai_model_limits.spread_burst, docs/architecture.md
-- "Spreading the window"), once: only while no row says anything of the spread yet, so an operator's
-- choice stays.
update public.google_ai_model_limits set spread_burst = 1
where not exists (select 1 from public.google_ai_model_limits l where l.spread_burst is not null);

-- A share for people by default: the interactive class keeps 20% of every model's RPM and 10% of its
-- RPD (the seed writes the same on a fresh project), only while the class's percents were never set, so
-- an operator's change or removal is never undone. Its triggers derive the share rows per model.
update public.google_ai_priority_classes set kept_rpm_percent = 20, kept_rpd_percent = 10
where name = 'interactive' and kept_changed_at is null;

-- The metrics fold's mark and fence start at the attempts already there, which are then folded once.
insert into public.google_ai_metric_fold (id, fence_id, fence_at)
values (true, coalesce(pg_catalog.pg_sequence_last_value(
          pg_catalog.pg_get_serial_sequence('public.google_ai_attempts', 'id')::regclass), 0),
        pg_catalog.now())
on conflict (id) do nothing;

-- Counting what was there before the gateway: the rows that can no longer change, once. A log has
-- gaps (rolled-back inserts); a fence taken now would hold them (and every row after the first) live
-- for up to twice stale_reservation_after. The log itself dates the old ones: a row's created_at is
-- its transaction's start, and no transaction stays open longer than stale_reservation_after, so
-- every id up to a row created more than twice that long ago was handed out more than that long ago.
with lag as (
  select coalesce((select s.stale_reservation_after from public.google_ai_maintenance_settings s where s.id),
                  interval '15 minutes') as lag
), old as (
  select (select max(a.id) from public.google_ai_attempts a where a.created_at < pg_catalog.now() - 2 * lag.lag) as id,
         lag.lag
  from lag
)
update public.google_ai_metric_fold f set fence_id = old.id, fence_at = pg_catalog.now() - old.lag
from old
where f.id and old.id is not null and (f.fence_at is null or f.fence_at > pg_catalog.now() - old.lag);
select public.google_ai_metrics_fold(null, true);

-- The providers' facts the built-in rows carry beyond their name: Google's day turns in Pacific time, as
-- Google resets its per-day quotas (every other built-in provider's in UTC, the column's default); the
-- built-in row of the anthropic dialect (Anthropic's Messages API), reached at the dialect's base URL
-- (ANTHROPIC_BASE_URL overrides it) and read by its key pattern (ANTHROPIC_…) unless the operator's row
-- says otherwise; OpenAI's own row serves OpenAI's Responses API (has_responses_api: its models are sent a
-- Responses call's body as it came; every other row keeps the default, false, which a compatible
-- service's owner sets where the service has one).
update public.google_ai_providers set day_zone = 'America/Los_Angeles' where name = 'google' and day_zone = 'UTC';

insert into public.google_ai_providers (name, dialect, display_name) values
  ('anthropic', 'anthropic', 'Anthropic')
on conflict (name) do nothing;

update public.google_ai_providers set has_responses_api = true
where name = 'openai' and dialect = 'openai' and not has_responses_api;

-- The built-in models (`supabase db push` applies no seed): Google's, OpenAI's and Anthropic's model rows
-- with their limits, aliases, capabilities, life cycle (shutdown dates, successors), thinking ceilings and
-- spread, and a price row for each, as docs/models.md and docs/cost-and-budgets.md list them. Each row is
-- inserted only when missing and described once (while its limits_source is null), so a row the owner
-- has, changed or cleared keeps its values: the owner's production rows keep their limits and get only
-- the columns they never had. A model or price added later is a rows migration of its own, after this
-- file.

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

-- Claude's rows as Anthropic offers them on 2026-11-28 (docs/anthropic.md, "Claude's models"): the current
-- models Claude Opus 5.5, Sonnet 5.5 and Haiku 5.5 as rows with their limits, prices and sources, inserted
-- when missing; the 4.5 rows get their shutdown dates and successors (Sonnet 4.5 ends on 2026-11-30 for
-- Sonnet 5.5, Opus 4.5 on 2027-01-22 for Opus 5.5, Haiku 4.5 has no date and Haiku 5.5 as its successor)
-- where the row has none. A row, price, date or successor the owner set stays as it is.
-- The current models. Their ids have no dated form (the pinned @anthropic-ai/sdk 1.14.0's model list,
-- Anthropic's model pages: "no separate alias"). Tier figures for the 5.5 models were not found in any
-- stored copy: the lowest published tier's figures for their line (Tier 1 of the 4.x lines) are
-- assumed, which leaves capacity unused rather than meeting Anthropic's 429s; the owner corrects them
-- from the anthropic-ratelimit-*-limit headers or the Console. JSON mode is off: the gateway's JSON
-- answer is one forced tool, which these models refuse (Sonnet 5.5's migration notes: forced tool use
-- returns an error; Opus 5.5 thinks always, and forced tool use does not go with thinking).
insert into public.google_ai_model_limits
  (model, provider, rpm, itpm, otpm, bucket_share, booked_output_tokens, aliases, supports_system_instruction,
   supports_json_mode, supports_tools, supports_images, shutdown_date, successor, spread_burst, limits_source, notes)
select v.model, 'anthropic', v.rpm, v.itpm, v.otpm, 1, 4096, '{}', true, false, true, true, null, null, 1,
       v.source, v.notes
from (values
  ('claude-opus-5-5', 50, 30000, 8000,
   'Assumed, read 2026-11-28: Anthropic''s rate-limits page has a table of its own for Claude Opus 5.5 (its tiers '
   'now named Start, Build, Scale: developersdigest.tech''s digest of platform.claude.com, read there 2026-10-17), '
   'but no stored copy gives its figures; the Opus 4.x line''s Tier 1 (50 RPM, 30,000 ITPM, 8,000 OTPM: '
   'anthropic.mintlify.app and rate-limits.apis.io) is used until the Console or the anthropic-ratelimit-*-limit '
   'headers say otherwise. Bucket capacity unpublished: a whole minute assumed (bucket_share 1).',
   'Claude Opus 5.5 (released 2026-09-22): context 1,000,000, output up to 128,000; thinking always adaptive '
   '(platform.claude.com models/opus-5-5). The successor of claude-opus-4-5.'),
  ('claude-sonnet-5-5', 50, 30000, 8000,
   'Assumed, read 2026-11-28: Anthropic''s rate-limits page has a table of its own for Claude Sonnet 5.5 '
   '(developersdigest.tech''s digest, read there 2026-10-17), but no stored copy gives its figures; the Sonnet 4.x '
   'line''s Tier 1 (50 RPM, 30,000 ITPM, 8,000 OTPM) is used until the Console or the anthropic-ratelimit-*-limit '
   'headers say otherwise. Bucket capacity unpublished: a whole minute assumed (bucket_share 1).',
   'Claude Sonnet 5.5 (released 2026-09-28), the current Sonnet: context 1,000,000, output up to 128,000 '
   '(platform.claude.com models/sonnet-5-5). The successor of claude-sonnet-4-5.'),
  ('claude-haiku-5-5', 50, 50000, 10000,
   'Assumed, read 2026-11-28: Anthropic''s rate-limits page has a table of its own for Claude Haiku 5.5 '
   '(developersdigest.tech''s digest, read there 2026-10-17), but no stored copy gives its figures; Haiku 4.5''s '
   'Tier 1 (50 RPM, 50,000 ITPM, 10,000 OTPM) is used until the Console or the anthropic-ratelimit-*-limit headers '
   'say otherwise. Bucket capacity unpublished: a whole minute assumed (bucket_share 1).',
   'Claude Haiku 5.5 (released 2026-10-07): context 1,000,000, output up to 128,000 (platform.claude.com '
   'models/haiku-5-5). Its tokenizer counts the same text as about 30% more tokens than Haiku 4.5''s.')
) as v(model, rpm, itpm, otpm, source, notes)
where exists (select 1 from public.google_ai_providers p where p.name = 'anthropic')
  and not exists (select 1 from public.google_ai_model_limits l where v.model = any (l.aliases))
on conflict (model) do nothing;

-- Their prices at Anthropic's standard tier, per million tokens: input, cache reads, cache writes for an
-- hour and for 5 minutes, output.
insert into public.google_ai_model_prices
  (model, service_tier, input_per_mtok, cached_input_per_mtok, cache_write_1h_per_mtok, cache_write_5m_per_mtok,
   output_per_mtok, source, read_on)
select p.model, 'standard', p.input, p.cached, p.write_1h, p.write_5m, p.output, p.source, date '2026-11-28'
from (values
  ('claude-opus-5-5', 4.00, 0.40, 8.00, 5.00, 20.00,
   '$4 in / $20 out: platform.claude.com model pages'' comparison table (models/sonnet-5-5, models/haiku-5-5 '
   'overviews); cache writes and reads by Anthropic''s rule (5-minute 1.25 x, 1-hour 2 x, reads 0.1 x input): no '
   'stored copy prints them for Opus 5.5.'),
  ('claude-sonnet-5-5', 2.00, 0.10, 4.00, 2.50, 10.00,
   '$2 in / $10 out, $2.50 5-minute and $4 1-hour cache writes: platform.claude.com models/sonnet-5-5 overview; '
   'cache reads $0.10 since 2026-10-07 (cut from the page''s $0.20: kurofune/claudit v1.9.2, checked against the '
   'pricing page 2026-10-24, and TheKrush/PromptFuel v1.0.23).'),
  ('claude-haiku-5-5', 0.10, 0.01, 0.20, 0.125, 0.50,
   '$0.10 in / $0.50 out, $0.125 and $0.20 cache writes, $0.01 cache reads for a prompt up to 100,000 tokens: '
   'platform.claude.com models/haiku-5-5 ("from $0.10 / $0.50") and the bands as kurofune/claudit v1.9.2 and '
   'apidog.com (2026-10-08) give them. A longer prompt (cache reads and writes counted) is billed 5 x on every '
   'token of the request ($0.50 / $2.50): this row under-prices such a call; one price per row cannot say both.')
) as p(model, input, cached, write_1h, write_5m, output, source)
where exists (select 1 from public.google_ai_model_limits l where l.model = p.model)
on conflict (model, service_tier) do nothing;

-- The 4.5 rows' end, where the row names none (the owner's date or successor stays), its source added to
-- the row's limits_source once (only a row that gains one is written).
update public.google_ai_model_limits l set
  shutdown_date = coalesce(l.shutdown_date, d.shutdown_date),
  successor = coalesce(l.successor, d.successor),
  limits_source = concat_ws(' ', l.limits_source, d.source),
  updated_at = now()
from (values
  ('claude-sonnet-4-5-20250929', 'claude-sonnet-4-5', date '2026-11-30', 'claude-sonnet-5-5',
   'Shutdown 2026-11-30: the pinned @anthropic-ai/sdk 1.14.0 (internal/data/deprecated-models: "November 30th, '
   '2026", for both ids), read 2026-11-28; successor Claude Sonnet 5.5, the current Sonnet (platform.claude.com '
   'model pages).'),
  ('claude-opus-4-5-20251101', 'claude-opus-4-5', date '2027-01-22', 'claude-opus-5-5',
   'Shutdown 2027-01-22: the pinned @anthropic-ai/sdk 1.14.0 (internal/data/deprecated-models: "January 22nd, '
   '2027", for both ids), read 2026-11-28; successor Claude Opus 5.5, the current Opus (platform.claude.com '
   'model pages).'),
  ('claude-haiku-4-5-20251001', 'claude-haiku-4-5', null::date, 'claude-haiku-5-5',
   'No shutdown announced (not in @anthropic-ai/sdk 1.14.0''s deprecated-models, read 2026-11-28); successor '
   'Claude Haiku 5.5, the current Haiku (platform.claude.com models/haiku-5-5).')
) as d(model, short_name, shutdown_date, successor, source)
where l.model in (d.model, d.short_name) and l.provider = 'anthropic'
  and ((l.shutdown_date is null and d.shutdown_date is not null) or (l.successor is null and d.successor is not null));

-- The built-in embedding models, each a model row (its provider, limits, names), its prices per input
-- token (an embedding has no output) and its embedding facts (google_ai_embedding_models): OpenAI's
-- text-embedding-3-small and -large, Google's gemini-embedding-001. Inserted where missing: a row the
-- owner has is left as it is.
-- Sources (read 2026-11-28 from what OpenAI and Google publish, as recalled; the owner checks them
-- against the account's own limits page): OpenAI's rate-limit guide (Tier 1: 3,000 RPM and 1,000,000
-- TPM for both text-embedding-3 models; an embeddings request counts once per call, its input tokens in
-- TPM) and pricing page ($0.02 and $0.13 per million input tokens), its API reference (at most 2048 inputs
-- per request, 8192 tokens per input; 1536 and 3072 dimensions, shortened by `dimensions`); Google's
-- Gemini API rate limits (free tier gemini-embedding-001: 100 RPM, 30,000 TPM, 1,000 RPD per project),
-- pricing ($0.15 per million input tokens on the paid tier, free of charge on the free tier) and
-- embeddings guide (3072 dimensions, outputDimensionality 768/1536/3072 recommended, 2048 input tokens);
-- Google counts each request of a batchEmbedContents as a request of the RPM (measured: a 100-item
-- batch is 100 requests, garrytan/gbrain#1922) and takes at most 100 per batch (its 400:
-- "BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch", geldata/gel#9032).
insert into public.google_ai_model_limits
  (model, provider, rpm, tpm, rpd, booked_output_tokens, aliases, supports_system_instruction, supports_json_mode,
   supports_tools, supports_images, limits_source, notes)
values
  ('text-embedding-3-small', 'openai', 3000, 1000000, null, null, '{}', false, false, false, false,
   'Usage tier 1: 3,000 RPM / 1,000,000 TPM per organization, input tokens only: OpenAI''s rate-limit guide '
   '(platform.openai.com/docs/guides/rate-limits), as recalled 2026-11-28.',
   'OpenAI''s small embedding model: 1536 dimensions (fewer by `dimensions`).'),
  ('text-embedding-3-large', 'openai', 3000, 1000000, null, null, '{}', false, false, false, false,
   'Usage tier 1: 3,000 RPM / 1,000,000 TPM per organization, input tokens only: OpenAI''s rate-limit guide '
   '(platform.openai.com/docs/guides/rate-limits), as recalled 2026-11-28.',
   'OpenAI''s large embedding model: 3072 dimensions (fewer by `dimensions`).'),
  ('gemini-embedding-001', 'google', 100, 30000, 1000, null, '{}', false, false, false, false,
   'Free tier: 100 RPM / 30,000 TPM / 1,000 RPD per project; each input of a batch is one request '
   '(ai.google.dev/gemini-api/docs/rate-limits as recalled 2026-11-28; garrytan/gbrain#1922 measured the batch).',
   'Google''s embedding model: 3072 dimensions (768 and 1536 by outputDimensionality), 2048 tokens per input.')
on conflict (model) do nothing;

insert into public.google_ai_model_prices
  (model, service_tier, input_per_mtok, cached_input_per_mtok, output_per_mtok, source, read_on)
values
  ('text-embedding-3-small', 'standard', 0.02, null, 0,
   '$0.02 per million input tokens: platform.openai.com/docs/pricing (embeddings), as recalled 2026-11-28.',
   date '2026-11-28'),
  ('text-embedding-3-large', 'standard', 0.13, null, 0,
   '$0.13 per million input tokens: platform.openai.com/docs/pricing (embeddings), as recalled 2026-11-28.',
   date '2026-11-28'),
  ('gemini-embedding-001', 'free', 0, null, 0,
   'Free tier, free of charge: ai.google.dev/gemini-api/docs/pricing, as recalled 2026-11-28.', date '2026-11-28'),
  ('gemini-embedding-001', 'standard', 0.15, null, 0,
   '$0.15 per million input tokens: ai.google.dev/gemini-api/docs/pricing, as recalled 2026-11-28.',
   date '2026-11-28')
on conflict do nothing;

insert into public.google_ai_embedding_models
  (model, dimensions, shortenable, max_batch, max_input_tokens, counts_each_input, source)
values
  ('text-embedding-3-small', 1536, true, 2048, 8192, false,
   'OpenAI''s API reference (embeddings): 2048 inputs, 8192 tokens each; one request per call.'),
  ('text-embedding-3-large', 3072, true, 2048, 8192, false,
   'OpenAI''s API reference (embeddings): 2048 inputs, 8192 tokens each; one request per call.'),
  ('gemini-embedding-001', 3072, true, 100, 2048, true,
   'Google''s embeddings guide (3072 dimensions, 2048 input tokens); at most 100 per batch (geldata/gel#9032); '
   'each input of a batch a request of the RPM (garrytan/gbrain#1922).')
on conflict (model) do nothing;

-- Claude Opus, Sonnet and Haiku 5.5 refuse a thinking budget and sampling other than the defaults
-- (refuses_thinking_budget, refuses_sampling): their rows say so, so that the gateway refuses such a
-- request by name before any call instead of meeting Anthropic's 400. Only the rows above, Anthropic's.
-- Anthropic's migration guide for its newer models (platform.claude.com/docs/en/about-claude/models/
-- migration-guide, as quoted by OpenRouter's "Claude 4.7 Migration Guide" and effloow's Opus 4.7 guide):
-- thinking is adaptive only, `thinking: {type: "enabled", budget_tokens}` returns a 400; temperature,
-- top_p and top_k set to a non-default value return a 400. Amazon Bedrock's "Adaptive thinking" page
-- says the same of the 5 models it lists; developers report the 400 on claude-sonnet-5 ("thinking.type.
-- enabled" is not supported for this model) and on Opus 4.7/4.8 ("`temperature` is deprecated for this
-- model."). The 5.5 rows' migration notes already said both (docs/anthropic.md).
update public.google_ai_model_limits
set refuses_thinking_budget = true, refuses_sampling = true, updated_at = now()
where model in ('claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-5-5')
  and provider = 'anthropic'
  and not (refuses_thinking_budget and refuses_sampling);

-- The schedule: pg_cron runs the housekeeping hourly, vacuums the counter rows every 10 seconds and,
-- where pg_net and Vault exist, calls the `maintenance` Edge Function (key health, model catalogue) every
-- six hours. Applying this file again
-- overwrites the jobs by name, never duplicates them. Without pg_cron it changes nothing and says
-- (NOTICE) how to enable it; re-apply it, or run the cron.schedule statements below, afterwards. A
-- role that may not read cron.database_name (it needs pg_read_all_settings) where pg_cron is not
-- created yet gets the same: the jobs are left unscheduled, not the push stopped. `supabase db push`
-- prints no NOTICE: a job missing shows in the maintenance function's answer (`schedule.missing`) and
-- the metric eve_gateway_cron_job_missing (google_ai_cron_jobs).
--
--   job 'eve-gateway-housekeeping'   '17 * * * *'    select public.google_ai_housekeeping()
--   job 'eve-gateway-counters-vacuum' '10 seconds'   vacuum (skip_locked) public.google_ai_usage_counters
--   job 'eve-gateway-maintenance'    '47 */6 * * *'  select public.google_ai_invoke_maintenance_function()
--
-- The second job reads two Vault secrets (names are part of the API, see docs/maintenance.md):
--   eve_gateway_functions_url   https://<project-ref>.supabase.co/functions/v1
--   eve_gateway_service_key     the project's secret (sb_secret_...) or legacy service_role key
do $$
declare
  v_cron_db text;
  v_unreadable boolean := false;
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    begin
      v_cron_db := pg_catalog.current_setting('cron.database_name', true);
    exception when insufficient_privilege then -- (permission denied to examine "cron.database_name")
      v_unreadable := true;
    end;
    if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
       and v_cron_db is not null and v_cron_db = pg_catalog.current_database() then
      create extension if not exists pg_cron with schema pg_catalog;
    else
      raise notice using message =
        'pg_cron is not available in database ' || pg_catalog.current_database()
        || case when v_unreadable then ' (role ' || current_user || ' may not read cron.database_name: '
                                     || 'it needs pg_read_all_settings)'
                when v_cron_db is null then ' (pg_cron is not preloaded on this server)'
                else ' (cron.database_name is ' || v_cron_db || ')' end
        || ': the gateway housekeeping is not scheduled. On Supabase: Dashboard > Database > Extensions > '
        || 'enable pg_cron, then run: select cron.schedule(''eve-gateway-housekeeping'', ''17 * * * *'', '
        || '''select public.google_ai_housekeeping()''); (or re-apply migration 20261122000200_rows_and_schedule). '
        || 'Until then, run select public.google_ai_housekeeping(); yourself or call the maintenance function.';
      return;
    end if;
  end if;

  perform cron.schedule('eve-gateway-housekeeping', '17 * * * *', 'select public.google_ai_housekeeping()');

  -- Every reservation and finalize of a quota group updates its one counter row (about 2 kB with its
  -- rings). An update stays on its page (heap-only) only while the page has room, and its dead versions
  -- can be pruned only once no statement older than them runs; with a dozen callers queued on the row a
  -- page of three versions is full, so about a third of the updates move the row and the table grows
  -- until a vacuum lists the free space again, which autovacuum does at most once a minute. Under a burst
  -- at concurrency 16 it grew from 12.6 MB after 3,000 requests to 54 MB after 30,000 without this job,
  -- 6.1 MB then 3.6 MB with it (npm run bench, part log-scale). A run reads a few hundred kB in a few
  -- milliseconds; SKIP_LOCKED skips rather than waits.
  perform cron.schedule('eve-gateway-counters-vacuum', '10 seconds', 'vacuum (skip_locked) public.google_ai_usage_counters');

  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
     and pg_catalog.to_regclass('vault.decrypted_secrets') is not null then
    perform cron.schedule('eve-gateway-maintenance', '47 */6 * * *',
      'select public.google_ai_invoke_maintenance_function()');
  else
    raise notice using message =
      'pg_net or Vault is not available: the maintenance function (key health, model catalogue) is not scheduled. '
      || 'On Supabase: enable pg_net (Dashboard > Database > Extensions), store the two Vault secrets '
      || 'eve_gateway_functions_url and eve_gateway_service_key (docs/maintenance.md), then re-apply this migration.';
  end if;
end
$$;
