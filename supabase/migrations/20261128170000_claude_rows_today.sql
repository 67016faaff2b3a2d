-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: Claude's rows as Anthropic offers them on 2026-11-28 (docs/anthropic.md, "Claude's
--   models"): the current models Claude Opus 5.5, Sonnet 5.5 and Haiku 5.5 as rows with their limits,
--   prices and sources, inserted when missing; the 4.5 rows get their shutdown dates and successors
--   (Sonnet 4.5 ends on 2026-11-30 for Sonnet 5.5, Opus 4.5 on 2027-01-22 for Opus 5.5, Haiku 4.5 has
--   no date and Haiku 5.5 as its successor) where the row has none. A row, price, date or successor
--   the owner set stays as it is; applied twice, nothing changes.

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
