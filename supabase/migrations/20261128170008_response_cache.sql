-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the response cache: entries keyed by what the provider would be sent, per scope, with
--   their single flight, hit audit rows and misses, purge, the housekeeping step, its samples in the metrics
--   and its usage view
set check_function_bodies = off;

create table if not exists "public"."google_ai_response_cache" (
    "id" bigint generated always as identity not null,
    "scope" text not null,
    "key" text not null,
    "model" text not null,
    "served_model" text,
    "provider" text,
    "answer" jsonb,
    "bytes" integer not null default 0,
    "finish" text,
    "input_tokens" integer,
    "output_tokens" integer,
    "cost_usd" numeric,
    "created_at" timestamp with time zone not null default now(),
    "expires_at" timestamp with time zone,
    "flight_holder" uuid,
    "flight_until" timestamp with time zone
      );

alter table "public"."google_ai_response_cache" enable row level security;

create table if not exists "public"."google_ai_response_cache_defaults" (
    "id" bigint generated always as identity not null,
    "client_id" uuid,
    "model" text,
    "ttl" interval not null
      );

alter table "public"."google_ai_response_cache_defaults" enable row level security;

create table if not exists "public"."google_ai_response_cache_hits" (
    "id" bigint generated always as identity not null,
    "created_at" timestamp with time zone not null default now(),
    "entry_id" bigint not null,
    "scope" text not null,
    "caller" text not null,
    "request_id" text,
    "model" text not null,
    "saved_input_tokens" integer,
    "saved_output_tokens" integer,
    "saved_usd" numeric,
    "age_ms" bigint not null
      );

alter table "public"."google_ai_response_cache_hits" enable row level security;

create table if not exists "public"."google_ai_response_cache_misses" (
    "scope" text not null,
    "misses" bigint not null default 0
      );

alter table "public"."google_ai_response_cache_misses" enable row level security;

create table if not exists "public"."google_ai_response_cache_settings" (
    "id" boolean not null default true,
    "max_bytes_per_scope" bigint not null default 67108864,
    "max_ttl" interval not null default '7 days'::interval,
    "default_ttl" interval not null default '01:00:00'::interval,
    "split_service_by_label" boolean not null default false,
    "hits_retention" interval not null default '30 days'::interval
      );

alter table "public"."google_ai_response_cache_settings" enable row level security;

