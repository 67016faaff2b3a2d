-- What the Gemini-native and OpenAI-compatible routes need from the database:
--   * a model row says whether the model takes function calling (Gemma does not), so the gateway
--     refuses tools with a clear 400 before spending a request on Google's opaque one
--     (google_ai_model_features: the profile llm-invoke reads, with that flag);
--   * the models a caller can name, in one call, for GET …/v1beta/models and …/v1/models;
--   * a streamed answer that breaks off (the caller went away, or Google cut it) is recorded as
--     'cut', with the tokens Google counted so far, and settles its booking like any finished call.

-- Function calling, per model ------------------------------------------------------------------------
-- Null (the default): as supports_json_mode. The models without JSON mode are Gemma's, which have no
-- function calling either; a row that differs says so. (Nullable so that neither the owner's rows
-- nor the seed need writing.)
alter table public.google_ai_model_limits add column if not exists supports_tools boolean;
comment on column public.google_ai_model_limits.supports_tools is
  'False: the model has no function calling (tools/toolConfig are refused with unsupported_feature). '
  'Null: as supports_json_mode.';

-- The profile with function calling. google_ai_model_profile keeps its result type (an earlier
-- migration creates it, and re-applying that file must not meet a different one).
create or replace function public.google_ai_model_features(p_model text)
returns table (model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean,
               supports_tools boolean, fallback_models text[])
language sql stable security definer set search_path = ''
as $$
  select p.model, p.is_active, p.supports_system_instruction, p.supports_json_mode,
         coalesce(l.supports_tools, l.supports_json_mode), p.fallback_models
  from public.google_ai_model_profile(p_model) p
  join public.google_ai_model_limits l on l.model = p.model
$$;

-- The models a caller can name -------------------------------------------------------------------
-- Active rows with what Google's models.list told the maintenance run about them (token limits,
-- display name), the largest over the keys that list the model.
create or replace function public.google_ai_model_list()
returns table (model text, aliases text[], display_name text, input_token_limit integer,
               output_token_limit integer, rpm integer, tpm integer, rpd integer,
               supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean)
language sql stable security definer set search_path = ''
as $$
  select l.model, l.aliases,
         (select max(c.display_name) from public.google_ai_model_catalogue c where c.model = l.model),
         (select max(c.input_token_limit) from public.google_ai_model_catalogue c where c.model = l.model),
         (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = l.model),
         l.rpm, l.tpm, l.rpd, l.supports_system_instruction, l.supports_json_mode,
         coalesce(l.supports_tools, l.supports_json_mode)
  from public.google_ai_model_limits l
  where l.is_active
  order by l.model
$$;

-- A stream that broke off --------------------------------------------------------------------------
-- Once: the check is replaced only while it lacks 'cut', added NOT VALID and validated apart, so the
-- scan of the owner's rows holds no lock that stops writes.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_constraint c
                 where c.conrelid = 'public.google_ai_attempts'::regclass
                   and c.conname = 'google_ai_attempts_status_check'
                   and pg_catalog.pg_get_constraintdef(c.oid) like '%''cut''%') then
    alter table public.google_ai_attempts drop constraint if exists google_ai_attempts_status_check;
    alter table public.google_ai_attempts add constraint google_ai_attempts_status_check check (status in
      ('reserved', 'refused', 'succeeded', 'google_error', 'network_error', 'timeout', 'released', 'abandoned', 'cut'))
      not valid;
    alter table public.google_ai_attempts validate constraint google_ai_attempts_status_check;
  end if;
end
$$;

-- Google billed what it streamed: the call is finalized like a success (tokens reconciled with
-- Google's last count, token_usage written, no stored answer), then marked 'cut' with who cut it
-- ('client': the caller went away; 'google': the stream broke off on Google's side).
create or replace function public.google_ai_finalize_cut(
  p_reservation_id uuid,
  p_cut_by text,
  p_input_tokens integer default null,
  p_output_tokens integer default null,
  p_latency_ms integer default null,
  p_error_message text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_answer jsonb;
begin
  if p_cut_by not in ('client', 'google') then
    raise exception 'p_cut_by must be client or google' using errcode = '22023';
  end if;
  v_answer := public.google_ai_finalize(
    p_reservation_id => p_reservation_id, p_outcome => 'succeeded', p_input_tokens => p_input_tokens,
    p_output_tokens => p_output_tokens, p_http_status => 200, p_latency_ms => p_latency_ms);
  if not coalesce((v_answer ->> 'ok')::boolean, false) then
    return v_answer;
  end if;
  update public.google_ai_attempts a set
    status = 'cut',
    error_code = 'stream_cut_by_' || p_cut_by,
    error_message = left(p_error_message, 1000)
  where a.reservation_id = p_reservation_id;
  return jsonb_build_object('ok', true, 'status', 'cut');
end
$$;

-- The tokens of a cut stream were billed by Google: the per-caller view counts them with the
-- successes' (its columns stay as they were; a cut attempt is among `attempts`).
create or replace view public.google_ai_usage_by_caller_24h
with (security_invoker = true) as
select a.caller,
       count(distinct coalesce(a.request_id, a.reservation_id::text))::int as requests,
       count(*)::int as attempts,
       count(*) filter (where a.status = 'succeeded')::int as succeeded,
       count(*) filter (where a.status in ('google_error', 'network_error', 'timeout'))::int as failed,
       count(*) filter (where a.status = 'refused')::int as refused,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'rpm')::int as refused_rpm,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'tpm')::int as refused_tpm,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'rpd')::int as refused_rpd,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'cooldown')::int as refused_cooldown,
       count(*) filter (where a.status = 'refused' and a.limit_hit not in ('rpm', 'tpm', 'rpd', 'cooldown'))::int as refused_other,
       count(*) filter (where a.status = 'reserved')::int as in_flight,
       count(*) filter (where a.status = 'released')::int as released,
       count(*) filter (where a.status = 'abandoned')::int as abandoned,
       coalesce(sum(a.input_tokens) filter (where a.status in ('succeeded', 'cut')), 0)::bigint as input_tokens,
       coalesce(sum(a.output_tokens) filter (where a.status in ('succeeded', 'cut')), 0)::bigint as output_tokens,
       (coalesce(sum(a.input_tokens) filter (where a.status in ('succeeded', 'cut')), 0)
        + coalesce(sum(a.output_tokens) filter (where a.status in ('succeeded', 'cut')), 0))::bigint as total_tokens,
       array_agg(distinct a.model order by a.model) as models,
       min(a.created_at) as first_at,
       max(a.created_at) as last_at
from public.google_ai_attempts a
where a.created_at > now() - interval '24 hours'
group by a.caller;

-- Access (as in the access file): nothing for anon/authenticated; operators and the functions' role.
revoke all on function
  public.google_ai_model_features(text),
  public.google_ai_model_list(),
  public.google_ai_finalize_cut(uuid, text, integer, integer, integer, text)
from public, anon, authenticated, service_role, eve_gateway;
grant execute on function
  public.google_ai_model_features(text),
  public.google_ai_model_list(),
  public.google_ai_finalize_cut(uuid, text, integer, integer, integer, text)
to service_role, eve_gateway;

-- llm-invoke reads google_ai_model_features now: the older readers of a model row stay the
-- operators' (the functions' role keeps only what the functions call).
revoke execute on function public.google_ai_model_profile(text), public.google_ai_model_capabilities(text)
from eve_gateway;
