-- The fair admission queue: tickets taken by a refusal, turns by class then fair between callers,
-- lapsed tickets, and whether the spread holds a class back (only while requests wait).
set check_function_bodies = off;

CREATE TABLE public.google_ai_queue (
    ticket_id uuid DEFAULT gen_random_uuid() PRIMARY KEY,
    model text NOT NULL,
    priority_class text NOT NULL REFERENCES public.google_ai_priority_classes(name),
    class_rank smallint NOT NULL,
    caller text NOT NULL,
    client_id uuid,
    token_id uuid,
    request_id text,
    requested_model text,
    turn bigint NOT NULL,
    enqueued_at timestamp with time zone NOT NULL,
    tokens integer NOT NULL,
    limit_hit text NOT NULL,
    expected_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone NOT NULL,
    "position" integer NOT NULL,
    requests integer DEFAULT 1 NOT NULL,
    waits_for text DEFAULT 'window' NOT NULL,
    reply_by timestamp with time zone,
    CONSTRAINT google_ai_queue_waits_for_check CHECK (waits_for IN ('window', 'class_allowance', 'caller_allowance'))
);

COMMENT ON TABLE public.google_ai_queue IS
    'Requests waiting for capacity, in admission order (class_rank, turn, enqueued_at). A ticket ends when its request '
    'is admitted, gives up, or stops calling (lease_until): then an abandoned attempt row records it. requests: the '
    'slots its turn needs at once (google_ai_attempts.requests).';

COMMENT ON COLUMN public.google_ai_queue.reply_by IS
    'When the caller of the statement that took or renewed the ticket stopped waiting for its answer (its '
    'request''s reply_by; google_ai_reply_check rolls back a ticket committed later). Null: none named.';

COMMENT ON COLUMN public.google_ai_queue.waits_for IS
    'What the ticket waits for (google_ai_waits_for; QUEUE_WAIT_TARGETS in _shared/vocabulary.ts): window, the '
    'model''s capacity every caller shares; class_allowance or caller_allowance, a paced share of its class or its '
    'caller, which only requests of that class or caller wait for. The spread and the queue''s places count a ticket '
    'only for the requests that wait for the same (google_ai_waits_alike).';

CREATE INDEX IF NOT EXISTS google_ai_queue_caller_idx ON public.google_ai_queue USING btree (model, caller, class_rank);

CREATE INDEX IF NOT EXISTS google_ai_queue_lease_idx ON public.google_ai_queue USING btree (model, lease_until);

CREATE INDEX IF NOT EXISTS google_ai_queue_order_idx ON
    public.google_ai_queue USING btree (model, class_rank, turn, enqueued_at);