create UNIQUE index if not exists google_ai_response_cache_defaults_one ON public.google_ai_response_cache_defaults USING btree (COALESCE(client_id, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(model, ''::text));

create UNIQUE index if not exists google_ai_response_cache_defaults_pkey ON public.google_ai_response_cache_defaults USING btree (id);

create index if not exists google_ai_response_cache_expires_at_idx ON public.google_ai_response_cache USING btree (expires_at);

create index if not exists google_ai_response_cache_hits_created_at_idx ON public.google_ai_response_cache_hits USING btree (created_at);

create UNIQUE index if not exists google_ai_response_cache_hits_pkey ON public.google_ai_response_cache_hits USING btree (id);

create UNIQUE index if not exists google_ai_response_cache_misses_pkey ON public.google_ai_response_cache_misses USING btree (scope);

create UNIQUE index if not exists google_ai_response_cache_pkey ON public.google_ai_response_cache USING btree (id);

create UNIQUE index if not exists google_ai_response_cache_scope_key ON public.google_ai_response_cache USING btree (scope, key);

create UNIQUE index if not exists google_ai_response_cache_settings_pkey ON public.google_ai_response_cache_settings USING btree (id);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache"'::regclass
                 and conname = 'google_ai_response_cache_pkey') then
    alter table "public"."google_ai_response_cache" add constraint "google_ai_response_cache_pkey" PRIMARY KEY using index "google_ai_response_cache_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_defaults"'::regclass
                 and conname = 'google_ai_response_cache_defaults_pkey') then
    alter table "public"."google_ai_response_cache_defaults" add constraint "google_ai_response_cache_defaults_pkey" PRIMARY KEY using index "google_ai_response_cache_defaults_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_hits"'::regclass
                 and conname = 'google_ai_response_cache_hits_pkey') then
    alter table "public"."google_ai_response_cache_hits" add constraint "google_ai_response_cache_hits_pkey" PRIMARY KEY using index "google_ai_response_cache_hits_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_misses"'::regclass
                 and conname = 'google_ai_response_cache_misses_pkey') then
    alter table "public"."google_ai_response_cache_misses" add constraint "google_ai_response_cache_misses_pkey" PRIMARY KEY using index "google_ai_response_cache_misses_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_settings"'::regclass
                 and conname = 'google_ai_response_cache_settings_pkey') then
    alter table "public"."google_ai_response_cache_settings" add constraint "google_ai_response_cache_settings_pkey" PRIMARY KEY using index "google_ai_response_cache_settings_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache"'::regclass
                 and conname = 'google_ai_response_cache_key_check') then
    alter table "public"."google_ai_response_cache" add constraint "google_ai_response_cache_key_check" CHECK ((key ~ '^[0-9a-f]{64}$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache" validate constraint "google_ai_response_cache_key_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache"'::regclass
                 and conname = 'google_ai_response_cache_scope_key') then
    alter table "public"."google_ai_response_cache" add constraint "google_ai_response_cache_scope_key" UNIQUE using index "google_ai_response_cache_scope_key";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_defaults"'::regclass
                 and conname = 'google_ai_response_cache_defaults_client_id_fkey') then
    alter table "public"."google_ai_response_cache_defaults" add constraint "google_ai_response_cache_defaults_client_id_fkey" FOREIGN KEY (client_id) REFERENCES public.google_ai_clients(id) ON DELETE CASCADE not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_defaults" validate constraint "google_ai_response_cache_defaults_client_id_fkey";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_defaults"'::regclass
                 and conname = 'google_ai_response_cache_defaults_ttl_check') then
    alter table "public"."google_ai_response_cache_defaults" add constraint "google_ai_response_cache_defaults_ttl_check" CHECK ((ttl > '00:00:00'::interval)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_defaults" validate constraint "google_ai_response_cache_defaults_ttl_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_settings"'::regclass
                 and conname = 'google_ai_response_cache_settings_bytes_check') then
    alter table "public"."google_ai_response_cache_settings" add constraint "google_ai_response_cache_settings_bytes_check" CHECK ((max_bytes_per_scope >= 0)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_settings" validate constraint "google_ai_response_cache_settings_bytes_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_settings"'::regclass
                 and conname = 'google_ai_response_cache_settings_one_row') then
    alter table "public"."google_ai_response_cache_settings" add constraint "google_ai_response_cache_settings_one_row" CHECK (id) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_settings" validate constraint "google_ai_response_cache_settings_one_row";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_response_cache_settings"'::regclass
                 and conname = 'google_ai_response_cache_settings_ttl_check') then
    alter table "public"."google_ai_response_cache_settings" add constraint "google_ai_response_cache_settings_ttl_check" CHECK (((default_ttl > '00:00:00'::interval) AND (max_ttl >= default_ttl))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_response_cache_settings" validate constraint "google_ai_response_cache_settings_ttl_check";

CREATE OR REPLACE FUNCTION public.google_ai_cache_abandon(p_entry bigint, p_holder uuid)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  delete from public.google_ai_response_cache e
  where e.id = p_entry and e.flight_holder = p_holder and e.answer is null;
  update public.google_ai_response_cache e set flight_holder = null, flight_until = null
  where e.id = p_entry and e.flight_holder = p_holder;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_default_ttl(p_client_id uuid, p_model text)
 RETURNS interval
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select d.ttl from public.google_ai_response_cache_defaults d
  where (d.client_id = p_client_id or d.client_id is null) and (d.model = p_model or d.model is null)
  order by d.client_id is null, d.model is null
  limit 1
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_defaults_exist()
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$ select exists (select from public.google_ai_response_cache_defaults) $function$
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
        values (v_now, v_entry.id, v_scope.scope, coalesce(p_caller, v_scope.scope), p_request_id, v_entry.model,
          v_entry.input_tokens, v_entry.output_tokens, v_entry.cost_usd,
          (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
        return jsonb_build_object('status', 'hit', 'entry', v_entry.id, 'answer', v_entry.answer,
          'age_ms', (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
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

CREATE OR REPLACE FUNCTION public.google_ai_cache_purge(p_scope text DEFAULT NULL::text, p_model text DEFAULT NULL::text)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_n integer;
begin
  delete from public.google_ai_response_cache e
  where (p_scope is null or e.scope = p_scope)
    and (v_model is null or e.model = v_model or e.served_model = v_model);
  get diagnostics v_n = row_count;
  return v_n;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT client_id uuid)
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
    scope := case when coalesce(v_split, false) then 'service:' || p_caller else 'service' end;
    return;
  end if;
  select 'client:' || c.name, c.id into scope, client_id
  from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
  where t.token_hash = p_token_hash and t.revoked_at is null and c.revoked_at is null
    and t.expires_at > pg_catalog.clock_timestamp() and p_model = any (t.models);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb, p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_attempt record;
  v_n integer;
begin
  select a.input_tokens, a.output_tokens, a.cost_usd into v_attempt
  from public.google_ai_attempts a where a.reservation_id = p_reservation_id;
  update public.google_ai_response_cache e set
    answer = p_answer,
    bytes = pg_catalog.octet_length(p_answer::text),
    served_model = p_served_model,
    provider = p_provider,
    finish = p_finish,
    input_tokens = v_attempt.input_tokens,
    output_tokens = v_attempt.output_tokens,
    cost_usd = v_attempt.cost_usd,
    created_at = v_now,
    expires_at = v_now + pg_catalog.make_interval(secs => p_ttl_s),
    flight_holder = null,
    flight_until = null
  where e.id = p_entry and e.flight_holder = p_holder;
  get diagnostics v_n = row_count;
  return v_n = 1;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_response_cache(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cache public.google_ai_response_cache_settings;
  v_expired bigint;
  v_over bigint;
  v_hits bigint;
begin
  v_cache := public.google_ai_response_cache_config();
  delete from public.google_ai_response_cache e
  where (e.answer is not null and e.expires_at <= p_now)
     or (e.answer is null and (e.flight_until is null or e.flight_until <= p_now));
  get diagnostics v_expired = row_count;
  with sized as (
    select e.id, sum(e.bytes) over (partition by e.scope order by e.created_at desc, e.id desc) as held
    from public.google_ai_response_cache e
    where e.answer is not null)
  delete from public.google_ai_response_cache e
  using sized s where s.id = e.id and s.held > v_cache.max_bytes_per_scope;
  get diagnostics v_over = row_count;
  delete from public.google_ai_response_cache_hits h where h.created_at < p_now - v_cache.hits_retention;
  get diagnostics v_hits = row_count;
  return jsonb_build_object('expired', v_expired, 'over_size', v_over, 'hit_rows', v_hits);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_response_cache()
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with held as (
    select e.scope, count(*) as entries, sum(e.bytes) as bytes
    from public.google_ai_response_cache e where e.answer is not null group by e.scope),
  served as (
    select h.scope, count(*) as hits, sum(coalesce(h.saved_usd, 0)) as saved_usd
    from public.google_ai_response_cache_hits h group by h.scope),
  missed as (select m.scope, m.misses from public.google_ai_response_cache_misses m),
  scopes as (select held.scope from held union select served.scope from served union select missed.scope from missed)
  -- (The label written as google_ai_metric_label writes one, which 91_metrics.sql defines after this file.)
  select x.family, x.family,
         'scope="' || replace(replace(replace(sc.scope, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"', x.v
  from scopes sc
  left join held on held.scope = sc.scope
  left join served on served.scope = sc.scope
  left join missed on missed.scope = sc.scope
  cross join lateral (values
    ('eve_gateway_response_cache_hits', coalesce(served.hits, 0)::numeric),
    ('eve_gateway_response_cache_saved_usd', coalesce(served.saved_usd, 0)),
    ('eve_gateway_response_cache_misses_total', coalesce(missed.misses, 0)::numeric),
    ('eve_gateway_response_cache_entries', coalesce(held.entries, 0)::numeric),
    ('eve_gateway_response_cache_bytes', coalesce(held.bytes, 0)::numeric)) x(family, v)
$function$
;

create or replace view "public"."google_ai_response_cache_24h" as  WITH served AS (
         SELECT h.scope,
            h.model,
            (count(*))::integer AS hits,
            COALESCE(sum(h.saved_input_tokens), (0)::bigint) AS saved_input_tokens,
            COALESCE(sum(h.saved_output_tokens), (0)::bigint) AS saved_output_tokens,
            COALESCE(sum(h.saved_usd), (0)::numeric) AS saved_usd
           FROM public.google_ai_response_cache_hits h
          WHERE (h.created_at > (now() - '24:00:00'::interval))
          GROUP BY h.scope, h.model
        ), held AS (
         SELECT e.scope,
            e.model,
            (count(*))::integer AS entries,
            COALESCE(sum(e.bytes), (0)::bigint) AS bytes
           FROM public.google_ai_response_cache e
          WHERE (e.answer IS NOT NULL)
          GROUP BY e.scope, e.model
        )
 SELECT COALESCE(served.scope, held.scope) AS scope,
    COALESCE(served.model, held.model) AS model,
    COALESCE(served.hits, 0) AS hits,
    COALESCE(served.saved_input_tokens, (0)::bigint) AS saved_input_tokens,
    COALESCE(served.saved_output_tokens, (0)::bigint) AS saved_output_tokens,
    COALESCE(served.saved_usd, (0)::numeric) AS saved_usd,
    COALESCE(held.entries, 0) AS entries,
    COALESCE(held.bytes, (0)::bigint) AS bytes
   FROM (served
     FULL JOIN held ON (((held.scope = served.scope) AND (held.model = served.model))));

CREATE OR REPLACE FUNCTION public.google_ai_response_cache_config()
 RETURNS public.google_ai_response_cache_settings
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce((select s from public.google_ai_response_cache_settings s limit 1),
    row(true, 67108864, interval '7 days', interval '1 hour', false, interval '30 days')
      ::public.google_ai_response_cache_settings)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings)
 RETURNS TABLE(name text, rel text, fn text, key text, condition text, cutoff timestamp with time zone, sort text)
 LANGUAGE sql
 STABLE
AS $function$
  values
    ('abandon_stale_reservations', 'public.google_ai_attempts', 'abandon', null, null, null::timestamptz, null),
    ('attempts_retention', 'public.google_ai_attempts', 'attempts', null, null, null, null),
    -- Kaggle tokens expired or revoked more than token_grace ago. The grace (>= 1 hour) outlives any
    -- open reservation of a token (tokens live <= 12 hours) and the mint rate limit's look-back.
    ('tokens', 'public.google_ai_tokens', null, 'id', 's.expires_at < $1 or s.revoked_at < $1',
     p_now operator(pg_catalog.-) p_settings.token_grace, null),
    -- Finished runs only: a run still going has no end_time.
    ('cron_history', 'cron.job_run_details', null, 'runid', 's.end_time < $1',
     p_now operator(pg_catalog.-) p_settings.cron_history_retention, null),
    -- An expired cooldown is inert (the reservation ignores it); google_ai_cooldown writes one anew.
    ('expired_cooldowns', 'public.google_ai_cooldowns', null, 'ctid', 's.cooldown_until < $1', p_now,
     's.cooldown_until'),
    -- A stored response is replayed for 24 hours (idempotent request ids); older rows are never read.
    ('replay_responses', 'public.google_ai_responses', null, 'ctid', 's.created_at < $1',
     p_now operator(pg_catalog.-) interval '24 hours', 's.created_at'),
    -- A Responses API conversation past its lifetime (stored_response_lifetime) is never read again.
    ('stored_responses', 'public.google_ai_stored_responses', null, 'id', 's.expires_at < $1', p_now,
     's.expires_at'),
    ('response_cache', 'public.google_ai_response_cache', 'response_cache', null, null, null, null),
    ('dead_counters', 'public.google_ai_usage_counters', 'counters', null, null, null, null)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metrics()
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_at timestamptz := pg_catalog.now();
begin
  perform public.google_ai_metrics_fold(null, false);
  -- (PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, about half a
  -- scrape's CPU; this keeps its plan for the connection.)
  -- (A sample without a value has none to say: an owner's older log row may lack its times.)
  return query
    with fold as (select (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark)
    select s.* from (
      select c.* from fold, public.google_ai_metric_counts(v_at, fold.mark) c
      union all
      select q.* from public.google_ai_metric_quota(v_at) q
      union all
      select g.* from fold, public.google_ai_metric_gauges(v_at, fold.mark) g
      union all -- (the pg_cron jobs: 1 where one is missing)
      select 'eve_gateway_cron_job_missing', 'eve_gateway_cron_job_missing',
             public.google_ai_metric_label('job', j.job), case when j.present then 0 else 1 end
      from public.google_ai_cron_jobs() j
      union all
      select r.* from public.google_ai_metric_response_cache() r
    ) s
    where s.value is not null;
end
$function$
;

grant delete on table "public"."google_ai_response_cache" to "service_role";

grant select on table "public"."google_ai_response_cache" to "service_role";

grant delete on table "public"."google_ai_response_cache_defaults" to "service_role";

grant insert on table "public"."google_ai_response_cache_defaults" to "service_role";

grant select on table "public"."google_ai_response_cache_defaults" to "service_role";

grant update on table "public"."google_ai_response_cache_defaults" to "service_role";

grant select on table "public"."google_ai_response_cache_hits" to "service_role";

grant select on table "public"."google_ai_response_cache_misses" to "service_role";

grant select on table "public"."google_ai_response_cache_settings" to "service_role";

grant update on table "public"."google_ai_response_cache_settings" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_cache_abandon(p_entry bigint, p_holder uuid) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_cache_abandon(p_entry bigint, p_holder uuid) to eve_gateway;
revoke all on function public.google_ai_cache_default_ttl(p_client_id uuid, p_model text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_cache_defaults_exist() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_cache_defaults_exist() to eve_gateway;
revoke all on function public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text, p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text, p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text) to eve_gateway;
revoke all on function public.google_ai_cache_purge(p_scope text, p_model text) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_cache_purge(p_scope text, p_model text) to service_role;
revoke all on function public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT client_id uuid) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb, p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb, p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid) to eve_gateway;
revoke all on function public.google_ai_housekeeping_response_cache(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_metric_response_cache() from public, anon, authenticated, service_role;
revoke all on table public.google_ai_response_cache from public, anon, authenticated, service_role;
grant select, delete on table public.google_ai_response_cache to service_role;
comment on table public.google_ai_response_cache is 'Response cache entries: per (scope, key), the whole answer (the InvokeResult every route writes its caller''s answer from; null while its first request is in flight), the model asked (after its alias) and the one that served, its finish reason, what it cost, until when it is served; flight_holder and flight_until: the request calling the provider for it now (single flight).';
comment on column public.google_ai_response_cache."key" is 'SHA-256 hex of what the provider would be sent (its provider, model and wire body, the stream flag and the gateway''s service tier left out): two routes share an entry when that is the same.';
revoke all on table public.google_ai_response_cache_24h from public, anon, authenticated, service_role;
grant select on table public.google_ai_response_cache_24h to service_role;
alter view public.google_ai_response_cache_24h set (security_invoker='true');
comment on view public.google_ai_response_cache_24h is 'The response cache over the last 24 hours, per scope and model: hits, the tokens and US dollars they spared, entries and bytes held now (docs/response-cache.md).';
revoke all on function public.google_ai_response_cache_config() from public, anon, authenticated, service_role;
revoke all on table public.google_ai_response_cache_defaults from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_response_cache_defaults to service_role;
comment on table public.google_ai_response_cache_defaults is 'The owner''s default: requests that say nothing of the cache use it for this client (null: every caller) and this model (canonical; null: every model), with this lifetime; the most specific row wins (client and model, then client, then model). A request''s x-eve-cache header always overrides it.';
revoke all on table public.google_ai_response_cache_hits from public, anon, authenticated, service_role;
grant select on table public.google_ai_response_cache_hits to service_role;
comment on table public.google_ai_response_cache_hits is 'Audit of the response cache: one row per answer served from it (no provider called, nothing booked): which entry, whose, and what the call it spared would have cost (the entry''s tokens and cost_usd).';
revoke all on table public.google_ai_response_cache_misses from public, anon, authenticated, service_role;
grant select on table public.google_ai_response_cache_misses to service_role;
comment on table public.google_ai_response_cache_misses is 'The response cache''s misses per scope since the row was written: each request that took an entry''s flight to call the provider (a counter for the metrics; hits are counted from their rows).';
revoke all on table public.google_ai_response_cache_settings from public, anon, authenticated, service_role;
grant select, update on table public.google_ai_response_cache_settings to service_role;
comment on table public.google_ai_response_cache_settings is 'The response cache''s one row of settings: the bytes of answers a scope may hold (housekeeping drops the oldest beyond it), the longest lifetime a request may ask for and the one it gets when it names none, whether service callers get a scope per caller label (else one for all), how long hit rows are kept. No row: the columns'' defaults (google_ai_response_cache_config).';
