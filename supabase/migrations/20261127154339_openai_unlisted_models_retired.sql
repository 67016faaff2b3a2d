-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A chain passes over a model its own provider's checked keys all leave unlisted, OpenAI's
--   as Google's: google_ai_model_unlisted reads the model's provider
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, OUT names text[], OUT models text[], OUT retired boolean[], OUT first integer, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
begin
  select '{}', '{}', '{}', 1 into names, models, retired, first;
  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, token_id, client_id, caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_row := public.google_ai_model_by_name(v_name);
    continue when coalesce(v_row.model, v_name) = any (models);
    continue when cardinality(models) > 0 and p_token_hash is not null
                  and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
    names := names || v_name;
    models := models || coalesce(v_row.model, v_name);
    retired := retired || (v_row.id is not null
                           and (not v_row.is_active
                                or public.google_ai_model_unlisted(v_row.model)));
  end loop;
  if not (false = any (retired)) then
    retired := array_fill(false, array[cardinality(models)]);
  end if;
  if p_queue_ticket is not null then
    first := coalesce(array_position(models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_unlisted(p_model text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    with ok_keys as (
      select h.api_key_id from public.google_ai_key_health h
      join public.google_ai_api_keys k on k.id = h.api_key_id
      join public.google_ai_model_limits l on l.model = p_model and l.provider = k.serves_provider
      where h.status = 'ok' and k.is_active)
    select exists (select 1 from ok_keys)
       and not exists (select 1 from public.google_ai_model_catalogue c
                       where c.model = p_model and c.api_key_id in (select o.api_key_id from ok_keys o)));
end
$function$
;