-- The limits a WAIT caller waits for in the model's queue, one entry each (WAITABLE_LIMITS in
-- supabase/functions/_shared/vocabulary.ts; tests/db/vocabulary.test.ts holds its answers to it), and
-- how their turns go. A refusal for one of them takes a ticket (google_ai_refusal_at); its turn follows:
-- 'slots' for what google_ai_queue_turn_at counts (each group's window, its day, its cooldowns), where a
-- request behind the due tickets may book a slot they leave over; 'head' for any other waited limit (its
-- capacity is not the window's, so the queue cannot count it; none today): a due ticket waiting for it
-- holds every request behind it until its own turn is served (google_ai_queue_place). Null: not waited
-- for, answered at once. Inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turns(p_limit text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_limit operator(pg_catalog.=) any ('{rpm,tpm,rpd,cooldown,pace}'::text[]) then 'slots'
              when p_limit operator(pg_catalog.=) any ('{}'::text[]) then 'head' end
$$;

-- What a refused request waits for once it holds a ticket (google_ai_queue.waits_for), by its limit
-- (p_limit): a pace, the paced share of its owner, the class p_class when the class owns one of the model
-- p_model, else its caller (the ticket's); any other waitable limit the window (its groups' windows, days,
-- cooldowns, the spread's schedule and buckets: the model's capacity, which every caller waits for).
-- A new waitable limit that only its owner waits for (a client's cap, a budget) says so here, or one
-- capped caller's ticket turns the spread on and takes a place ahead of every other caller.
-- (PL/pgSQL, as the queue's other helpers: a SQL function with a query is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_waits_for(p_limit text, p_model text, p_class text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
begin
  return case when p_limit is distinct from 'pace' then 'window'
              when exists (select 1 from public.google_ai_quota_shares s where s.model = p_model
                             and s.priority_class = p_class and s.pace_burst is not null) then 'class_allowance'
              else 'caller_allowance' end;
end
$$;

-- Whether a request of class p_class and caller p_caller waits for what a ticket waits for (p_waits_for,
-- of a ticket of class p_ticket_class and caller p_ticket_caller): the window, every request; an
-- allowance, only its owner's. The spread and the queue's places count only such tickets. Inlined.
CREATE OR REPLACE FUNCTION public.google_ai_waits_alike(p_waits_for text, p_ticket_class text, p_ticket_caller text,
    p_class text, p_caller text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select p_waits_for = 'window' or (p_waits_for = 'class_allowance' and p_ticket_class = p_class)
         or (p_waits_for = 'caller_allowance' and p_ticket_caller = p_caller)
$$;

-- Tickets whose waiter stopped calling: removed, each leaving an abandoned attempt row (nothing lost).
CREATE OR REPLACE FUNCTION public.google_ai_queue_lapse(p_model text, p_now timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_lapsed integer;
begin
  with gone as (
    delete from public.google_ai_queue q
    where q.model = p_model and q.lease_until < p_now
    returning q.*)
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, wait_ms, priority_class, error_message, finished_at, requests)
  select 'abandoned', g.request_id, g.caller, g.client_id, g.token_id, g.model, g.requested_model, 1, g.tokens,
    g.limit_hit, greatest(0, extract(epoch from (g.expected_at - g.enqueued_at)) * 1000)::integer, g.priority_class,
    'left the queue: no call within the grace after its turn', p_now, g.requests
  from gone g;
  get diagnostics v_lapsed = row_count;
  return v_lapsed;
end
$$;

-- A group's next p_needed slots for waiters: its openings (free now, then as admissions leave),
-- each again a window later, and on a spread model (p_step) none before its schedule allows
-- (p_schedule: the group's spread_until, p_tolerance: what the schedule forgives; p_grid: a sliding
-- window's spread, not a bucket: google_ai_spread_next).
CREATE OR REPLACE FUNCTION public.google_ai_group_slots(p_openings timestamp with time zone[], p_needed integer,
    p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval, p_grid boolean)
    RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_n integer := cardinality(p_openings);
  v_schedule timestamptz := p_schedule;
  v_slot timestamptz;
  v_slots timestamptz[] := '{}'::timestamptz[];
begin
  for j in 1 .. p_needed loop
    v_slot := p_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * p_window;
    if p_step is not null then
      v_slot := greatest(v_slot, v_schedule - p_tolerance);
      v_schedule := public.google_ai_spread_next(v_schedule, v_slot, p_step, p_grid);
    end if;
    v_slots := v_slots || v_slot;
  end loop;
  return v_slots;
end
$$;

-- What the higher classes than rank p_rank took of a group's window for the model (a request that
-- waited longer than a window says nothing of what its class asks for now). The window is read as a
-- range closed on both sides, so a generic plan walks the window's index (15_request_log.sql says why).
-- (This helper and the next are PL/pgSQL: a query in a SQL function cannot be inlined, and PL/pgSQL
-- keeps its plans for the session.)
CREATE OR REPLACE FUNCTION public.google_ai_higher_taken(p_group text, p_model text, p_now timestamp with time zone,
    p_window interval, p_rank smallint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select coalesce(sum(a.requests), 0) from public.google_ai_attempts a
          join public.google_ai_priority_classes pc on pc.name = a.priority_class
          where a.quota_group = p_group and a.model = p_model
            and a.admitted_at > p_now - p_window and a.admitted_at < 'infinity'
            and a.status not in ('released', 'withdrawn') and pc.rank < p_rank
            and coalesce(a.wait_ms, 0) < extract(epoch from p_window) * 1000);
end
$$;

-- What the model's RPM shares that a waiter of class p_class and caller p_caller does not own still
-- keep of a group's window: each share's reserve less what its owner used of the window (p_use, the
-- counter row's share_use).
CREATE OR REPLACE FUNCTION public.google_ai_kept_from(p_model text, p_use public.google_ai_share_use[],
    p_now timestamp with time zone, p_window interval, p_class text, p_caller text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select coalesce(sum(greatest(0, s.reserved_rpm - coalesce((public.google_ai_ring_at(p_now, p_window,
                   e.ring_low, e.ring, e.window_requests, null)).sum_requests, 0))), 0)
          from public.google_ai_quota_shares s
          left join unnest(p_use) e on e.share_id = s.id
          where s.model = p_model and s.reserved_rpm is not null
            and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false)));
end
$$;

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the quota
-- groups that may serve the model today: each group offers its free slots now, then one slot as each
-- admission of its window leaves it (admitted_at + window), then the same again a window later; a
-- spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next; a bucket-shaped model's request bucket, bucket_share,
-- whose window holds no slot back: google_ai_booking_outcome counts it only while others' shares keep
-- part of it, so its openings are all now and its schedule alone places them).
-- A group's window holds, for a waiter of class p_class and caller p_caller, what the RPM shares it
-- does not own leave it (google_ai_booking_rules' rule: the limit less what their owners have not used
-- of the window), so a slot a share keeps from it is not counted as its turn. free_now counts the slots
-- of each group's first p_slots that are free now. likely_at: the same for a request of class rank
-- p_rank, counting, on a spread model, on the part of each group's slots that the higher classes left
-- in the last window (they will ask again, and go first; at least a tenth): its p_slots-th slot is a
-- group's p_slots / part-th. spread_bound: some group's window has a slot now that only its schedule
-- holds back; kept_bound: some group's window has room now that only the shares keep from this waiter.
-- Each group counts against the model's effective limits there: the row's, or for a row that follows its
-- provider (provider_limits 'follow') those its provider stated for the group (google_ai_followed_limits,
-- on the counter row the booking locks: the row's pool's, limit_pool, or its own), its schedule at that RPM.
-- Null turn_at: no group can serve today (day used up or cooling down everywhere), or the shares it
-- does not own keep every group's window.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model public.google_ai_model_limits,
    p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text,
    p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone,
    OUT spread_bound boolean, OUT kept_bound boolean) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  -- (A spread holds a waiter's slots back only for a class some class ranks before: google_ai_queue_spread.)
  v_ranked bool := p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank);
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}'::timestamptz[];
  v_likely timestamptz[] := '{}'::timestamptz[];
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model.model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model.model, u.share_use, p_now, v_window, p_class, p_caller) as held,
           (f.l).rpm as rpm, (f.l).rpd as rpd, s.step, s.tolerance, s.spaced
    from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, null, p_model.rpd, p_now) c
    left join public.google_ai_usage_counters u
      on u.quota_group = c.quota_group and u.model = coalesce(p_model.limit_pool, p_model.model)
    cross join lateral (select case when p_model.provider_limits = 'follow'
                          then public.google_ai_followed_limits(p_model, u.stated_limits) else p_model end as l) f
    cross join lateral public.google_ai_queue_spread(p_model, (f.l).rpm, v_window, v_ranked) s
  loop
    continue when v_group.cooldown_until is not null or (v_group.rpd is not null and v_group.rpd_used >= v_group.rpd);
    v_day_left := v_day_left + coalesce(v_group.rpd - v_group.rpd_used, 1000000);
    if v_group.rpm is null then
      free_now := 1000000;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when p_model.bucket_share is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
    v_room := v_group.rpm - v_group.held;
    kept_bound := kept_bound or (v_count < v_group.rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_group.spaced and v_openings[1] <= p_now and v_group.spread_until - v_group.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_group.spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(v_group.rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_group.spaced then v_group.step end, v_group.tolerance, p_model.bucket_share is null);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now;
  -- never before now). None when there are fewer: the shares this waiter does not own keep every
  -- group's window from it, and the booking names when, if ever, one has room for it.
  select case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.t order by o.t))[p_slots]) end,
         case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.l order by o.l))[p_slots]) end
  into turn_at, likely_at from unnest(v_slots, v_likely) o(t, l);
