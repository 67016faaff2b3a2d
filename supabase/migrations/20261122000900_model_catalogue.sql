-- Key health and the model catalogue, kept by the `maintenance` Edge Function: it calls Google's
-- models.list with every active key and records the answer here in one call per key
-- (google_ai_record_key_check). The catalogue is the "models cache" of seed 004: which models each
-- key (and so each quota group) can reach, their token limits and methods, and when that was last
-- seen. google_ai_model_catalogue_status flags configured models Google no longer lists.

-- The last check of each key: ok (models.list answered), invalid (Google refused the key; the key
-- was taken out of rotation), missing_secret (no Edge secret under env_var_name; reported only),
-- error (anything else: 429, 5xx, network; nothing concluded).
create table if not exists public.google_ai_key_health (
  api_key_id    uuid primary key references public.google_ai_api_keys (id) on delete cascade,
  key_alias     text not null,
  status        text not null,
  checked_at    timestamptz not null default now(),
  http_status   integer,
  reason        text,
  message       text,
  models_listed integer,
  constraint google_ai_key_health_status_check check (status in ('ok', 'invalid', 'missing_secret', 'error'))
);

create table if not exists public.google_ai_model_catalogue (
  api_key_id         uuid not null references public.google_ai_api_keys (id) on delete cascade,
  -- Google's model id without the "models/" prefix, e.g. gemma-3-27b-it
  model              text not null,
  key_alias          text not null,
  quota_group        text not null,
  display_name       text,
  version            text,
  input_token_limit  integer,
  output_token_limit integer,
  supported_methods  text[] not null default '{}',
  first_seen_at      timestamptz not null default now(),
  refreshed_at       timestamptz not null default now(),
  primary key (api_key_id, model)
);
create index if not exists google_ai_model_catalogue_model_idx on public.google_ai_model_catalogue (model);

comment on table public.google_ai_model_catalogue is
  'Models each key can reach (Google models.list), with token limits and methods; refreshed by the maintenance function.';
comment on table public.google_ai_key_health is 'The last models.list check of each key by the maintenance function.';

-- Records one key's check in one transaction: its health row; for 'ok' the catalogue rows of the
-- models listed (upserted, first_seen_at kept) and the removal of those no longer listed; for
-- 'invalid' the removal of its catalogue rows and, when p_disable, the key taken out of rotation
-- (is_active = false, disabled_reason, disabled_at; never deleted). p_models: a JSON array of
-- {model, display_name, version, input_token_limit, output_token_limit, supported_methods}.
create or replace function public.google_ai_record_key_check(
  p_key_id uuid,
  p_status text,
  p_http_status integer default null,
  p_reason text default null,
  p_message text default null,
  p_models jsonb default '[]',
  p_disable boolean default true)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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

  insert into public.google_ai_key_health as h (api_key_id, key_alias, status, checked_at, http_status, reason, message, models_listed)
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
      v_disabled_reason := left(format('maintenance: Google rejected the key (models.list: HTTP %s%s): %s',
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
$$;

-- Configured models against the catalogue. catalogue_status: 'listed' (at least one active key whose
-- last check succeeded lists it), 'unlisted' (active keys were checked and none lists it: Google
-- retired or renamed it, or no key may use it), 'unknown' (no active key has a successful check yet).
create or replace view public.google_ai_model_catalogue_status
with (security_invoker = true) as
with ok_keys as (
  select h.api_key_id, h.checked_at from public.google_ai_key_health h
  join public.google_ai_api_keys k on k.id = h.api_key_id
  where h.status = 'ok' and k.is_active
)
select l.model, l.is_active,
       (select count(*) from ok_keys)::int as keys_checked,
       count(c.api_key_id)::int as keys_listing,
       coalesce(array_agg(distinct c.quota_group) filter (where c.api_key_id is not null), '{}') as quota_groups,
       max(c.input_token_limit) as input_token_limit,
       max(c.output_token_limit) as output_token_limit,
       max(c.refreshed_at) as last_listed_at,
       (select max(o.checked_at) from ok_keys o) as last_checked_at,
       case when (select count(*) from ok_keys) = 0 then 'unknown'
            when count(c.api_key_id) > 0 then 'listed'
            else 'unlisted' end as catalogue_status
from public.google_ai_model_limits l
left join public.google_ai_model_catalogue c
  on c.model = l.model and c.api_key_id in (select o.api_key_id from ok_keys o)
group by l.model, l.is_active;

comment on view public.google_ai_model_catalogue_status is
  'Each configured model (google_ai_model_limits) against the catalogue: listed, unlisted (Google no longer lists it '
  'for any checked active key) or unknown (no successful check yet).';

-- The model catalogue's status (the view of the same name), for the maintenance function's summary.
create or replace function public.google_ai_catalogue_status()
returns setof public.google_ai_model_catalogue_status
language sql stable security definer set search_path = ''
as $$ select * from public.google_ai_model_catalogue_status order by model $$;
