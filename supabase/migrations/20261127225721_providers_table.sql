-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a provider is a row: google_ai_providers (name, dialect, display name, base URL,
--   key-secret pattern) and google_ai_provider_list(); google_ai_provider() becomes pure normalisation;
--   key-disabling messages name the provider's display name
set check_function_bodies = off;

create table if not exists "public"."google_ai_providers" (
    "name" text not null,
    "dialect" text not null,
    "display_name" text not null,
    "base_url" text,
    "key_env_pattern" text
      );

alter table "public"."google_ai_providers" enable row level security;

create UNIQUE index if not exists google_ai_providers_pkey ON public.google_ai_providers USING btree (name);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_pkey') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_pkey" PRIMARY KEY using index "google_ai_providers_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_base_url_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_base_url_check" CHECK ((base_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#[:space:]]*)?$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_base_url_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_name_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_name_check" CHECK (((name ~ '^[a-z][a-z0-9]{0,39}$'::text) AND (name = public.google_ai_provider(name)))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_name_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_own_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_own_check" CHECK (((name = dialect) OR ((base_url IS NOT NULL) AND (key_env_pattern IS NOT NULL)))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_own_check";

CREATE OR REPLACE FUNCTION public.google_ai_provider_list()
 RETURNS SETOF public.google_ai_providers
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select * from public.google_ai_providers p order by p.name
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  if p_outcome not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'google_error') then
    raise exception 'p_outcome must be succeeded, upstream_error, network_error or timeout' using errcode = '22023';
  end if;
  if not (p_quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'p_quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = case p_outcome when 'google_error' then 'upstream_error' else p_outcome end,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_input_tokens,
    output_tokens = p_output_tokens,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    quota_id = left(p_quota_id, 200),
    error_message = left(p_error_message, 1000),
    latency_ms = p_latency_ms,
    quota_cause = p_quota_cause,
    service_tier = left(p_service_tier, 20),
    served_tier = left(p_served_tier, 20),
    -- (greatest() ignores a null: a time not known stays null)
    added_ms = case when p_added_ms is not null then greatest(0, p_added_ms) end,
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if p_outcome = 'succeeded' then
    perform public.google_ai_record_success(v_att, p_input_tokens, p_output_tokens, p_response);
  end if;

  -- The provider says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = v_att.api_key_id and k.is_active;
  end if;

  if p_cooldown_until_pacific_midnight then
    v_until := public.google_ai_pacific_midnight_after(pg_catalog.clock_timestamp());
  else
    v_until := p_cooldown_until;
  end if;
  if v_until is not null and v_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(v_att.quota_group, v_att.model, v_until, p_quota_cause,
      coalesce(p_error_code, p_outcome), p_quota_id);
  end if;
  perform public.google_ai_settle_call(v_att, p_input_tokens, p_output_tokens, p_room_requests, p_room_tokens,
    p_room_until, p_settled_tokens);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_provider(p_name text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '')
           when 'googleai' then 'google' when 'gemini' then 'google'
           else pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '') end
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
      v_disabled_reason := left(format('maintenance: %s rejected the key (its model list: HTTP %s%s): %s',
        (select p.display_name from public.google_ai_providers p where p.name = v_key.serves_provider),
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

grant delete on table "public"."google_ai_providers" to "service_role";

grant insert on table "public"."google_ai_providers" to "service_role";

grant select on table "public"."google_ai_providers" to "service_role";

grant update on table "public"."google_ai_providers" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_api_keys."provider" is 'Whose key this is, as the owner writes it: a provider''s name in any case, with or without spaces, _ or - (gemini and Google AI are google; null is google). Kept as written; serves_provider holds the gateway''s reading.';
comment on column public.google_ai_api_keys."serves_provider" is 'The provider (google_ai_providers) whose model rows the key serves: google_ai_provider(provider), kept by PostgreSQL.';
comment on column public.google_ai_model_limits."provider" is 'Who serves the model (google_ai_providers). Only keys of this provider serve it.';
revoke all on function public.google_ai_provider_list() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_provider_list() to service_role;
grant execute on function public.google_ai_provider_list() to eve_gateway;
revoke all on table public.google_ai_providers from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_providers to service_role;
