-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the owner may name a shared response-cache scope several clients or service callers read
--   and write; a hit's lookup returns the entry's cost
set check_function_bodies = off;

drop function if exists "public"."google_ai_cache_scope"(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT client_id uuid);

create table if not exists "public"."google_ai_response_cache_shared_scopes" (
    "member" text not null,
    "shared_scope" text not null
      );

alter table "public"."google_ai_response_cache_shared_scopes" enable row level security;

create UNIQUE index if not exists google_ai_response_cache_shared_scopes_pkey ON public.google_ai_response_cache_shared_scopes USING btree (member);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_shared_scopes"'::regclass
                 and conname = 'google_ai_response_cache_shared_scopes_pkey') then
    alter table "public"."google_ai_response_cache_shared_scopes" add constraint "google_ai_response_cache_shared_scopes_pkey" PRIMARY KEY using index "google_ai_response_cache_shared_scopes_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_shared_scopes"'::regclass
                 and conname = 'google_ai_response_cache_shared_scopes_member_check') then
    alter table "public"."google_ai_response_cache_shared_scopes" add constraint "google_ai_response_cache_shared_scopes_member_check" CHECK ((member ~ '^(client:.+|service(:.+)?)$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_shared_scopes" validate constraint "google_ai_response_cache_shared_scopes_member_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_shared_scopes"'::regclass
                 and conname = 'google_ai_response_cache_shared_scopes_name_check') then
    alter table "public"."google_ai_response_cache_shared_scopes" add constraint "google_ai_response_cache_shared_scopes_name_check" CHECK ((shared_scope ~ '^shared:[A-Za-z0-9._-]{1,64}$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_shared_scopes" validate constraint "google_ai_response_cache_shared_scopes_name_check";

CREATE OR REPLACE FUNCTION public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT member text, OUT client_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_split boolean;
begin
  if p_token_hash is null then
    v_split := (public.google_ai_response_cache_config()).split_service_by_label;
    member := case when coalesce(v_split, false) then 'service:' || p_caller else 'service' end;
  else
    select 'client:' || c.name, c.id into member, client_id
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash and t.revoked_at is null and c.revoked_at is null
      and t.expires_at > pg_catalog.clock_timestamp() and p_model = any (t.models);
    if member is null then
      return;
    end if;
  end if;
  scope := coalesce((select s.shared_scope from public.google_ai_response_cache_shared_scopes s
                     where s.member = google_ai_cache_scope.member), member);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text, p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_scope record;
  v_settings public.google_ai_response_cache_settings;
  v_ttl interval;
  v_entry public.google_ai_response_cache;
  v_claimed bigint;
begin
  if p_mode not in ('on', 'refresh', 'default') or p_key !~ '^[0-9a-f]{64}$' then
    raise exception 'google_ai_cache_lookup: bad mode or key' using errcode = '22023';
  end if;
  v_scope := public.google_ai_cache_scope(p_caller, p_token_hash, p_model);
  if v_scope.scope is null then
    return jsonb_build_object('status', 'bypass');
  end if;
  v_settings := public.google_ai_response_cache_config();
  if p_mode = 'default' then
    v_ttl := public.google_ai_cache_default_ttl(v_scope.client_id, p_model);
    if v_ttl is null then
      return jsonb_build_object('status', 'bypass');
    end if;
  else
    v_ttl := coalesce(pg_catalog.make_interval(secs => p_ttl_s), v_settings.default_ttl);
  end if;
  v_ttl := least(v_ttl, v_settings.max_ttl);

  for attempt in 1 .. 2 loop
    if p_mode <> 'refresh' then
      select * into v_entry from public.google_ai_response_cache e
      where e.scope = v_scope.scope and e.key = p_key;
      if found and v_entry.answer is not null and v_entry.expires_at > v_now then
        -- The hit's commit does not wait for its WAL flush: a crash of the database in the next moments
        -- could lose this audit row, never an answer or a booking (a hit books nothing).
        perform pg_catalog.set_config('synchronous_commit', 'off', true);
        insert into public.google_ai_response_cache_hits (created_at, entry_id, scope, caller, request_id, model,
          saved_input_tokens, saved_output_tokens, saved_usd, age_ms)
        values (v_now, v_entry.id, v_scope.scope, coalesce(p_caller, v_scope.member), p_request_id, v_entry.model,
          v_entry.input_tokens, v_entry.output_tokens, v_entry.cost_usd,
          (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
        return jsonb_build_object('status', 'hit', 'entry', v_entry.id, 'answer', v_entry.answer,
          'age_ms', (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint, 'cost_usd', v_entry.cost_usd);
      end if;
    end if;
    -- No answer to serve: take the flight unless another request holds it, or an answer landed since
    -- the read above (then it is read again: a hit). An answer stays in the row, still served to
    -- others, until a refresh's new one replaces it.
    insert into public.google_ai_response_cache as e (scope, key, model, flight_holder, flight_until)
    values (v_scope.scope, p_key, p_model, p_holder, p_flight_until)
    on conflict (scope, key) do update set flight_holder = excluded.flight_holder,
      flight_until = excluded.flight_until
    where (e.flight_until is null or e.flight_until <= v_now or e.flight_holder = excluded.flight_holder)
      and (p_mode = 'refresh' or e.answer is null or e.expires_at <= v_now)
    returning e.id into v_claimed;
    if v_claimed is not null then
      insert into public.google_ai_response_cache_misses as m (scope, misses) values (v_scope.scope, 1)
      on conflict (scope) do update set misses = m.misses + 1;
      return jsonb_build_object('status', 'miss', 'entry', v_claimed,
        'ttl_s', extract(epoch from v_ttl)::integer);
    end if;
    -- Held by another: its answer may have landed meanwhile (read it once more), else wait for it.
    select * into v_entry from public.google_ai_response_cache e
    where e.scope = v_scope.scope and e.key = p_key;
    if not (found and v_entry.answer is not null and v_entry.expires_at > v_now and p_mode <> 'refresh') then
      return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
    end if;
  end loop;
  return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
end
$function$
;

grant delete on table "public"."google_ai_response_cache_shared_scopes" to "service_role";

grant insert on table "public"."google_ai_response_cache_shared_scopes" to "service_role";

grant select on table "public"."google_ai_response_cache_shared_scopes" to "service_role";

grant update on table "public"."google_ai_response_cache_shared_scopes" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT member text, OUT client_id uuid) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_response_cache_shared_scopes from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_response_cache_shared_scopes to service_role;
comment on table public.google_ai_response_cache_shared_scopes is 'Scopes the owner shares: a member (a client''s scope ''client:<name>'', the service key''s ''service'', or ''service:<label>'' where the settings split it) reads and writes the entries of its shared scope (''shared:<name>'') instead of its own; every member of one shared scope is served the others'' answers. No row: a member keeps its own scope.';
