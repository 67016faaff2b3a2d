-- Access, last: the schema's usage, RLS on every table, and for every table, view, sequence and
-- function its grants after a revoke of what Supabase's default privileges give (anon,
-- authenticated, service_role; eve_gateway too, so that applying it again keeps the order
-- of the grants; one loop revokes for all of them). service_role reads every table and view and gets
-- what else the operator's tools need; eve_gateway (the Edge Functions' role) only EXECUTE on the RPCs it calls.
set check_function_bodies = off;

COMMENT ON SCHEMA public IS 'standard public schema';

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, eve_gateway;

-- Nobody but their owner may use a function, table, view or sequence of the gateway unless a grant below
-- says so, and every table has RLS on. One loop for all of them (Supabase's default privileges give
-- every new object to anon, authenticated and service_role; PUBLIC has EXECUTE on a function by
-- default), so none is left out; the grants follow, each naming its object.
do $$
declare f
  regprocedure;
  r record;
begin
  for f in select p.oid::regprocedure from pg_catalog.pg_proc p
           where p.pronamespace = 'public'::regnamespace
  and p.proname like 'google\_ai\_%'
    loop execute pg_catalog.format(
      'revoke all on routine %s from public, anon, authenticated, service_role, eve_gateway',
  f); end loop;
  -- The gateway's relations only (token_usage is the owner's table the gateway adopted); an identity
  -- column's sequence keeps Supabase's defaults unless revoked by name below, as it always has.
  for r in select c.oid::regclass as rel, c.relkind from pg_catalog.pg_class c
           where c.relnamespace = 'public'::regnamespace
             and c.relkind in ('r', 'v', 'S')
             and (c.relname like 'google\_ai\_%' or c.relname like 'token\_usage%')
             and not exists (select from pg_catalog.pg_depend d where d.objid = c.oid and d.deptype = 'i')
    loop
      execute pg_catalog.format(
        'revoke all on %s %s from anon, authenticated, service_role, eve_gateway',
        case r.relkind when 'S' then 'sequence' else 'table' end, r.rel);
      if r.relkind = 'r' then
        execute pg_catalog.format('alter table %s enable row level security', r.rel);
      end if;
      -- The operator reads every table and view; what service_role may write is granted below.
      if r.relkind in ('r', 'v') then
        execute pg_catalog.format('grant select on table %s to service_role', r.rel);
      end if;
    end loop;
end
$$;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_providers TO service_role;
GRANT ALL ON FUNCTION public.google_ai_provider_list() TO service_role, eve_gateway;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_api_keys TO service_role;
GRANT ALL ON FUNCTION public.google_ai_provider(p_name text) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_limits TO service_role;
GRANT ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) TO service_role;

GRANT ALL ON SEQUENCE public.google_ai_model_limits_id_seq TO service_role;

GRANT ALL ON SEQUENCE public.google_ai_usage_counters_id_seq TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_attempts_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.google_ai_attempts_id_seq TO service_role;

GRANT UPDATE ON TABLE public.google_ai_admission_settings TO service_role;
GRANT ALL ON FUNCTION public.google_ai_pacific_zone() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_day_in(p_at timestamp with time zone, p_zone text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_day_start_in(p_day date, p_zone text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_day_zone(p_model text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_day_counts(p_bucket date, p_used integer, p_next integer, p_prev integer,
    p_day date) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_window_length(p_minute_guard_ms integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid,
    p_output_tokens integer[], p_requests integer) TO eve_gateway, service_role;
GRANT ALL ON PROCEDURE public.google_ai_reserve_call(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid,
    p_output_tokens integer[], p_requests integer, o_reservation jsonb, o_quota jsonb, o_cause text)
    TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[])
    TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_reserve_many(p_calls jsonb) TO eve_gateway, service_role;

GRANT INSERT,UPDATE ON TABLE public.google_ai_priority_classes TO service_role;

GRANT UPDATE ON TABLE public.google_ai_queue_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer, p_zone text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint,
    ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_ring_restarted(p_at timestamp with time zone, p_window interval,
    p_span integer, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_ring_time(p_second bigint, p_us integer) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_caller_budgets TO service_role;
-- (google_ai_caller_budgets_today reads a budget's day through these, as its invoker.)
GRANT ALL ON FUNCTION public.google_ai_budget_of(p_row anyelement) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_quota_shares TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_quota_shares_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT USAGE ON SEQUENCE public.google_ai_quota_shares_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone,
    p_reason text, p_quota_id text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_finalize_calls(p_calls jsonb) TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_stated_limits() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_limit_disagreements() TO service_role, eve_gateway;
GRANT ALL ON PROCEDURE public.google_ai_finalize_call(p_calls jsonb, o_answers jsonb) TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_finalize_riding(p_calls jsonb) TO eve_gateway, service_role;
GRANT ALL ON PROCEDURE public.google_ai_reserve_calls(p_calls jsonb, p_finalizes jsonb, o_answers jsonb,
    o_finalized jsonb) TO eve_gateway, service_role;
GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO service_role, eve_gateway;

GRANT ALL ON TABLE public.token_usage TO service_role;

GRANT ALL ON SEQUENCE public.token_usage_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval,
    p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer,
    p_mint_per_hour integer, p_notes text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[],
    p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_group_room(p_quota_group text, p_model text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_stored_group_limits(p_model public.google_ai_model_limits,
    p_quota_group text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[]) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_step_causes(p_steps jsonb) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_model_list() TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_model_provider(p_model text) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer,
    p_reason text, p_message text, p_models jsonb, p_disable boolean) TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO service_role, eve_gateway;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_service_tiers TO service_role;
GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_prices TO service_role;

GRANT ALL ON FUNCTION public.google_ai_active_keys(p_provider text) TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO service_role, eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cron_jobs() TO service_role, eve_gateway;

GRANT UPDATE ON TABLE public.google_ai_maintenance_settings TO service_role;
GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) TO service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_metrics() TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO service_role, eve_gateway;

GRANT ALL ON TABLE public.google_ai_clients_overview TO service_role;

GRANT ALL ON TABLE public.google_ai_model_lifecycle TO service_role;

GRANT ALL ON FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone) TO service_role, eve_gateway;

-- The Responses API's stored responses (65_stored_responses.sql): read, kept and deleted only through
-- its functions, each for the caller's own.
GRANT DELETE ON TABLE public.google_ai_stored_responses TO service_role;
GRANT ALL ON FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text)
    TO eve_gateway;

-- Embedding models (66_embedding_models.sql): rows the owner edits; llm-invoke reads one model's facts.
GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_embedding_models TO service_role;
GRANT ALL ON FUNCTION public.google_ai_embedding_traits(p_model text) TO eve_gateway, service_role;

-- The response cache (70_response_cache.sql): the operator's tables; the functions call its RPCs.
GRANT DELETE ON TABLE public.google_ai_response_cache TO service_role;
GRANT UPDATE ON TABLE public.google_ai_response_cache_settings TO service_role;
GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_response_cache_defaults TO service_role;
GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_response_cache_shared_scopes TO service_role;
GRANT ALL ON FUNCTION public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text,
    p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text)
    TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb,
    p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid) TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cache_abandon(p_entry bigint, p_holder uuid) TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cache_defaults_exist() TO eve_gateway;
GRANT ALL ON FUNCTION public.google_ai_cache_purge(p_scope text, p_model text) TO service_role;
