-- Model fallback. A request may name an ordered chain of models ("gemini-2.5-flash, else
-- gemini-2.5-flash-lite, else gemma-3-27b-it"), or the operator gives a model row a chain
-- (google_ai_model_limits.fallback_models) that is used when the request names none. When a model
-- cannot serve within the caller's wait — its day is used up, it is cooling down, it has no active
-- key, it is retired (inactive, or no longer listed by Google in the catalogue), or its turn lies
-- beyond the caller's wait (NO_WAIT: it refuses now) — the same reservation round trip tries the next.
--
-- Why it cannot over-admit: the chain only decides which model to ask next. Each model's booking is
-- still google_ai_admit_at (the queue, then google_ai_try_book under the counter row's lock), unchanged
-- and called as is. A model that refuses is tried in a subtransaction that is rolled back, so nothing
-- it did stays (its refusal row is written again below, once) and it keeps no lock while the next
-- model is tried: a chain never holds one model's queue lock while it waits for another's, so two
-- chains in opposite orders cannot deadlock.

-- The operator's chain --------------------------------------------------------------------------------
alter table public.google_ai_model_limits add column if not exists fallback_models text[] not null default '{}';
comment on column public.google_ai_model_limits.fallback_models is
  'Models tried in this order when this one cannot serve a request within its wait (its day used up, '
  'cooling down, retired, no active key), for requests that name no fallback_models of their own. '
  'Names or aliases of other rows; at most 3.';

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'google_ai_model_limits_fallback_models_check') then
    alter table public.google_ai_model_limits
      add constraint google_ai_model_limits_fallback_models_check
      check (cardinality(fallback_models) <= 3) not valid;
  end if;
end
$$;

-- A model row by name or alias, active or not (an inactive row is a retired model that may still
-- name its fallbacks). An active row wins, then the row named exactly.
create or replace function public.google_ai_model_by_name(p_model text)
returns public.google_ai_model_limits language sql stable set search_path = ''
as $$
  select l.* from public.google_ai_model_limits l
  where l.model = p_model or p_model = any (l.aliases)
  order by l.is_active desc, (l.model = p_model) desc, l.id
  limit 1
$$;

-- What llm-invoke needs to build a request's chain: the model a name resolves to (inactive rows
-- included, flagged), what it can do, and its row's chain resolved to canonical names (names no row
-- knows are left out).
create or replace function public.google_ai_model_profile(p_model text)
returns table (model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean,
               fallback_models text[])
language sql stable security definer set search_path = ''
as $$
  select l.model, l.is_active, l.supports_system_instruction, l.supports_json_mode,
         coalesce((select array_agg(f.model order by f.i)
                   from (select r.model, min(c.i) as i
                         from unnest(l.fallback_models) with ordinality c(name, i)
                         cross join lateral public.google_ai_model_by_name(c.name) r
                         where r.model is not null and r.model <> l.model
                         group by r.model) f), '{}')
  from public.google_ai_model_by_name(p_model) l
  where l.id is not null
$$;

-- Retired in the catalogue: active keys were checked (models.list answered) and none lists the
-- model. The same reading as google_ai_model_catalogue_status's 'unlisted'.
create or replace function public.google_ai_model_unlisted(p_model text)
returns boolean language sql stable set search_path = ''
as $$
  with ok_keys as (
    select h.api_key_id from public.google_ai_key_health h
    join public.google_ai_api_keys k on k.id = h.api_key_id
    where h.status = 'ok' and k.is_active)
  select exists (select 1 from ok_keys)
     and not exists (select 1 from public.google_ai_model_catalogue c
                     where c.model = p_model and c.api_key_id in (select o.api_key_id from ok_keys o))
$$;

