-- The Responses API's stored responses (POST …/v1/responses with store, the gateway's default): the
-- response object as it was answered and its conversation in the hub's words (the turns a follow-up
-- by previous_response_id continues, on any model), for the caller that made it only: a service
-- caller by its label, a scoped token by the token itself. Each lives stored_response_lifetime
-- (05_settings.sql); housekeeping deletes it after (92_housekeeping.sql), and no read returns it.
set check_function_bodies = off;

CREATE TABLE public.google_ai_stored_responses (
    id text PRIMARY KEY,
    owner text NOT NULL,
    model text NOT NULL,
    response jsonb NOT NULL,
    conversation jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT google_ai_stored_responses_id_check CHECK ((id ~ '^resp_[A-Za-z0-9_-]{1,100}$'::text))
);

COMMENT ON TABLE public.google_ai_stored_responses IS
    'Responses API answers kept for previous_response_id and GET/DELETE …/v1/responses/{id}: the response object, '
    'its conversation in the hub''s words, whose it is (owner: service:<label> or token:<token id>), until '
    'expires_at (created_at + stored_response_lifetime).';

CREATE INDEX google_ai_stored_responses_expires_at_idx ON public.google_ai_stored_responses USING btree (expires_at);

-- Whose a stored response is: a service caller's label, or a scoped token that is neither revoked
-- nor expired (null: nobody's, so nothing is read, kept or deleted).
CREATE OR REPLACE FUNCTION public.google_ai_stored_response_owner(p_token_hash text, p_caller text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select case
    when p_token_hash is null then 'service:' || p_caller
    else (select 'token:' || t.id::text from public.google_ai_tokens t
          where t.token_hash = p_token_hash and t.revoked_at is null
            and t.expires_at > pg_catalog.clock_timestamp())
  end
$$;

-- Keeps a response for its caller (a second write of the same id by its owner replaces it; another
-- owner's id is left alone). False: the caller has no scope (its token is gone).
CREATE OR REPLACE FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_owner text := public.google_ai_stored_response_owner(p_token_hash, p_caller);
  v_lifetime interval := coalesce(
    (select s.stored_response_lifetime from public.google_ai_maintenance_settings s where s.id), interval '1 day');
begin
  if v_owner is null then
    return false;
  end if;
  insert into public.google_ai_stored_responses as r (id, owner, model, response, conversation, expires_at)
  values (p_id, v_owner, p_model, p_response, p_conversation, pg_catalog.clock_timestamp() + v_lifetime)
  on conflict (id) do update set model = excluded.model, response = excluded.response,
    conversation = excluded.conversation, expires_at = excluded.expires_at
    where r.owner = excluded.owner;
  return true;
end
$$;

COMMENT ON FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) IS
    'Keeps a Responses API answer and its conversation for its caller (a service label, or a live token) for '
    'stored_response_lifetime.';

-- A stored response of the caller's own, while it lives: {model, response, conversation}; null: none
-- (never stored, another caller's, expired or deleted: the same answer, so ids cannot be probed).
CREATE OR REPLACE FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text)
    RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select jsonb_build_object('model', r.model, 'response', r.response, 'conversation', r.conversation)
  from public.google_ai_stored_responses r
  where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
    and r.expires_at > pg_catalog.clock_timestamp()
$$;

COMMENT ON FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) IS
    'A stored Responses API answer of the caller''s own while it lives, else null.';

-- Deletes a stored response of the caller's own; false: there was none (as google_ai_stored_response).
CREATE OR REPLACE FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text)
    RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  with gone as (
    delete from public.google_ai_stored_responses r
    where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
      and r.expires_at > pg_catalog.clock_timestamp()
    returning 1)
  select exists (select from gone)
$$;

COMMENT ON FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text) IS
    'Deletes a stored Responses API answer of the caller''s own; false when it had none.';
