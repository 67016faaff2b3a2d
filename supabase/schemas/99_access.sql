-- Access, last: the schema's usage, RLS on every table, and for every table, view, sequence and
-- function its grants after a revoke of what Supabase's default privileges give (anon,
-- authenticated, service_role; eve_gateway too, so that applying it again keeps the order
-- of the grants). service_role gets what the operator's tools need; eve_gateway (the
-- Edge Functions' role) only EXECUTE on the RPCs it calls.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

COMMENT ON SCHEMA public IS 'standard public schema';

GRANT USAGE ON SCHEMA public TO anon;
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT USAGE ON SCHEMA public TO service_role;
GRANT USAGE ON SCHEMA public TO eve_gateway;

ALTER TABLE public.google_ai_api_keys ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_cooldowns ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_model_limits ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_usage_counters ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_api_keys FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_api_keys TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_limits FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_limits TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) TO service_role;

REVOKE ALL ON TABLE public.google_ai_usage_counters FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_usage_counters TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_model_by_name(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_by_name(p_model text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_capabilities(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_capabilities(p_model text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_capabilities(p_model text) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_resolve_model(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_resolve_model(p_model text) FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_cooldowns FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_cooldowns TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_model_limits_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.google_ai_model_limits_id_seq TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_usage_counters_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.google_ai_usage_counters_id_seq TO service_role;

ALTER TABLE public.google_ai_attempts ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_responses ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_attempts FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_attempts TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_attempts_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.google_ai_attempts_id_seq TO service_role;

REVOKE ALL ON TABLE public.google_ai_responses FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_responses TO service_role;

ALTER TABLE public.google_ai_admission_settings ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_admissions ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_admission_settings FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,UPDATE ON TABLE public.google_ai_admission_settings TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_admission_guard() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_admission_guard() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_minute_window(p_at timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_minute_window(p_at timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_not_open(p_reservation_id uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_not_open(p_reservation_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_pacific_start(p_day date) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pacific_start(p_day date) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_pacific_start(p_day date) TO service_role;
REVOKE ALL ON FUNCTION public.google_ai_pacific_zone() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pacific_zone() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_pacific_zone() TO service_role;
REVOKE ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_reopens_at(p_limit text, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_reopens_at(p_limit text, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_window_reopens_at(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_window_reopens_at(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer) FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_admissions FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_admissions TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_client_id uuid, p_token_id uuid, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_token_hash text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_client_id uuid, p_token_id uuid, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_token_hash text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_holder_time(p_holder jsonb, p_key text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_holder_time(p_holder jsonb, p_key text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_holder_id(p_holder jsonb) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_holder_id(p_holder jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_queue_reply_check() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_queue_reply_check() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_response_holder_check() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_response_holder_check() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_statement_holder(p_metadata jsonb) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_statement_holder(p_metadata jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_attempt_holder() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_attempt_holder() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_attempt_reply_check() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_attempt_reply_check() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_book_best_group(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, p_client_id uuid, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_book_best_group(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, p_client_id uuid, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_book_fast(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_caller text, p_client_id uuid, p_class text, p_rank smallint, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_book_fast(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_caller text, p_client_id uuid, p_class text, p_rank smallint, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_book_waiting(p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_book_waiting(p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_claim_held_until(p_caller text, p_request_id text, p_expires_at timestamp with time zone, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_claim_held_until(p_caller text, p_request_id text, p_expires_at timestamp with time zone, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_fast_fits(p_row public.google_ai_usage_counters, p_win_requests integer, p_win_tokens bigint, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_day_guard interval) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_fast_fits(p_row public.google_ai_usage_counters, p_win_requests integer, p_win_tokens bigint, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_day_guard interval) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_refusal_cause(p_limit text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_refusal_cause(p_limit text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.google_ai_record_refusal(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_limit text, p_retry_at timestamp with time zone, p_wait_ms integer, p_metadata jsonb, p_cause text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_record_refusal(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_limit text, p_retry_at timestamp with time zone, p_wait_ms integer, p_metadata jsonb, p_cause text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_request_limits(p_model text, p_estimated_tokens integer, OUT model text, OUT rpm integer, OUT tpm integer, OUT rpd integer, OUT blocked_by text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_request_limits(p_model text, p_estimated_tokens integer, OUT model text, OUT rpm integer, OUT tpm integer, OUT rpd integer, OUT blocked_by text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_serving_key(p_quota_group text, p_model text, p_exclude_key_ids uuid[], OUT id uuid, OUT key_alias text, OUT env_var_name text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_serving_key(p_quota_group text, p_model text, p_exclude_key_ids uuid[], OUT id uuid, OUT key_alias text, OUT env_var_name text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_try_book(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_reservation_id uuid, p_class text, p_caller text, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_try_book(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_reservation_id uuid, p_class text, p_caller text, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) FROM PUBLIC;

ALTER TABLE public.google_ai_priority_classes ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_queue ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_queue_settings ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_class_rank(p_class text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_class_rank(p_class text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_queue_lapse(p_model text, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_queue_lapse(p_model text, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean) FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_priority_classes FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,UPDATE ON TABLE public.google_ai_priority_classes TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_queue TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue_settings FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,UPDATE ON TABLE public.google_ai_queue_settings TO service_role;

ALTER TABLE public.google_ai_caller_budgets ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_quota_shares ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_share_usage ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_budget_left(p_max bigint, p_used bigint) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_budget_left(p_max bigint, p_used bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer, p_usable integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer, p_usable integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer, p_usable integer) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_pace_opens_at(p_day date, p_used integer, p_burst integer, p_usable integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_pace_opens_at(p_day date, p_used integer, p_burst integer, p_usable integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_share_room(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_class text, p_caller text, OUT openings timestamp with time zone[], OUT day_held integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_share_room(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_class text, p_caller text, OUT openings timestamp with time zone[], OUT day_held integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint, p_at timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint, p_at timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone, p_now timestamp with time zone, p_step interval) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone, p_now timestamp with time zone, p_step interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.google_ai_spread_step(p_model text, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_spread_step(p_model text, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_derived_shares(p_model text, p_class text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_derived_shares(p_model text, p_class text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_derives_shares() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_derives_shares() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_class_kept_changed() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_class_kept_changed() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_class_derives_shares() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_class_derives_shares() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_share_edited() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_share_edited() FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_caller_budgets FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_caller_budgets TO service_role;

REVOKE ALL ON TABLE public.google_ai_quota_shares FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_quota_shares TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_quota_shares_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT USAGE ON SEQUENCE public.google_ai_quota_shares_id_seq TO service_role;

REVOKE ALL ON TABLE public.google_ai_share_usage FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_share_usage TO service_role;

ALTER TABLE public.token_usage ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone, p_reason text, p_quota_id text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone, p_reason text, p_quota_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone, p_reason text, p_quota_id text) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO eve_gateway;

REVOKE ALL ON TABLE public.token_usage FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON TABLE public.token_usage TO service_role;

REVOKE ALL ON SEQUENCE public.token_usage_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.token_usage_id_seq TO service_role;

ALTER TABLE public.google_ai_clients ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_credential_refusals ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_tokens ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval, p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer, p_mint_per_hour integer, p_notes text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval, p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer, p_mint_per_hour integer, p_notes text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval, p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer, p_mint_per_hour integer, p_notes text) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[], p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[], p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[], p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[], p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_sha256_hex(p_text text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_sha256_hex(p_text text) FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_clients FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_clients TO service_role;

REVOKE ALL ON TABLE public.google_ai_tokens FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_tokens TO service_role;

REVOKE ALL ON TABLE public.google_ai_credential_refusals FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_credential_refusals TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_cooldowns(p_model text, p_now timestamp with time zone, p_show_groups boolean) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_cooldowns(p_model text, p_now timestamp with time zone, p_show_groups boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_ms_until(p_at timestamp with time zone, p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_ms_until(p_at timestamp with time zone, p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_quota_kept(p_model text, p_rpm integer, p_rpd integer, p_class text, p_caller text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_quota_kept(p_model text, p_rpm integer, p_rpd integer, p_class text, p_caller text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_serving_groups(p_model text, p_exclude_key_ids uuid[]) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_serving_groups(p_model text, p_exclude_key_ids uuid[]) FROM PUBLIC;

ALTER TABLE public.google_ai_key_health ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_model_catalogue ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_service_tiers ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_key_health FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_key_health TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_catalogue FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_model_catalogue TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_key_check_clears_limit_zero() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_key_check_clears_limit_zero() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_alias_moves() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_alias_moves() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_features(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_features(p_model text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_features(p_model text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_model_features(p_model text) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_model_list() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_list() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_list() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_model_list() TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_model_profile(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_profile(p_model text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_profile(p_model text) TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_model_traits(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_traits(p_model text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_model_unlisted(p_model text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_model_unlisted(p_model text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer, p_reason text, p_message text, p_models jsonb, p_disable boolean) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer, p_reason text, p_message text, p_models jsonb, p_disable boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer, p_reason text, p_message text, p_models jsonb, p_disable boolean) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_service_tier_list() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_service_tier_list() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_service_tiers FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_service_tiers TO service_role;

ALTER TABLE public.google_ai_maintenance_log ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_maintenance_settings ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_active_keys() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_active_keys() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_active_keys() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_active_keys() TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text, p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone, p_order text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text, p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone, p_order text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_maintenance_settings FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,UPDATE ON TABLE public.google_ai_maintenance_settings TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_cooldowns(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_cooldowns(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_cron_history(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_cron_history(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_responses(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_responses(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_housekeeping_tokens(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_housekeeping_tokens(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_invoke_maintenance_function(p_body jsonb, p_timeout_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_invoke_maintenance_function(p_body jsonb, p_timeout_ms integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone, p_status text, p_details jsonb) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone, p_status text, p_details jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone, p_status text, p_details jsonb) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone, p_status text, p_details jsonb) TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_sanitize_error(p_message text, p_max_length integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_sanitize_error(p_message text, p_max_length integer) FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_maintenance_log FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_maintenance_log TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq TO service_role;

ALTER TABLE public.google_ai_metric_fold ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_metric_totals ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION public.google_ai_metric_bounds_s() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metric_bounds_s() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metric_label(p_name text, p_value text) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metric_label(p_name text, p_value text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metric_le(p_ms integer) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metric_le(p_ms integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metric_refusal_settled() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metric_refusal_settled() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metrics() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metrics() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_metrics() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_metrics() TO eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_metrics_fold(p_now timestamp with time zone, p_wait boolean) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metrics_fold(p_now timestamp with time zone, p_wait boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_metrics_text() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_metrics_text() FROM PUBLIC;

REVOKE ALL ON TABLE public.google_ai_metric_fold FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_metric_fold TO service_role;

REVOKE ALL ON TABLE public.google_ai_metric_totals FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_metric_totals TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_catalogue_status FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_model_catalogue_status TO service_role;

REVOKE ALL ON FUNCTION public.google_ai_catalogue_status() FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_catalogue_status() FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO service_role;
GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_caller_budgets_today FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_caller_budgets_today TO service_role;

REVOKE ALL ON TABLE public.google_ai_clients_overview FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON TABLE public.google_ai_clients_overview TO service_role;

REVOKE ALL ON TABLE public.google_ai_cooldowns_active FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_cooldowns_active TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_lifecycle FROM anon, authenticated, service_role, eve_gateway;
GRANT ALL ON TABLE public.google_ai_model_lifecycle TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue_now FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_queue_now TO service_role;

REVOKE ALL ON TABLE public.google_ai_shares_today FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_shares_today TO service_role;

REVOKE ALL ON TABLE public.google_ai_usage_by_caller_24h FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_usage_by_caller_24h TO service_role;

REVOKE ALL ON TABLE public.google_ai_usage_now FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_usage_now TO service_role;

REVOKE ALL ON TABLE public.google_ai_wait_by_class_1h FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT ON TABLE public.google_ai_wait_by_class_1h TO service_role;
