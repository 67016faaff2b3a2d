-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: Claude Opus, Sonnet and Haiku 5.5 refuse a thinking budget and sampling other than
--   the defaults (refuses_thinking_budget, refuses_sampling): their rows say so, so that the gateway
--   refuses such a request by name before any call instead of meeting Anthropic's 400. Only rows the
--   migrations seeded as Anthropic's are set; applied twice, nothing changes.

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
