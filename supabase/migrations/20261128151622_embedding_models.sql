-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Embedding models: their own facts beside a model row (dimensions, batch and input limits,
--   whether the provider counts each input of a batch as a request), read by google_ai_embedding_traits
set check_function_bodies = off;

create table if not exists "public"."google_ai_embedding_models" (
    "model" text not null,
    "dimensions" integer not null,
    "shortenable" boolean not null default false,
    "max_batch" integer not null,
    "max_input_tokens" integer not null,
    "counts_each_input" boolean not null default false,
    "source" text,
    "updated_at" timestamp with time zone not null default now()
      );

alter table "public"."google_ai_embedding_models" enable row level security;

create UNIQUE index if not exists google_ai_embedding_models_pkey ON public.google_ai_embedding_models USING btree (model);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_pkey') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_pkey" PRIMARY KEY using index "google_ai_embedding_models_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_dimensions_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_dimensions_check" CHECK (((dimensions >= 1) AND (dimensions <= 65536))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_dimensions_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_max_batch_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_max_batch_check" CHECK (((max_batch >= 1) AND (max_batch <= 100000))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_max_batch_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_max_input_tokens_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_max_input_tokens_check" CHECK ((max_input_tokens >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_max_input_tokens_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_model_fkey') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_model_fkey" FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_model_fkey";

CREATE OR REPLACE FUNCTION public.google_ai_embedding_traits(p_model text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object('dimensions', e.dimensions, 'shortenable', e.shortenable, 'max_batch', e.max_batch,
    'max_input_tokens', e.max_input_tokens, 'counts_each_input', e.counts_each_input)
  from public.google_ai_embedding_models e where e.model = p_model
$function$
;

grant delete on table "public"."google_ai_embedding_models" to "service_role";

grant insert on table "public"."google_ai_embedding_models" to "service_role";

grant select on table "public"."google_ai_embedding_models" to "service_role";

grant update on table "public"."google_ai_embedding_models" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on table public.google_ai_embedding_models from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_embedding_models to service_role;
comment on table public.google_ai_embedding_models is 'Embedding models (a row of google_ai_model_limits each): dimensions (shortenable: a smaller one may be asked), max_batch (inputs per provider request), max_input_tokens (per input), counts_each_input (the provider counts each input of a batch as one request: the gateway sends one input per call), source (where the facts were read).';
revoke all on function public.google_ai_embedding_traits(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_embedding_traits(p_model text) to eve_gateway;
grant execute on function public.google_ai_embedding_traits(p_model text) to service_role;
comment on function public.google_ai_embedding_traits(p_model text) is 'An embedding model''s dimensions, batch and input limits and counting, or null for a model that does not embed.';
