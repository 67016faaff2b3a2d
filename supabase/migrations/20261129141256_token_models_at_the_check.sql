-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a token's models are read at every check within its client's list as it is now
--   (google_ai_token_models); the token's verdict answers a named type (google_ai_token_verdict) with v_
--   variables; the quota report says every model apart
set check_function_bodies = off;

drop function if exists "public"."google_ai_token_verdict_at"(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_token_verdict"') is null then
    create type "public"."google_ai_token_verdict" as ("refusal" jsonb, "caller" text, "client_id" uuid, "token_id" uuid, "worst" numeric);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_token_models(p_token public.google_ai_tokens, p_client public.google_ai_clients)
 RETURNS text[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  return array(select t.m from unnest(p_token.models) with ordinality t(m, i)
               where t.m = any (p_client.models) order by t.i);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_token_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller text;
  v_worst numeric;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    return row(jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null), null, null, null, null)::public.google_ai_token_verdict;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  v_caller := 'client:' || v_client.name;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  -- (google_ai_token_models' rule, as two tests: a call of it would cost more than the check.)
  if v_limit is null and not (v_model = any (v_token.models) and v_model = any (v_client.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      v_worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return row(null, v_caller, v_client.id, v_token.id, v_worst)::public.google_ai_token_verdict;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, v_caller, v_client.id, v_token.id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit, v_cause, v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  return row(jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', v_client.id, 'token_id', v_token.id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end,
    v_caller, v_client.id, v_token.id, v_worst)::public.google_ai_token_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer DEFAULT 1)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
  v_reason := public.google_ai_token_refusal(v_token, v_client, pg_catalog.clock_timestamp());

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', public.google_ai_token_models(v_token, v_client), 'expires_at', v_token.expires_at,
      'max_output_tokens', v_client.max_output_tokens);
  end if;

  if p_refusals is distinct from 0 then
    insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
    values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
    on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
      refusals = r.refusals + excluded.refusals,
      last_seen = pg_catalog.clock_timestamp();
  end if;
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, OUT names text[], OUT models text[], OUT retired boolean[], OUT answer_of integer[], OUT first integer, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1 into names, models, retired, answer_of, first;
  if p_token_hash is not null then
    select public.google_ai_token_models(t, c), t.id, c.id, 'client:' || c.name into v_allowed, token_id, client_id,
      caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (models);
      exit when cardinality(models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      names := names || v_name;
      models := models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      retired := retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      answer_of := answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
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

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_models text[];           -- a token's models (google_ai_token_models; empty: none)
  v_every_model boolean := p_token_hash is null;  -- a service caller's: every model, said apart, not by a null list
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner public.google_ai_budget;  -- the token's client's or the service caller's (null: none)
  v_budget jsonb;
  v_refused text;  -- why the token can never be admitted
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    v_refused := public.google_ai_token_refusal(v_token, v_client, v_now);
    if v_refused is not null then
      return jsonb_build_object('ok', false, 'status', v_refused);
    end if;
    v_models := public.google_ai_token_models(v_token, v_client);
    v_owner := public.google_ai_budget_of(v_client);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: v_owner stays null.
    v_owner := (select public.google_ai_budget_of(b) from public.google_ai_caller_budgets b where b.caller = p_caller);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;
  v_budget := public.google_ai_quota_report_budget(v_now, v_token, v_owner);

  return jsonb_build_object('ok', true, 'as_of', v_now, 'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    -- Each active model the caller may use (v_models, or every one: v_every_model), in model order: its provider, the
    -- minute, the day and the queue (google_ai_model_quota), its cooldowns (the quota groups' names, Google
    -- project ids and key:<uuid>, only for a service caller: a token's caller sees each cause and end, not
    -- whose project rests) and what its shares keep (google_ai_quota_kept).
    'models', (
      select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('provider', l.provider,
                            'cooldowns', (
                              select coalesce(jsonb_agg(to_jsonb(c) - case when p_token_hash is null then ''
                                                                            else 'quota_group' end
                                                        order by c.cooldown_until, c.quota_group), '[]')
                              from (select cd.quota_group, cd.cause, cd.cooldown_until,
                                           public.google_ai_ms_until(cd.cooldown_until, v_now) as retry_after_ms
                                    from public.google_ai_cooldowns cd
                                    where cd.model = l.model and cd.cooldown_until > v_now) c),
                            'kept', public.google_ai_quota_kept(l.model,
                              public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class,
                              v_owner_caller))
                       order by l.model), '[]')
      from public.google_ai_model_limits l
      where l.is_active and (v_every_model or l.model = any (v_models))),
    -- The models their provider withdrew among those (which provider, when, its message, the successors,
    -- the shutdown date).
    'withdrawn', (
      select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
      from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
                   l.shutdown_date
            from public.google_ai_model_limits l
            where l.withdrawn_at is not null and (v_every_model or l.model = any (v_models))) w));
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_token_models(p_token public.google_ai_tokens, p_client public.google_ai_clients) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request) from public, anon, authenticated, service_role;
