-- Claims with their holder's deadlines: no ghost after an outage.
--
-- A function waits for each statement only until its client-side deadline (llm-invoke: 6 s), then
-- answers 503 `unavailable` and never calls Google for that reservation. A database that was frozen
-- meanwhile still runs the statement when it comes back, and would commit a reservation (booked
-- capacity, an attempt row left `reserved`, an in-flight claim on the caller's request_id) that no
-- live request holds: the caller repeating its request_id was told 409 `request_in_progress` for
-- minutes, and the capacity stayed booked until housekeeping abandoned the row.
--
-- Every reservation statement of llm-invoke now says, in its metadata (key '$holder', taken out of
-- the metadata before the row is stored), two times of its holder:
--   reply_by    when it stops waiting for this statement's answer (a little before its deadline);
--   hold_until  (a request the caller named) when it will have made its next reservation statement
--               about the request, or be gone: after the call to Google this reservation allows, the
--               finalize, a backoff and the next reservation's own deadline (a stream: up to the end
--               of the request's budget; a wait for a turn in line is held by its queue ticket).
-- and the database holds it to them:
--   1. A reservation still uncommitted at its reply_by is rolled back at commit (SQLSTATE 57014,
--      which the function answers 503 like a statement timeout): its holder has gone and never calls
--      Google for it, so nothing of it stays: no booking, no attempt row, no claim. Capacity a frozen
--      database would have booked for nobody is never booked.
--   2. A request's in-flight claim (google_ai_responses 'in_progress') lasts until the hold_until of
--      its holder's latest reservation statement (each renews it), or while the request holds a live
--      ticket in the admission queue (google_ai_queue.lease_until: it is waiting for its turn). Past
--      both, no live request holds it: a repeat of the request_id takes it over at once, and an
--      answer `in_progress` means a holder that is still within its own bounds.
-- A reservation that did commit in time keeps counting until it is finalized, released or abandoned
-- by housekeeping: its holder may have called Google with it. Statements that carry no '$holder'
-- (other callers of the RPCs) keep the fixed lease of google_ai_hold_request.

-- The holder's times on its attempt rows ----------------------------------------------------------
alter table public.google_ai_attempts add column if not exists reply_by timestamptz;
alter table public.google_ai_attempts add column if not exists hold_until timestamptz;
comment on column public.google_ai_attempts.reply_by is
  'When the statement that made this row stopped waiting for its answer; a reservation not committed by then is rolled back.';
comment on column public.google_ai_attempts.hold_until is
  'When the holder of this row''s request will have made its next statement about it, or be gone; the request''s in-flight claim lasts until then.';

-- Until when a request's in-flight claim is held at p_now: its lease, or a live ticket of the request
-- in the admission queue (its holder is waiting for its turn). Null: nobody holds it.
create or replace function public.google_ai_claim_held_until(
  p_caller text, p_request_id text, p_expires_at timestamptz, p_now timestamptz)
returns timestamptz
language plpgsql stable set search_path = ''
as $$
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

-- The attempt row takes the holder's times out of its metadata; a reservation or refusal of a
-- request whose claim is held renews the claim until the holder's new hold_until (a claim nobody
-- holds any more is not revived: a repeat may take it over).
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
  new.reply_by := (v_holder ->> 'reply_by')::timestamptz;
  -- Never before reply_by; none when the statement names none (then the claim keeps its lease).
  new.hold_until := case when v_holder ? 'hold_until'
                         then greatest((v_holder ->> 'hold_until')::timestamptz, new.reply_by) end;
  if new.request_id is not null and new.hold_until is not null then
    update public.google_ai_responses r set expires_at = new.hold_until
    where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
      and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, v_now) is not null;
  end if;
  return new;
end
$$;

drop trigger if exists google_ai_attempts_holder on public.google_ai_attempts;
create trigger google_ai_attempts_holder
  before insert on public.google_ai_attempts
  for each row when (new.metadata ? '$holder')
  execute function public.google_ai_attempt_holder();

-- At commit: a reservation whose holder stopped waiting is rolled back with everything its statement
-- did. 57014 (query_canceled) is what a statement timeout raises: the function answers it 503.
create or replace function public.google_ai_attempt_reply_check()
returns trigger
language plpgsql set search_path = ''
as $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception 'reservation % reached its commit after its caller stopped waiting (%); rolled back',
      new.reservation_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

drop trigger if exists google_ai_attempts_reply_check on public.google_ai_attempts;
create constraint trigger google_ai_attempts_reply_check
  after insert on public.google_ai_attempts
  deferrable initially deferred
  for each row when (new.status = 'reserved' and new.reply_by is not null)
  execute function public.google_ai_attempt_reply_check();

-- As in 20261122000400_reservation.sql, with the claim held as google_ai_claim_held_until says
-- (its lease, renewed by the holder's statements, or a live ticket of the request) instead of its
-- lease alone.
create or replace function public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return jsonb_build_object('ok', false, 'limit', 'duplicate', 'response', v_prior.response,
      'retry_after_ms', null, 'retry_at', null);
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      return jsonb_build_object('ok', false, 'limit', 'in_progress',
        'retry_after_ms', greatest(1000, ceil(extract(epoch from (v_held_until - p_now)) * 1000))::bigint,
        'retry_at', v_held_until);
    end if;
  end if;
  return null;
end
$$;

-- As in 20261122000500_request_life_cycle.sql, except that a holder ends only its own claim: one
-- taken over after the holder's bounds passed was made after this reservation's reply_by (a
-- holder's own claim is made no later than the commit of its first reservation, before its reply_by).
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
    and (a.reply_by is null or r.created_at <= a.reply_by);
  get diagnostics v_deleted = row_count;
  return jsonb_build_object('ok', true, 'ended', v_deleted > 0);
end
$$;

-- Access (as in the access file): the new steps are the owner's, called only inside the reservation.
revoke all on function
  public.google_ai_claim_held_until(text, text, timestamptz, timestamptz),
  public.google_ai_attempt_holder(),
  public.google_ai_attempt_reply_check()
from public, anon, authenticated, service_role;
