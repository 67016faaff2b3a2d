-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Housekeeping writes its log row through google_ai_log_maintenance_run; the three RPC
--   entries over 10 parameters granted to eve_gateway, service_role in one statement
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_step record;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_result jsonb;
  v_steps jsonb := '{}'::jsonb;
  v_failed text[] := '{}'::text[];
  v_tables text[] := '{}'::text[];
  v_deleted bigint := 0;
  v_more boolean := false;
  v_status text;
  v_completed timestamptz;
  v_log_id integer;
begin
  select * into v_settings from public.google_ai_maintenance_settings s where s.id;
  if not found then
    -- The row was deleted: put the defaults back (they live in the column defaults only).
    insert into public.google_ai_maintenance_settings as s (id) values (true)
    on conflict (id) do update set id = s.id
    returning * into v_settings;
  end if;

  -- One run at a time (the hourly job and an on-demand run may meet); the other one is logged as skipped.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.google_ai_housekeeping')::bigint) then
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started,
      pg_catalog.clock_timestamp(), 'skipped',
      jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget,
      v_step.fn, v_step.rel, v_step.key, v_step.condition, v_step.cutoff, v_step.sort);
    if v_result ->> 'status' = 'failed' then
      v_failed := v_failed || v_step.name;
    end if;
    v_deleted := v_deleted + coalesce((v_result ->> 'deleted')::bigint, 0);
    if coalesce((v_result ->> 'deleted')::bigint, 0) + coalesce((v_result ->> 'abandoned')::bigint, 0) > 0
       and not (pg_catalog.regexp_replace(v_step.rel, '^public\.', '') = any (v_tables)) then
      v_tables := v_tables || pg_catalog.regexp_replace(v_step.rel, '^public\.', '');
    end if;
    v_more := v_more or coalesce((v_result ->> 'more')::boolean, false);
    v_steps := v_steps || jsonb_build_object(v_step.name, v_result);
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_old_lock_timeout, true);

  v_status := case when cardinality(v_failed) > 0 then 'failed' else 'succeeded' end;
  v_completed := pg_catalog.clock_timestamp();
  v_result := jsonb_build_object(
    'duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps,
    'failed_steps', to_jsonb(v_failed),
    'more_pending', v_more);
  v_log_id := public.google_ai_log_maintenance_run('housekeeping', v_tables, least(v_deleted, 2147483647)::integer,
    v_started, v_completed, v_status,
    v_result || jsonb_build_object('now', v_now, 'settings', to_jsonb(v_settings) - 'id' - 'updated_at'));

  if v_status = 'failed' then
    raise warning 'google_ai_housekeeping: step(s) % failed; see google_ai_maintenance_log id %',
      array_to_string(v_failed, ', '), v_log_id;
  end if;
  return v_result || jsonb_build_object('ok', v_status = 'succeeded', 'status', v_status, 'log_id', v_log_id,
    'deleted_count', v_deleted);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to eve_gateway;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to service_role;
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to service_role;
revoke all on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to service_role;
