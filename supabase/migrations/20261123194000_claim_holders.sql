-- Claims that belong to their holder: only the invocation holding a request's claim renews, ends or
-- overwrites it, and nothing its holder stopped waiting for is left behind, queue tickets included.
--
-- The baseline (20261122000100_baseline.sql) gave each claim its holder's deadlines. Three holes
-- remained:
--   - any reservation of the request renewed the claim: a former holder, whose claim a repeat had
--     taken over, set the new holder's claim back to its own (earlier) hold_until, and a third
--     repeat then took it over while the new holder was calling Google;
--   - a former holder's end of request, or its success's late finalize (an upsert to 'done'),
--     ended the new holder's claim;
--   - only a reservation committing after its reply_by was rolled back: a refusal (which renews the
--     claim) or a queue ticket (which holds it, ahead of live waiters) committing late stayed.
-- Now:
--   1. The one reservation entry (google_ai_reserve_models and its clock seam) takes the holder's
--      id as a parameter, p_holder, beside p_reply_by and p_hold_until (a new signature: the old
--      one is dropped and the entry re-created, its access as before).
--   2. Each statement's '$holder' (written by the entry from those parameters) names its invocation
--      (`holder`, a uuid): the attempt row keeps it, and the claim (google_ai_responses.holder) is
--      the invocation's that took it. A claim is renewed (never shortened: greatest of the two) by
--      its holder's statements only, ended only by its holder's end of request, and turned 'done'
--      only by its holder's success.
--   3. Any attempt row carrying a reply_by, and any queue ticket written by an entry statement that
--      named its reply_by (google_ai_statement_holder, called by the entry), is rolled back at commit
--      when the commit comes after it (57014).
--   4. A malformed '$holder' (a direct RPC call) is refused with a clear 22023, not a cast error.

-- Who holds a claim, and who made an attempt row -------------------------------------------------
alter table public.google_ai_responses add column if not exists holder uuid;
alter table public.google_ai_attempts add column if not exists holder uuid;
comment on column public.google_ai_responses.holder is
  'The invocation holding this in-flight claim (its $holder id); null until its first reservation, or for a claim made without one.';
comment on column public.google_ai_attempts.holder is
  'The invocation whose statement made this row (its $holder id), when it named one.';

-- One time of a '$holder' (null when absent); anything but an ISO timestamp is a clear 22023.
create or replace function public.google_ai_holder_time(p_holder jsonb, p_key text)
returns timestamptz
language plpgsql stable set search_path = ''
as $$
begin
  if p_holder -> p_key is null then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(p_holder -> p_key) = 'string' then
    begin
      return (p_holder ->> p_key)::timestamptz;
    exception when data_exception then
      null; -- told below
    end;
  end if;
  raise exception 'metadata key $holder is the gateway''s own: its % must be an ISO timestamp', p_key
    using errcode = '22023';
end
$$;

-- The invocation a '$holder' names (null when absent); anything but a uuid is a clear 22023.
create or replace function public.google_ai_holder_id(p_holder jsonb)
returns uuid
language plpgsql immutable set search_path = ''
as $$
begin
  if p_holder -> 'holder' is null then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(p_holder -> 'holder') = 'string'
     and (p_holder ->> 'holder') ~ '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' then
    return (p_holder ->> 'holder')::uuid;
  end if;
  raise exception 'metadata key $holder is the gateway''s own: its holder must be a uuid'
    using errcode = '22023';
end
$$;

-- As in the baseline, except that a claim taken (or taken over) names no holder
-- until its taker's attempt row, in the same statement, makes it the taker's.
create or replace function public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamptz)
returns void
language sql set search_path = ''
as $$
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, p_now + interval '7 minutes', null)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = null
$$;

