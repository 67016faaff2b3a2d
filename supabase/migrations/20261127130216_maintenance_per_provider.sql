-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The maintenance run checks each provider's keys: google_ai_active_keys takes the provider
--   (Google's by default), the life cycle review compares each provider's models with its own keys' lists,
--   and a key's disabled reason names the provider that refused it.
set check_function_bodies = off;

drop function if exists "public"."google_ai_active_keys"();

CREATE OR REPLACE FUNCTION public.google_ai_active_keys(p_provider text DEFAULT 'google'::text)
 RETURNS TABLE(id text, key_alias text, env_var_name text, quota_group text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select k.id::text, k.key_alias, k.env_var_name, public.google_ai_quota_group(k.project_id, k.id)
  from public.google_ai_api_keys k
  where k.is_active and k.serves_provider = p_provider
  order by k.priority nulls last, k.key_alias
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer DEFAULT 14)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_checked text[]; -- providers with an active key whose last check succeeded
  v_listed jsonb;   -- {provider: {model: when a checked active key of that provider last listed it}}
  v_restored text[];
begin
  select coalesce(jsonb_object_agg(x.provider, x.models), '{}') into v_listed
  from (select y.provider, jsonb_object_agg(y.model, y.listed_at) as models
        from (select k.serves_provider as provider, c.model, max(c.refreshed_at) as listed_at
              from public.google_ai_model_catalogue c
              join public.google_ai_key_health h on h.api_key_id = c.api_key_id and h.status = 'ok'
              join public.google_ai_api_keys k on k.id = c.api_key_id and k.is_active
              group by k.serves_provider, c.model) y
        group by y.provider) x;
  select coalesce(array_agg(distinct k.serves_provider), '{}') into v_checked
  from public.google_ai_key_health h join public.google_ai_api_keys k on k.id = h.api_key_id
  where h.status = 'ok' and k.is_active;

  with back as (
    update public.google_ai_model_limits l set withdrawn_at = null, withdrawn_message = null, google_successor = null
    where l.provider = any (v_checked) and l.withdrawn_at is not null and v_listed -> l.provider ? l.model
      and (v_listed -> l.provider ->> l.model)::timestamptz > l.withdrawn_at
    returning l.model)
  select coalesce(array_agg(b.model order by b.model), '{}') into v_restored from back b;

  return jsonb_build_object(
    'checked', cardinality(v_checked) > 0,
    'restored', to_jsonb(v_restored),
    'withdrawn', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'withdrawn_at', l.withdrawn_at,
                             'message', l.withdrawn_message, 'successor', l.successor,
                             'google_successor', l.google_successor, 'provider', l.provider) order by l.model)
                           from public.google_ai_model_limits l where l.withdrawn_at is not null), '[]'),
    'missing', coalesce((select jsonb_agg(l.model order by l.model) from public.google_ai_model_limits l
                         where l.provider = any (v_checked) and l.is_active
                           and not coalesce(v_listed -> l.provider, '{}') ? l.model), '[]'),
    'shutting_down', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'shutdown_date', l.shutdown_date,
                                 'days_left', l.shutdown_date - current_date, 'successor', l.successor)
                                 order by l.shutdown_date, l.model)
                               from public.google_ai_model_limits l
                               where l.is_active and l.shutdown_date <= current_date + coalesce(p_within_days, 14)),
                                 '[]'),
    'unserved', coalesce((select jsonb_agg(distinct g order by g)
                          from jsonb_each(v_listed) p cross join lateral jsonb_object_keys(p.value) g
                          where not exists (select 1 from public.google_ai_model_limits l where l.model = g)), '[]'));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer DEFAULT NULL::integer, p_reason text DEFAULT NULL::text, p_message text DEFAULT NULL::text, p_models jsonb DEFAULT '[]'::jsonb, p_disable boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_key public.google_ai_api_keys;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_message text := public.google_ai_sanitize_error(p_message);
  v_listed integer;
  v_upserted integer := 0;
  v_removed integer := 0;
  v_disabled boolean := false;
  v_disabled_reason text;
