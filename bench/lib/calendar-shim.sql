-- The calendar-minute booking (a database migrated only up to 20261122001000_access.sql) spoken to
-- by today's llm-invoke: the RPC names and arguments the function calls now, each handing over to
-- what that database had. Only the fidelity part uses it, so the booking before the guarded window
-- runs under the same function code as the gateway beside it. Nothing that came later is emulated:
-- no queue (a refusal takes no ticket), no fallback chain, no quota in the answer.
create function public.google_ai_model_features(p_model text)
returns table (model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean,
               supports_tools boolean, fallback_models text[])
language sql stable security definer set search_path = ''
as $$
  select c.model, true, c.supports_system_instruction, c.supports_json_mode, c.supports_json_mode, '{}'::text[]
  from public.google_ai_model_capabilities(p_model) c
$$;

create function public.google_ai_reserve(
  p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[],
  p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean,
  p_priority text, p_queue_ticket uuid, p_wait_left_ms integer)
returns jsonb
language sql security definer set search_path = ''
as $$
  select public.google_ai_reserve(p_model, p_estimated_tokens, p_caller, p_request_id, p_exclude_key_ids,
    p_attempt, p_wait_ms, p_metadata, p_idempotent)
$$;

create function public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[])
returns jsonb language sql stable as $$ select null::jsonb $$;

grant execute on function
  public.google_ai_model_features(text),
  public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer),
  public.google_ai_answer_quota(jsonb, text, uuid[])
to eve_gateway;
