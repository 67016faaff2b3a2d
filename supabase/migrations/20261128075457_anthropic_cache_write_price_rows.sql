-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: Anthropic's price rows get their cache writes' prices where they have none, by
--   Anthropic's rule (its pricing and prompt-caching pages; docs/anthropic.md, "Prices"): a 1-hour
--   write costs 2 x the row's input price, a 5-minute write 1.25 x (Sonnet 4.5 $6 and $3.75, Haiku 4.5
--   $2 and $1.25, Opus 4.5 $10 and $6.25 per million tokens). A price the owner set stays; applied
--   twice, nothing changes.
update public.google_ai_model_prices p set
  cache_write_1h_per_mtok = coalesce(p.cache_write_1h_per_mtok, p.input_per_mtok * 2),
  cache_write_5m_per_mtok = coalesce(p.cache_write_5m_per_mtok, p.input_per_mtok * 1.25)
from public.google_ai_model_limits l
where l.model = p.model and l.provider = 'anthropic'
  and (p.cache_write_1h_per_mtok is null or p.cache_write_5m_per_mtok is null);