end
$$;

-- At commit: a row written by a statement whose caller stopped waiting (its reply_by passed) is rolled
-- back with everything the statement did. Each such row carries its request's reply_by: an attempt row
-- (an admission, or a refusal: it renews its holder's claim, 55_claims.sql), a queue ticket taken or
-- renewed (it would hold the request's claim and a place ahead of live waiters for nobody; a write that
-- sets no reply_by, such as a fallback naming its requested model, is not checked again). 57014
-- (query_canceled) is what a statement timeout raises: the function answers it 503.
CREATE OR REPLACE FUNCTION public.google_ai_reply_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception 'the % row of request % reached its commit after its caller stopped waiting (%); rolled back',
      tg_table_name, new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE OF reply_by ON public.google_ai_queue
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL))
    EXECUTE FUNCTION public.google_ai_reply_check();

-- Whether the spread holds a request of class rank p_rank back (its place in the schedule still
-- ahead): only while requests wait for the model's window (a ticket waiting for an allowance, its
-- class's or caller's pace, is not helped by the schedule: a request its owner sends is paced by the
-- booking first), and only for a class that some class ranks before (the schedule keeps the next slots
-- coming for that class; the first class has nobody to keep them for). While nobody waits, a burst that
-- fits the window goes at once. Null rank: held.
CREATE OR REPLACE FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint,
    p_at timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select exists (select 1 from public.google_ai_queue q
                   where q.model = p_model and q.lease_until >= p_at and q.waits_for = 'window')
       and (p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank)));