-- The reservation over a chain ------------------------------------------------------------------------
-- p_models: the request's model as the caller named it, then its fallbacks, in order (at most 4).
-- A service caller passes p_caller; a scoped token passes p_token_hash instead (each model is then
-- reserved through google_ai_admit_with_token_at: token, budgets and scope checked under the token's
-- lock, as for one model). Fallbacks the token may not use are left out; the first model is always
-- asked, so a token that may not use it is refused model_not_allowed as before.
--
-- With p_queue_ticket, the chain starts at the ticket's model: the models before it could not serve
-- within the wait when the ticket was taken, so the ticket's turn is the request's best chance.
--
-- The answer is google_ai_admit_at's, plus:
--   requested_model  the chain's first model (canonical)
--   fallback_from    each model passed over before the one that answered: {model, limit, retry_after_ms}
-- When every model refuses, the refusal whose capacity comes back first is answered (the first
-- model's when none names a time), with fallback_from listing every model tried.
create or replace function public.google_ai_admit_chain_at(
  p_now timestamptz,
  p_models text[],
  p_estimated_tokens integer,
  p_caller text,
  p_token_hash text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  -- Refusals that belong to one model: another model may still serve.
  c_model_limits constant text[] := array['rpm', 'tpm', 'rpd', 'cooldown', 'no_active_key', 'too_large', 'unknown_model'];
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_names text[] := '{}';     -- as asked (the first as the caller wrote it)
  v_models text[] := '{}';    -- canonical
  v_retired boolean[] := '{}';
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_caller text := p_caller;
  v_client_id uuid;
  v_token_id uuid;
  v_start integer := 1;
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]';   -- every model's refusal, in order
  v_steps jsonb := '[]';      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;

  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, v_token_id, v_client_id, v_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;

  foreach v_name in array p_models loop
    v_row := public.google_ai_model_by_name(v_name);
    continue when coalesce(v_row.model, v_name) = any (v_models);
    -- A token falls back only to models it may use (its first model is asked regardless and refused).
    continue when cardinality(v_models) > 0 and p_token_hash is not null
                  and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
    v_names := v_names || v_name;
    v_models := v_models || coalesce(v_row.model, v_name);
    v_retired := v_retired || (v_row.id is not null
                               and (not v_row.is_active or public.google_ai_model_unlisted(v_row.model)));
  end loop;
  -- When every model is retired the catalogue may be the one that is wrong: ask them in order.
  if not (false = any (v_retired)) then
    v_retired := array_fill(false, array[cardinality(v_models)]);
  end if;

  if p_queue_ticket is not null then
    v_start := coalesce(array_position(v_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;

  for i in v_start .. cardinality(v_models) loop
    if v_retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'retry_after_ms', null, 'model', v_models[i]);
    else
      begin
        if p_token_hash is null then
          v_try := public.google_ai_admit_at(p_now => p_now, p_model => v_names[i],
            p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
            p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
            p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
            p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
        else
          v_try := public.google_ai_admit_with_token_at(p_now => p_now, p_token_hash => p_token_hash,
            p_model => v_names[i], p_estimated_tokens => p_estimated_tokens, p_request_id => p_request_id,
            p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
            p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
            p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
        end if;
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and (v_try ->> 'limit') = any (c_model_limits) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_queue_ticket is not null then
      delete from public.google_ai_queue q where q.ticket_id = p_queue_ticket and q.model = v_models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_models[i], 'limit', v_try ->> 'limit',
      'retry_after_ms', v_try -> 'retry_after_ms'));
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, coalesce(v_caller, 'token'), v_client_id, v_token_id, v_models[i], p_models[1],
      p_attempt, p_estimated_tokens, v_try ->> 'limit', (v_try ->> 'retry_after_ms')::bigint, p_wait_ms,
      coalesce(p_metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_models[1], 'fallback_from', v_steps);
end
$$;

create or replace function public.google_ai_reserve_chain(
  p_models text[],
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, p_caller, null, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms)
$$;

create or replace function public.google_ai_reserve_chain_with_token(
  p_token_hash text,
  p_models text[],
  p_estimated_tokens integer,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language sql security definer set search_path = ''
as $$
  select public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, null, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms)
$$;

-- Access (as in the access file): nothing for anon/authenticated; the RPCs for operators
-- (service_role) and the Edge Functions' role; the steps owner-only.
do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_model_by_name(text)',
    'public.google_ai_model_profile(text)',
    'public.google_ai_model_unlisted(text)',
    'public.google_ai_admit_chain_at(timestamptz, text[], integer, text, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)',
    'public.google_ai_reserve_chain(text[], integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)',
    'public.google_ai_reserve_chain_with_token(text, text[], integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;

revoke all on function
  public.google_ai_model_profile(text),
  public.google_ai_reserve_chain(text[], integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer),
  public.google_ai_reserve_chain_with_token(text, text[], integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)
from eve_gateway;
grant execute on function
  public.google_ai_model_profile(text),
  public.google_ai_reserve_chain(text[], integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer),
  public.google_ai_reserve_chain_with_token(text, text[], integer, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer)
to service_role, eve_gateway;
