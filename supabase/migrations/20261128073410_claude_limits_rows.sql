-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: the Claude rows as supabase/seed.sql first seeded them (Anthropic's ITPM held as the
--   TPM, no OTPM) get Anthropic's three limits in their own columns: Tier 1's ITPM and OTPM (itpm, otpm;
--   tpm cleared) and buckets holding a whole minute (bucket_share 1: the capacity is unpublished; the
--   owner lowers it if Anthropic's 429s refuse bursts the minute allows). Sources: docs/anthropic.md,
--   "Rate limits". A row the owner changed since is left as it is. Applied twice, nothing changes.
update public.google_ai_model_limits l set
  tpm = null, itpm = v.itpm, otpm = v.otpm, bucket_share = 1,
  limits_source = replace(replace(l.limits_source,
      ' TPM here is the ITPM; OTPM is not a column yet (docs/anthropic.md).', ''), ' TPM here is the ITPM.', '')
    || ' Bucket capacity unpublished: a whole minute assumed (bucket_share 1).',
  updated_at = now()
from (values ('claude-sonnet-4-5-20250929', 30000, 8000),
             ('claude-haiku-4-5-20251001', 50000, 10000),
             ('claude-opus-4-5-20251101', 30000, 8000)) v(model, itpm, otpm)
where l.model = v.model and l.provider = 'anthropic' and l.tpm = v.itpm and l.itpm is null and l.otpm is null;