-- As in the baseline, with the holder's identity: the row keeps it; a claim just taken (no holder
-- yet) becomes the admitted invocation's, with its hold_until; a claim its holder still holds is
-- renewed by its holder's statements only, never shortened. A claim nobody holds any more is not
-- revived: a repeat may take it over.
create or replace function public.google_ai_attempt_holder()
returns trigger
language plpgsql set search_path = ''
as $$
declare
  v_holder jsonb := new.metadata -> '$holder';
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  new.metadata := new.metadata - '$holder';
  if pg_catalog.jsonb_typeof(v_holder) is distinct from 'object' then
    return new;
  end if;
  new.reply_by := public.google_ai_holder_time(v_holder, 'reply_by');
  new.holder := public.google_ai_holder_id(v_holder);
  -- Never before reply_by; none when the statement names none (then the claim keeps its lease).
  new.hold_until := case when v_holder ? 'hold_until'
                         then greatest(public.google_ai_holder_time(v_holder, 'hold_until'), new.reply_by) end;
  if new.request_id is not null and new.hold_until is not null and new.holder is not null then
    update public.google_ai_responses r set
      expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
      holder = new.holder
    where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
      and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
      and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, v_now) is not null;
  end if;
  return new;
end
$$;

-- Every row of a statement that named its reply_by is checked at commit, refusals included (a
-- refusal renews its holder's claim). As in the baseline, with a message that fits a refusal too.
create or replace function public.google_ai_attempt_reply_check()
returns trigger
language plpgsql set search_path = ''
as $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception '% of request % reached its commit after its caller stopped waiting (%); rolled back',
      coalesce('reservation ' || new.reservation_id::text, 'refusal'), new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

drop trigger if exists google_ai_attempts_reply_check on public.google_ai_attempts;
create constraint trigger google_ai_attempts_reply_check
  after insert on public.google_ai_attempts
  deferrable initially deferred
  for each row when (new.reply_by is not null)
  execute function public.google_ai_attempt_reply_check();

-- The statement's reply_by for rows that do not carry it (a queue ticket): the reservation entry
-- (google_ai_reserve_models_at, below) passes its metadata through this, which notes
-- '$holder'.reply_by for the transaction and returns the metadata unchanged. Owner only.
create or replace function public.google_ai_statement_holder(p_metadata jsonb)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_reply_by timestamptz :=
    case when pg_catalog.jsonb_typeof(p_metadata -> '$holder') = 'object'
         then public.google_ai_holder_time(p_metadata -> '$holder', 'reply_by') end;
begin
  perform pg_catalog.set_config('google_ai.reply_by', coalesce(v_reply_by::text, ''), true);
  return p_metadata;
end
$$;

-- At commit: a ticket taken or moved by a statement whose holder stopped waiting goes with the
-- statement (it would hold the request's claim and a place ahead of live waiters for nobody).
create or replace function public.google_ai_queue_reply_check()
returns trigger
language plpgsql set search_path = ''
as $$
declare
  v_reply_by timestamptz := nullif(pg_catalog.current_setting('google_ai.reply_by', true), '')::timestamptz;
begin
  if pg_catalog.clock_timestamp() > v_reply_by then
    raise exception 'queue ticket % reached its commit after its caller stopped waiting (%); rolled back',
      new.ticket_id, v_reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

drop trigger if exists google_ai_queue_reply_check on public.google_ai_queue;
create constraint trigger google_ai_queue_reply_check
  after insert or update on public.google_ai_queue
  deferrable initially deferred
  for each row
  execute function public.google_ai_queue_reply_check();

-- A claim turns 'done' only by its holder's success: a former holder's late finalize (its claim was
-- taken over meanwhile) leaves the new holder's claim in place. Its own answer still counts and its
-- token_usage is written; only the stored answer of the request is the new holder's to write.
create or replace function public.google_ai_response_holder_check()
returns trigger
language plpgsql set search_path = ''
as $$
begin
  if exists (select 1 from public.google_ai_attempts a
             where a.request_id = old.request_id and a.caller = old.caller
               and a.holder = old.holder and a.status = 'succeeded') then
    return new;
  end if;
  return null;
end
$$;

drop trigger if exists google_ai_responses_holder_check on public.google_ai_responses;
create trigger google_ai_responses_holder_check
  before update on public.google_ai_responses
  for each row when (old.status = 'in_progress' and new.status = 'done' and old.holder is not null)
  execute function public.google_ai_response_holder_check();

-- As in the baseline, except that a holder ends only the claim it holds (by
-- identity); a row that names no holder keeps the earlier rule.
create or replace function public.google_ai_end_request(p_reservation_id uuid)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_deleted integer;
begin
  delete from public.google_ai_responses r
  using public.google_ai_attempts a
  where a.reservation_id = p_reservation_id
    and r.caller = a.caller and r.request_id = a.request_id and r.status = 'in_progress'
    and case when a.holder is not null then r.holder is not distinct from a.holder
             else a.reply_by is null or r.created_at <= a.reply_by end;
  get diagnostics v_deleted = row_count;
  return jsonb_build_object('ok', true, 'ended', v_deleted > 0);
end
$$;

-- The one reservation entry gains the holder's id (p_holder) beside its deadlines: a new signature,
-- so the old one goes first (nothing but llm-invoke calls it; the older wrappers call the admit_at
-- functions and keep working).
drop function if exists public.google_ai_reserve_models(text[], integer, text, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer, timestamp with time zone, timestamp with time zone);
drop function if exists public.google_ai_reserve_models_at(timestamp with time zone, text[], integer, text, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, integer, timestamp with time zone, timestamp with time zone);

-- The one reservation entry: the models as an array (a single model is an array of one, a chain
-- its models in order) and either a caller (a service caller's label) or a token hash. One model
-- is admitted by google_ai_admit_at / google_ai_admit_with_token_at, a chain by
-- google_ai_admit_chain_at; the answer is theirs, unchanged. The holder's deadlines and identity
-- (reply_by, hold_until, holder: llm-invoke's store/holder.ts) reach the attempt row's trigger
-- (google_ai_attempt_holder) under the metadata key '$holder', which they overwrite; the statement's
-- reply_by also holds for a queue ticket it takes (google_ai_statement_holder).
-- The clock is injected (p_now; null: the transaction's own clock): the test seam. Owner only.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}');
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_reply_by, 'hold_until', p_hold_until, 'holder', p_holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_queue_reply_check).
  v_metadata := public.google_ai_statement_holder(v_metadata);
  if cardinality(p_models) > 1 then
    return public.google_ai_admit_chain_at(p_now => p_now, p_models => p_models,
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
      p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
      p_wait_ms => p_wait_ms, p_metadata => v_metadata, p_idempotent => p_idempotent,
      p_priority => p_priority, p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  elsif p_token_hash is null then
    return public.google_ai_admit_at(p_now => p_now, p_model => p_models[1],
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
      p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
      p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
      p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  else
    return public.google_ai_admit_with_token_at(p_now => p_now, p_token_hash => p_token_hash,
      p_model => p_models[1], p_estimated_tokens => p_estimated_tokens, p_request_id => p_request_id,
      p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
      p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
      p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  end if;
end
$_$;

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select public.google_ai_reserve_models_at(null, p_models, p_estimated_tokens, p_caller, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms,
    p_reply_by, p_hold_until, p_holder)
$$;

-- Access (as in supabase/schemas/99_access.sql): the entry is llm-invoke's, its clock seam the owner's; the
-- statement's helper and the other steps are the owner's, called only inside the reservation.
revoke all on function public.google_ai_holder_time(jsonb, text) from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_holder_id(jsonb) from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_queue_reply_check() from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_response_holder_check() from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_statement_holder(jsonb) from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) from public, anon, authenticated, service_role, eve_gateway;
revoke all on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) to service_role, eve_gateway;
