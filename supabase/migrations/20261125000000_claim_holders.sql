-- Claims that belong to their holder: only the invocation holding a request's claim renews, ends or
-- overwrites it, and nothing its holder stopped waiting for is left behind, queue tickets included.
--
-- 20261124000300_claim_deadlines.sql gave each claim its holder's deadlines. Three holes remained:
--   - any reservation of the request renewed the claim: a former holder, whose claim a repeat had
--     taken over, set the new holder's claim back to its own (earlier) hold_until, and a third
--     repeat then took it over while the new holder was calling Google;
--   - a former holder's end of request, or its success's late finalize (an upsert to 'done'),
--     ended the new holder's claim;
--   - only a reservation committing after its reply_by was rolled back: a refusal (which renews the
--     claim) or a queue ticket (which holds it, ahead of live waiters) committing late stayed.
-- Now:
--   1. Each statement's '$holder' names its invocation (`holder`, a uuid): the attempt row keeps it,
--      and the claim (google_ai_responses.holder) is the invocation's that took it. A claim is
--      renewed (never shortened: greatest of the two) by its holder's statements only, ended only
--      by its holder's end of request, and turned 'done' only by its holder's success.
--   2. Any attempt row carrying a reply_by, and any queue ticket written by a statement that named
--      its reply_by (google_ai_statement_holder, in llm-invoke's reservation statement), is rolled
--      back at commit when the commit comes after it (57014).
--   3. A malformed '$holder' (a direct RPC call) is refused with a clear 22023, not a cast error.

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

-- As in 20261122000400_reservation.sql, except that a claim taken (or taken over) names no holder
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

-- As in 20261124000300_claim_deadlines.sql, with the holder's identity: the row keeps it; a claim
-- just taken (no holder yet) becomes the admitted invocation's, with its hold_until; a claim its
-- holder still holds is renewed by its holder's statements only, never shortened. A claim nobody
-- holds any more is not revived: a repeat may take it over.
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
-- refusal renews its holder's claim). As in 20261124000300_claim_deadlines.sql, with a message
-- that fits a refusal too.
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

-- The statement's reply_by for rows that do not carry it (a queue ticket): llm-invoke's reservation
-- statement passes its metadata through this, which notes '$holder'.reply_by for the transaction
-- and returns the metadata unchanged.
create or replace function public.google_ai_statement_holder(p_metadata jsonb)
returns jsonb
language plpgsql security definer set search_path = ''
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

-- As in 20261124000300_claim_deadlines.sql, except that a holder ends only the claim it holds (by
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

-- Access (as in the access file): the statement's helper is called by llm-invoke inside its
-- reservation statement; the other steps are the owner's, called only inside the reservation.
revoke all on function
  public.google_ai_holder_time(jsonb, text),
  public.google_ai_holder_id(jsonb),
  public.google_ai_queue_reply_check(),
  public.google_ai_response_holder_check()
from public, anon, authenticated, service_role;
revoke all on function public.google_ai_statement_holder(jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_statement_holder(jsonb) to service_role, eve_gateway;
