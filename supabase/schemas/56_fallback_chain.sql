-- A request's chain of models (google_ai_fall_back_at, 58_admission.sql): the models it tries, in order,
-- with their successors and whether each is retired (google_ai_fallback_chain), and what a model passed
-- over leaves (google_ai_pass_over).
set check_function_bodies = off;

-- The chain a request tries (google_ai_fall_back_at): its models as asked (o_names) and canonical
-- (o_models), each once, and whether each is retired (an inactive row, or unlisted by every checked key
-- of its provider); when every one is, none is (the catalogue may be the one that is wrong).
-- A model past its row's shutdown date at p_now (null: the clock; the day in UTC) is followed by its
-- row's successor where that is a row (and its successor's, at most three), which takes its place:
-- o_answer_of names the position in p_models whose answer each link is sent with (a successor's is its
-- predecessor's). With p_token_hash, the fallbacks the token may not use (google_ai_token_models) are left
-- out (the first model is always asked; a successor is a fallback) and the token's client is the caller
-- (o_caller, o_client_id, o_token_id). o_first: where the chain starts, the model of p_queue_ticket when the
-- request holds one. With p_first_only (and no ticket), the chain ends after its first model's links when none
-- of them is retired (no later model can then change that), and o_complete says whether it is whole:
-- google_ai_fall_back_at reads it whole only once its first model is passed over (counted: the second
-- model's links were 3.4% of a reservation its first model serves).
-- (Its results are o_ names: a bare name like a column's, caller or models, in one of
-- its queries would be ambiguous with the table's, an error met only when the query runs.)
CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid,
    p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_first_only boolean DEFAULT false,
    OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer,
    OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid, OUT o_complete boolean) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1,
         not (p_first_only and p_queue_ticket is null and cardinality(p_models) > 1)
    into o_names, o_models, o_retired, o_answer_of, o_first, o_complete;
  if p_token_hash is not null then
    select public.google_ai_token_models(t, c), t.id, c.id, 'client:' || c.name
      into v_allowed, o_token_id, o_client_id, o_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    -- (Read in part, the chain ends after its first model's links, unless one of them is retired.)
    if v_at = 2 and not o_complete then
      exit when not (true = any (o_retired));
      o_complete := true;
    end if;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (o_models);
      exit when cardinality(o_models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      o_names := o_names || v_name;
      o_models := o_models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      o_retired := o_retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      o_answer_of := o_answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if o_complete and not (false = any (o_retired)) then
    o_retired := array_fill(false, array[cardinality(o_models)]);
  end if;
  if p_queue_ticket is not null then
    o_first := coalesce(array_position(o_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$$;

-- A chain's model passed over (google_ai_fall_back_at; p_try: its refusal): a ticket the request held for
-- it is given up (its turn lay beyond the wait after all, or the model retired meanwhile) and its refusal is
-- logged, the row naming the chain's caller (p_caller, p_client_id, p_token_id: a token's client) and the
-- model the request asked for (p_asked); a model without a key once the request's own exclusions are set
-- aside is no attempt (as in google_ai_refusal_at) and is not logged. The answer is its step of the
-- answer's fallback_from: {model, limit, cause, retry_after_ms}.
CREATE OR REPLACE FUNCTION public.google_ai_pass_over(p_request public.google_ai_request, p_asked text,
    p_model text, p_try public.google_ai_admission_verdict, p_caller text, p_client_id uuid, p_token_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
begin
  if p_request.queue_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_request.queue_ticket and q.model = p_model;
  end if;
  if not coalesce(p_try.limit_hit = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0, false) then
    p_request.model := p_asked;
    p_request.caller := coalesce(p_caller, p_request.caller, 'token');
    p_request.client_id := p_client_id;
    p_request.token_id := p_token_id;
    perform public.google_ai_log_refusal(p_request, p_model, p_try.limit_hit, p_try.cause, p_try.retry_after_ms);
  end if;
  return jsonb_build_object('model', p_model, 'limit', p_try.limit_hit, 'cause', p_try.cause,
    'retry_after_ms', p_try.retry_after_ms);
end
$$;
