-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: the built-in embedding models, each a model row (its provider, limits, names), its
--   prices per input token (an embedding has no output) and its embedding facts
--   (google_ai_embedding_models): OpenAI's text-embedding-3-small and -large, Google's
--   gemini-embedding-001. Inserted where missing: a row the owner has is left as it is. Applied twice,
--   nothing changes.
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