begin
  if p_status is null or p_status not in ('ok', 'invalid', 'missing_secret', 'error') then
    raise exception 'p_status must be ok, invalid, missing_secret or error' using errcode = '22023';
  end if;
  if p_models is null or jsonb_typeof(p_models) <> 'array' then
    raise exception 'p_models must be a JSON array' using errcode = '22023';
  end if;

  select * into v_key from public.google_ai_api_keys k where k.id = p_key_id for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'unknown_key');
  end if;
  v_listed := case when p_status = 'ok' then jsonb_array_length(p_models) end;

  insert into public.google_ai_key_health as h (api_key_id, key_alias,
    status, checked_at, http_status, reason, message, models_listed)
  values (p_key_id, v_key.key_alias, p_status, v_now, p_http_status, left(p_reason, 200), v_message, v_listed)
  on conflict (api_key_id) do update set
    key_alias = excluded.key_alias, status = excluded.status, checked_at = excluded.checked_at,
    http_status = excluded.http_status, reason = excluded.reason, message = excluded.message,
    models_listed = excluded.models_listed;

  if p_status = 'ok' then
    insert into public.google_ai_model_catalogue as c (api_key_id, model, key_alias, quota_group, display_name, version,
      input_token_limit, output_token_limit, supported_methods, first_seen_at, refreshed_at)
    select distinct on (m.model) p_key_id, m.model, v_key.key_alias,
           public.google_ai_quota_group(v_key.project_id, v_key.id),
           left(m.display_name, 200), left(m.version, 100), m.input_token_limit, m.output_token_limit,
           coalesce(m.supported_methods, '{}'), v_now, v_now
    from jsonb_to_recordset(p_models) as m(model text, display_name text, version text,
           input_token_limit integer, output_token_limit integer, supported_methods text[])
    where m.model is not null and m.model <> ''
    on conflict (api_key_id, model) do update set
      key_alias = excluded.key_alias, quota_group = excluded.quota_group, display_name = excluded.display_name,
      version = excluded.version, input_token_limit = excluded.input_token_limit,
      output_token_limit = excluded.output_token_limit, supported_methods = excluded.supported_methods,
      refreshed_at = excluded.refreshed_at;
    get diagnostics v_upserted = row_count;
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id and c.refreshed_at < v_now;
    get diagnostics v_removed = row_count;
  elsif p_status = 'invalid' then
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id;
    get diagnostics v_removed = row_count;
    if p_disable and v_key.is_active then
      v_disabled_reason := left(format('maintenance: %s rejected the key (%s: HTTP %s%s): %s',
        case v_key.serves_provider when 'openai' then 'OpenAI' else 'Google' end,
        case v_key.serves_provider when 'openai' then 'GET /v1/models' else 'models.list' end,
        coalesce(p_http_status::text, '?'), coalesce(' ' || p_reason, ''), v_message), 500);
      update public.google_ai_api_keys k set
        is_active = false, disabled_reason = v_disabled_reason, disabled_at = v_now, updated_at = v_now
      where k.id = p_key_id;
      v_disabled := true;
    end if;
  end if;

  return jsonb_build_object('ok', true, 'key_alias', v_key.key_alias, 'status', p_status, 'disabled', v_disabled,
    'disabled_reason', v_disabled_reason, 'models', v_upserted, 'removed', v_removed, 'checked_at', v_now);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_active_keys(p_provider text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_active_keys(p_provider text) to service_role;
grant execute on function public.google_ai_active_keys(p_provider text) to eve_gateway;
comment on table public.google_ai_key_health is 'The last check of each key against its provider''s model list, by the maintenance function.';
comment on table public.google_ai_model_catalogue is 'Models each key can reach (its provider''s model list), with token limits and methods where the provider gives them (Google does, OpenAI does not); refreshed by the maintenance function.';
