-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A cache hit's age is never negative: an answer another request stored after the lookup's
--   clock was read is age 0 (x-eve-cache-age said -1)
set check_function_bodies = off;

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
  v_age_ms bigint;
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
        -- (An answer another request stored after v_now was read is younger than this clock: age 0.)
        v_age_ms := greatest(0, (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
        -- The hit's commit does not wait for its WAL flush: a crash of the database in the next moments
        -- could lose this audit row, never an answer or a booking (a hit books nothing).
        perform pg_catalog.set_config('synchronous_commit', 'off', true);
        insert into public.google_ai_response_cache_hits (created_at, entry_id, scope, caller, request_id, model,
          saved_input_tokens, saved_output_tokens, saved_usd, age_ms)
        values (v_now, v_entry.id, v_scope.scope, coalesce(p_caller, v_scope.member), p_request_id, v_entry.model,
          v_entry.input_tokens, v_entry.output_tokens, v_entry.cost_usd, v_age_ms);
        return jsonb_build_object('status', 'hit', 'entry', v_entry.id, 'answer', v_entry.answer,
          'age_ms', v_age_ms, 'cost_usd', v_entry.cost_usd);
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
