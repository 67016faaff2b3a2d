-- Embedding models: a model row (google_ai_model_limits: its provider, limits, names) whose kind is
-- embedding, with what only an embedding model has: its vectors' dimensions, the inputs its provider
-- takes in one request, the tokens of one input, and whether its provider counts each input of a
-- batch as a request of its own (Google's batchEmbedContents) — then the gateway sends each input as
-- a call of its own, each reserved, logged and priced like any attempt. A model with no row here is
-- not an embedding model (the embedding routes refuse it by name), and a model with one generates
-- nothing (the generation routes refuse it).
set check_function_bodies = off;

CREATE TABLE public.google_ai_embedding_models (
    model text PRIMARY KEY
      REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE,
    dimensions integer NOT NULL,
    shortenable boolean DEFAULT false NOT NULL,
    max_batch integer NOT NULL,
    max_input_tokens integer NOT NULL,
    counts_each_input boolean DEFAULT false NOT NULL,
    source text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_embedding_models_dimensions_check CHECK (((dimensions >= 1) AND (dimensions <= 65536))),
    CONSTRAINT google_ai_embedding_models_max_batch_check CHECK (((max_batch >= 1) AND (max_batch <= 100000))),
    CONSTRAINT google_ai_embedding_models_max_input_tokens_check CHECK ((max_input_tokens >= 1))
);

COMMENT ON TABLE public.google_ai_embedding_models IS
    'Embedding models (a row of google_ai_model_limits each): dimensions (shortenable: a smaller one may be asked), '
    'max_batch (inputs per provider request), max_input_tokens (per input), counts_each_input (the provider counts '
    'each input of a batch as one request: a batch of N is booked as N requests), source (where the facts were read).';

-- One model's embedding facts (its canonical name), or null: it does not embed.
CREATE OR REPLACE FUNCTION public.google_ai_embedding_traits(p_model text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select jsonb_build_object('dimensions', e.dimensions, 'shortenable', e.shortenable, 'max_batch', e.max_batch,
    'max_input_tokens', e.max_input_tokens, 'counts_each_input', e.counts_each_input)
  from public.google_ai_embedding_models e where e.model = p_model
$$;

COMMENT ON FUNCTION public.google_ai_embedding_traits(p_model text) IS
    'An embedding model''s dimensions, batch and input limits and counting, or null for a model that does not embed.';
