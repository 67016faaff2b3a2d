-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a queue ticket says what it waits for (google_ai_queue.waits_for): the spread and the
--   queue's places count only the tickets that wait for what the request would
set check_function_bodies = off;

alter table "public"."google_ai_queue" add column if not exists "waits_for" text not null default 'window'::text;

CREATE OR REPLACE FUNCTION public.google_ai_waits_alike(p_waits_for text, p_ticket_class text, p_ticket_caller text, p_class text, p_caller text)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select p_waits_for = 'window' or (p_waits_for = 'class_allowance' and p_ticket_class = p_class)
         or (p_waits_for = 'caller_allowance' and p_ticket_caller = p_caller)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_waits_for(p_limit text, p_model text, p_class text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  return case when p_limit is distinct from 'pace' then 'window'
              when exists (select 1 from public.google_ai_quota_shares s where s.model = p_model
                             and s.priority_class = p_class and s.pace_burst is not null) then 'class_allowance'
              else 'caller_allowance' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_variable
declare
  v_held public.google_ai_queue;
  v_ahead integer;
  v_due_ahead integer;
  v_head_limit text;   -- the limit a due ticket ahead waits for head first (google_ai_queue_turns)
  v_free_now integer;
  v_spread_bound boolean;
  v_kept_bound boolean;
begin
  rank := p_class.rank;
  class := p_class.name;
  may_book := true;
  if p_model.model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = p_caller.name and q.model = p_model.model and q.lease_until >= p_now;
    if v_held.ticket_id is not null then
      select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
        into ticket, rank, class, since;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      turn := least(v_held.turn,
        public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, ticket, v_held.turn));
    end if;
  end if;
  -- (Only tickets that wait for what this request would: google_ai_waits_alike.)
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
                   and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name)) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  -- (A ticket of several requests holds the slots free now toward its turn: it waits because fewer are free
  -- than it needs, and a request behind it that took one would put its turn off.)
  select coalesce(sum(q.requests), 0),
         coalesce(sum(q.requests) filter (where q.expected_at <= p_now or q.requests > 1), 0),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name);
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + p_requests, rank, class,
    p_caller.name) t;
  -- Slots go to the due tickets ahead first; those nobody due claims go to whoever asks, when they are
  -- as many as its requests. (No turn, none today anywhere or every window kept from it by shares: the
  -- booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead + p_requests <= v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = p_model.model) u on u.share_id = s.id
               where s.model = p_model.model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = p_caller.name)
                 and coalesce((public.google_ai_ring_at(p_now,
                       public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                       u.ring_low, u.ring, u.window_requests, null)).sum_requests, 0) < s.reserved_rpm));
  if not may_book then
    blocked_by := coalesce(v_head_limit, case when p_model.rpm is not null then 'rpm' else 'tpm' end);
    cause := case when v_head_limit is not null or v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread'
                  when v_kept_bound then 'share_kept' else 'window_full' end;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, p_class.name, p_request.caller);
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests, waits_for)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name))
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint, p_at timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select exists (select 1 from public.google_ai_queue q
                   where q.model = p_model and q.lease_until >= p_at and q.waits_for = 'window')
       and (p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank)));
end
$function$
;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_queue"'::regclass
                 and conname = 'google_ai_queue_waits_for_check') then
    alter table "public"."google_ai_queue" add constraint "google_ai_queue_waits_for_check" CHECK ((waits_for = ANY (ARRAY['window'::text, 'class_allowance'::text, 'caller_allowance'::text]))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_queue" validate constraint "google_ai_queue_waits_for_check";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_queue."waits_for" is 'What the ticket waits for (google_ai_waits_for; QUEUE_WAIT_TARGETS in _shared/vocabulary.ts): window, the model''s capacity every caller shares; class_allowance or caller_allowance, a paced share of its class or its caller, which only requests of that class or caller wait for. The spread and the queue''s places count a ticket only for the requests that wait for the same (google_ai_waits_alike).';
revoke all on function public.google_ai_waits_alike(p_waits_for text, p_ticket_class text, p_ticket_caller text, p_class text, p_caller text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_waits_for(p_limit text, p_model text, p_class text) from public, anon, authenticated, service_role;