end
$$;

-- A ticket's turn in its class (start-time fair queueing). A new ticket whose caller has none waiting
-- takes the turn of the class's head, behind it (ties go to the earlier arrival); a caller's next one
-- the turn after its last. So within a class callers take turns: a caller with 100 waiting delays
-- another's first request by one turn, and its second by one more (A, B, A, B).
-- A ticket already in line (p_ticket) moves up to follow its caller's previous live ticket, or the
-- head: one turn after it, never beside it. Its caller's earlier tickets are gone, and a ticket cannot
-- tell whether they were admitted (their turns were its caller's, and the head's turn is another
-- caller's) or given up; tying the head would put it, the earlier arrival, before a newer caller's
-- ticket that it just had its turn before.
-- p_live_at: only tickets whose lease runs then count (null: every ticket; the queue was just lapsed).
-- p_ticket, the caller's own ticket, is left out; p_below: only the caller's tickets before that turn
-- count (a ticket moves up, never back).
CREATE OR REPLACE FUNCTION public.google_ai_next_turn(p_model text, p_rank smallint, p_caller text,
    p_live_at timestamp with time zone, p_ticket uuid, p_below bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_head bigint;
  v_last bigint;
begin
  select min(q.turn) into v_head from public.google_ai_queue q
  where q.model = p_model and q.class_rank = p_rank
    and (p_live_at is null or q.lease_until >= p_live_at)
    and q.ticket_id is distinct from p_ticket;
  select max(q.turn) into v_last from public.google_ai_queue q
  where q.model = p_model and q.caller = p_caller and q.class_rank = p_rank
    and (p_live_at is null or q.lease_until >= p_live_at)
    and q.ticket_id is distinct from p_ticket and (p_below is null or q.turn < p_below);
  if p_ticket is null then
    return greatest(coalesce(v_head, 1), coalesce(v_last, 0) + 1);
  end if;
  return 1 + greatest(coalesce(v_head, 0), coalesce(v_last, 0));
end
$$;

-- A request's place in the model's queue, among the tickets that wait for what it would (google_ai_waits_alike):
-- none when none does and the request holds no ticket (p_ticket: the ticket it names; only a live one of its
-- caller for the model counts), nor for a null model (the request is blocked already). p_model, p_class and
-- p_caller are the request's model row (limits after the margin: google_ai_request_limits), class row and
-- caller, each whole, as the booking takes them. Answers the class and turn it stands in (its ticket's, the turn
-- moved up as google_ai_next_turn allows; else where a ticket taken now, p_new_ticket, would stand, in
-- p_class), and whether it may ask for a booking now (may_book). It may when nobody else waits, when its
-- p_requests slots (1, or a request's several at its provider, booked at once) are free beyond those of the
-- due tickets ahead (and of every ticket of several requests ahead), or when its own RPM share still has
-- room in a group (the share keeps that slot for it, the spread does not hold it back, and the booking
-- decides exactly); never while a due ticket ahead waits for a limit whose turns go head first
-- (google_ai_queue_turns: 'head').
-- When it may not, blocked_by and cause say why: the limit the window counts (rpm, else tpm), or the
-- one the head-first ticket waits for, and queue_turn when the free slots (or the head's turn) are the
-- turns of the tickets ahead, spread when only the schedule holds one, share_kept when only others'
-- shares keep the window's room from it, else window_full.
CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[],
    p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid,
    OUT rank smallint,
    OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text,
    OUT cause text, OUT turn_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
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
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return; -- (nobody waits for the model, the common case: read without google_ai_waits_alike, 15k less)
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
$$;

-- Why a request was not booked, and its place in line, handed whole from google_ai_admit_at to
-- google_ai_refusal_at and google_ai_queue_wait: the limit and its cause; reopens_at and recheck_at, the
-- booking's answer when booking_tried (it was asked); ticket, turn, since and turn_at, its place
-- (google_ai_queue_place; no ticket: a new one would be new_ticket); period, a budget's when a budget refused.
CREATE TYPE public.google_ai_refusal AS (
    limit_hit text,
    cause text,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    booking_tried boolean,
    ticket uuid,
    turn bigint,
    since timestamp with time zone,
    turn_at timestamp with time zone,
    new_ticket uuid,
    period text
);

COMMENT ON TYPE public.google_ai_refusal IS
    'Why a request was not booked (limit, cause, the booking''s times) and its place in the queue, '
    'handed whole to google_ai_refusal_at and google_ai_queue_wait.';

-- The answer of a request that waits in line, from its ticket as written (p_ticket): its limit, its
-- cause (p_cause), the time of its turn and its place (the ticket, its position, when, its class).
CREATE OR REPLACE FUNCTION public.google_ai_queued_answer(p_ticket public.google_ai_queue, p_cause text,
    p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select jsonb_build_object(
    'ok', false,
    'limit', p_ticket.limit_hit,
    'cause', p_cause,
    'retry_after_ms', public.google_ai_ms_until(p_ticket.expected_at, p_now),
    'retry_at', p_ticket.expected_at,
    'model', p_ticket.model,
    'queue', jsonb_build_object('ticket', p_ticket.ticket_id, 'position', p_ticket."position",
                                'expected_at', p_ticket.expected_at, 'priority', p_ticket.priority_class))
$$;

-- A refused request waits in line (google_ai_admit_at asks when its limit is one a turn can bring and
-- it has wait left): its ticket is taken, or renewed, when its turn is likely within the wait, and
-- answer names it (the queued refusal, without the credential's ids). Otherwise no ticket and a null
-- answer; turn_at, expected and likely_at say when its turn would have been, for the refusal's time.
-- p_limits: the model's row, limits after the margin; p_class: the class the request waits in (its rank
-- the ticket's); p_refusal: why, and its live ticket (none: a new ticket, new_ticket).
CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone,
    p_request public.google_ai_request, p_limits public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb,
    OUT turn_at timestamp with time zone, OUT expected timestamp with time zone,
    OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
  perform public.google_ai_advisory_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
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
      requests, waits_for, reply_by)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name),
      p_request.reply_by)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for, reply_by = excluded.reply_by
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$$;
