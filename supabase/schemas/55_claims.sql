-- Claims: a request id is held by its caller while it is served (the holder's deadlines reply_by and
-- hold_until, fields of the request record), and answered again from its stored answer (idempotency).
set check_function_bodies = off;

-- An attempt row of a holder (the request's holder and hold_until, which a row has only with a
-- reply_by: google_ai_log_refusal, google_ai_record_admission) renews its claim: a claim just taken (no
-- holder yet) becomes the admitted invocation's, with its hold_until; a claim its holder still holds is
-- renewed by its holder's statements only, never shortened. A claim nobody holds any more is not
-- revived: a repeat may take it over.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if new.request_id is null or new.holder is null then
    return new;
  end if;
  update public.google_ai_responses r set
    expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
    holder = new.holder
  where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
    and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
    and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, pg_catalog.clock_timestamp())
        is not null;
  return new;
end
$$;

-- Until when a request's in-flight claim is held at p_now: its lease, or a live ticket of the request
-- in the admission queue (its holder is waiting for its turn). Null: nobody holds it.
CREATE OR REPLACE FUNCTION public.google_ai_claim_held_until(p_caller text, p_request_id text,
    p_expires_at timestamp with time zone, p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_ticket timestamptz;
begin
  if p_expires_at > p_now then
    return p_expires_at;
  end if;
  select max(q.lease_until) into v_ticket from public.google_ai_queue q
  where q.caller = p_caller and q.request_id = p_request_id and q.lease_until > p_now;
  return v_ticket;
end
$$;

-- A claim turns 'done' only by its holder's success: a former holder's late finalize (its claim was
-- taken over meanwhile) leaves the new holder's claim in place. Its own answer still counts and its
-- token_usage is written; only the stored answer of the request is the new holder's to write.
CREATE OR REPLACE FUNCTION public.google_ai_response_holder_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if exists (select 1 from public.google_ai_attempts a
             where a.request_id = old.request_id and a.caller = old.caller
               and a.holder = old.holder and a.status = 'succeeded') then
    return new;
  end if;
  return null;
end
$$;

-- The request's idempotency marker: in flight until finalize stores the answer, with a lease a
-- little longer than an Edge Function's wall clock, so a crashed caller cannot block its id. A claim
-- taken (or taken over) is its taker's: p_holder with its hold_until (the request's, as its admitted
-- attempt row carries them), the lease then being hold_until, when both are named and the
-- claim is held at all (google_ai_claim_held_until: the fixed lease has not ended at the clock, as with
-- an injected clock it may have); else it names no holder. (The attempt row is written first and this
-- claim after it, with its holder: the attempt's trigger then finds no claim of this taker to update, or
-- one this upsert writes over, where a claim written first was written again by it; counted, about 110k
-- instructions less a reservation.)
CREATE OR REPLACE FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text,
    p_now timestamp with time zone, p_holder uuid DEFAULT NULL::uuid,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_lease timestamptz := p_now + interval '7 minutes';
begin
  if p_holder is null or p_hold_until is null
     or public.google_ai_claim_held_until(p_caller, p_request_id, v_lease, pg_catalog.clock_timestamp()) is null then
    p_holder := null;
  else
    v_lease := p_hold_until;
  end if;
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, v_lease, p_holder)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = excluded.holder;
end
$$;

-- For a request the caller named with its own request_id: the answer to give instead of reserving,
-- or null to go on. A request id this caller completed within 24 hours is answered from the stored
-- response; one whose earlier call still holds its lease (in flight, or between attempts) is refused
-- as in_progress. The advisory lock serialises concurrent duplicates until the first one's marker
-- (google_ai_hold_request, in the same transaction) is committed. The answer is a refusal's verdict.
CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text,
    p_now timestamp with time zone) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
  v_retry_ms bigint;
begin
  perform public.google_ai_advisory_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return row(false, 'duplicate', 'duplicate', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
        'retry_after_ms', null, 'retry_at', null))::public.google_ai_admission_verdict;
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      v_retry_ms := greatest(1000, public.google_ai_ms_until(v_held_until, p_now));
      return row(false, 'in_progress', 'in_progress', v_retry_ms, v_held_until, null, null, null, null,
        jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
          'retry_after_ms', v_retry_ms, 'retry_at', v_held_until))::public.google_ai_admission_verdict;
    end if;
  end if;
  return null;
end
$$;

-- (Not for a row whose claim its writer writes right after it, with its holder: eve.claim_follows,
-- google_ai_record_admission.)
CREATE OR REPLACE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN
    ((new.hold_until IS NOT NULL) AND (current_setting('eve.claim_follows', true) IS DISTINCT FROM 'on'))
    EXECUTE FUNCTION public.google_ai_attempt_holder();

CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY
    DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_reply_check();

CREATE OR REPLACE TRIGGER google_ai_responses_holder_check BEFORE UPDATE ON public.google_ai_responses FOR EACH ROW WHEN
    (((old.status = 'in_progress'::text) AND (new.status = 'done'::text) AND (old.holder IS NOT NULL))) EXECUTE FUNCTION
    public.google_ai_response_holder_check();
