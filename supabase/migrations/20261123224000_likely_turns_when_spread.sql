-- A likely turn only on a spread model.
--
-- A lower class takes a ticket only when its turn is likely within its wait (20261123220000). On a
-- model that is not spread, a window's slots reopen at once, to whoever is waiting then; turning
-- batch waiters away by their likely turn left those slots to nobody (63-67% of the saturated spans
-- used in the mixed-load benchmark's "queue only" model). There every waiter counts on every slot,
-- as before (google_ai_queue_turn_at). And a waiter whose chance is the slot a due waiter ahead may
-- leave (its ticket lapsing) is weighed by that chance, not by the next window (google_ai_admit_at).

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the
-- quota groups that may serve the model today: each group offers its free slots now, then one slot
-- as each admission of its window leaves it (admitted_at + window), then the same again a window
-- later; a spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next). free_now counts the slots of each group's first
-- p_slots that are free now. likely_at: the same for a request of class rank p_rank, counting, on a
-- spread model, on the part of each group's slots that the higher classes left in the last window
-- (they will ask again, and go first; at least a tenth): its p_slots-th slot is a group's
-- p_slots / part-th. Null turn_at:
-- no group can serve today (day used up or cooling down everywhere).
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint DEFAULT NULL::smallint, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_spread record;
  v_group record;
  v_expiries timestamptz[];
  v_count integer;
  v_higher integer;
  v_part numeric;
  v_needed integer;
  v_free integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}';
  v_likely timestamptz[] := '{}';
  v_day_left bigint := 0;
  v_n integer;
  v_slot timestamptz;
  v_schedule timestamptz;
begin
  free_now := 0;
  v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, null, 0);
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    select array_agg(a.admitted_at + v_window order by a.admitted_at),
           count(*) filter (where a.class_rank < p_rank)
      into v_expiries, v_higher
    from public.google_ai_admissions a
    where a.quota_group = v_group.quota_group and a.model = p_model and a.admitted_at > p_now - v_window;
    v_count := coalesce(cardinality(v_expiries), 0);
    v_free := greatest(0, p_rpm - v_count);
    -- The group's openings within one window: free now, then as admissions leave.
    v_openings := array_fill(p_now, array[v_free])
                  || coalesce(v_expiries[greatest(1, v_count - p_rpm + 1):v_count], '{}');
    v_n := cardinality(v_openings);
    continue when v_n = 0;
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when v_spread.step is null then 1
                   else greatest(0.1, 1 - coalesce(v_higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots: each opening again a window later, none before the schedule allows.
    v_schedule := v_group.spread_until;
    v_group_slots := '{}';
    for j in 1 .. v_needed loop
      v_slot := v_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * v_window;
      if v_spread.step is not null then
        v_slot := greatest(v_slot, v_schedule - v_spread.tolerance);
        v_schedule := public.google_ai_spread_next(v_schedule, v_slot, v_spread.step);
      end if;
      v_group_slots := v_group_slots || v_slot;
      if j <= p_slots then
        v_slots := v_slots || v_slot;
        if v_slot <= p_now then
          free_now := free_now + 1;
        end if;
      end if;
    end loop;
    for k in 1 .. p_slots loop
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  if free_now >= p_slots then
    turn_at := p_now;
    likely_at := p_now;
    return;
  end if;
  select array_agg(o order by o) into v_slots from unnest(v_slots) o;
  turn_at := greatest(p_now, v_slots[p_slots]);
  select array_agg(o order by o) into v_likely from unnest(v_likely) o;
  likely_at := case when v_likely[p_slots] is not null then greatest(p_now, v_likely[p_slots]) end;
end
$$;

-- The implementation takes a new name (google_ai_admit_at): the earlier migrations, applied again,
-- re-create google_ai_reserve_at with its old arguments, and two overloads that differ only in
-- trailing defaults would make their calls ambiguous. google_ai_reserve_at stays, calling it.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_grace interval;
  v_answer jsonb;
  v_limits record;
  v_group text;
  v_minute timestamptz;
  v_day date;
  v_blocked_by text;
  v_reopens_at timestamptz;
  v_recheck_at timestamptz;
  v_retry_ms bigint;
  v_key record;
  v_reservation_id uuid := gen_random_uuid();
  -- The queue
  v_class text;
  v_rank smallint;
  v_allowed_rank smallint;
  v_ticket public.google_ai_queue;
  v_turn bigint;
  v_since timestamptz;
  v_queued boolean;
  v_ahead integer := 0;
  v_due_ahead integer := 0;
  v_free_now integer;
  v_turn_at timestamptz;
  v_due_lease timestamptz;
  v_may_book boolean := true;
  v_expected timestamptz;
  v_likely_at timestamptz;
  v_quota jsonb;
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_estimated_tokens is null or p_estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_caller is null or length(p_caller) = 0 or p_model is null or length(p_model) = 0 then
    raise exception 'p_caller and p_model are required' using errcode = '22023';
  end if;

  if p_idempotent and p_request_id is not null and p_attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_caller, p_request_id, v_now);
    if v_answer is not null then
      return v_answer;
    end if;
  end if;

  -- The class: the one asked for, never above the credential's.
  v_allowed_rank := coalesce((select pc.rank from public.google_ai_clients c
                              join public.google_ai_priority_classes pc on pc.name = c.priority_class
                              where c.id = p_client_id),
                             (select min(pc.rank) from public.google_ai_priority_classes pc));
  v_rank := v_allowed_rank;
  if p_priority is not null then
    v_rank := greatest(coalesce((select pc.rank from public.google_ai_priority_classes pc where pc.name = p_priority),
                                v_allowed_rank), v_allowed_rank);
  end if;
  select pc.name into v_class from public.google_ai_priority_classes pc where pc.rank = v_rank;

  -- The model and its limits (google_ai_request_limits, read in this one statement).
  select l.model,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd,
         case when l.withdrawn_at is not null then 'withdrawn'
              when public.google_ai_effective_limit(l.tpm, l.safety_margin) < p_estimated_tokens
              then 'too_large' end as blocked_by,
         l.withdrawn_at, l.successor
    into v_limits
  from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1;
  v_blocked_by := case when v_limits.model is null then 'unknown_model' else v_limits.blocked_by end;

  if v_blocked_by is null then
    -- This caller's place: its ticket, or where a ticket taken now would stand.
    if p_queue_ticket is not null then
      select * into v_ticket from public.google_ai_queue q
      where q.ticket_id = p_queue_ticket and q.caller = p_caller and q.model = v_limits.model
        and q.lease_until >= v_now;
    end if;
    v_queued := exists (select 1 from public.google_ai_queue q
                        where q.model = v_limits.model and q.lease_until >= v_now
                          and q.ticket_id is distinct from v_ticket.ticket_id);
    if v_ticket.ticket_id is not null then
      v_rank := v_ticket.class_rank; v_class := v_ticket.priority_class;
      v_since := v_ticket.enqueued_at;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      v_turn := least(v_ticket.turn, 1 + greatest(
        coalesce((select min(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.class_rank = v_rank and q.lease_until >= v_now
                    and q.ticket_id <> v_ticket.ticket_id), 0),
        coalesce((select max(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank
                    and q.lease_until >= v_now and q.ticket_id <> v_ticket.ticket_id and q.turn < v_ticket.turn), 0)));
    elsif v_queued then
      v_turn := 1 + greatest(
        coalesce((select min(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.class_rank = v_rank and q.lease_until >= v_now), 0),
        coalesce((select max(q.turn) from public.google_ai_queue q
                  where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank
                    and q.lease_until >= v_now), 0));
      v_since := v_now;
    end if;

    if v_queued then
      select count(*), count(*) filter (where q.expected_at <= v_now) into v_ahead, v_due_ahead
      from public.google_ai_queue q
      where q.model = v_limits.model and q.lease_until >= v_now
        and q.ticket_id is distinct from v_ticket.ticket_id
        and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
            < (v_rank, v_turn, v_since, coalesce(v_ticket.ticket_id, v_new_ticket));
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd,
        p_exclude_key_ids, v_now, v_ahead + 1) t;
      -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks.
      -- (No turn today anywhere: book_best_group names the reopening.) A request whose own RPM share
      -- still has room in a group asks too: the share keeps that slot for it, the spread does not
      -- hold it back, and the booking decides exactly.
      v_may_book := v_turn_at is null or v_due_ahead < v_free_now
        or exists (select 1 from public.google_ai_quota_shares s
                   left join public.google_ai_share_usage u on u.share_id = s.id
                   where s.model = v_limits.model and s.reserved_rpm is not null
                     and (s.priority_class = v_class or s.caller = p_caller)
                     and coalesce(u.window_requests, 0) < s.reserved_rpm);
    end if;

    if v_may_book and not v_queued then
      -- Nothing but the limits in the way: the fast booking, with the quota it leaves.
      select f.booked_group, f.minute_bucket, f.day_bucket, f.quota into v_group, v_minute, v_day, v_quota
      from public.google_ai_book_fast(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id, p_caller, p_client_id, v_class) f;
    end if;
    if v_may_book and v_group is null then
      select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at, b.recheck_at
        into v_group, v_minute, v_day, v_blocked_by, v_reopens_at, v_recheck_at
      from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id,
        v_class, p_caller, p_client_id, p_attempt) b;
    elsif not v_may_book then
      v_blocked_by := case when v_limits.rpm is not null then 'rpm' else 'tpm' end;
    end if;
  end if;

  if v_group is null then
    if v_blocked_by in ('rpm', 'tpm', 'rpd', 'cooldown', 'pace') and coalesce(p_wait_left_ms, 0) > 0 then
      -- In line. Tickets of a model are taken one at a time, so each one's place and time count every
      -- ticket before it (the lock is the model's and lasts until this call commits; nothing under it
      -- waits for a counter row, so a counter row this call may still hold cannot deadlock with it).
      perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || v_limits.model));
      v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
                 * interval '1 millisecond';
      perform public.google_ai_queue_lapse(v_limits.model, v_now);
      if v_ticket.ticket_id is null then
        v_turn := 1 + greatest(
          coalesce((select min(q.turn) from public.google_ai_queue q
                    where q.model = v_limits.model and q.class_rank = v_rank), 0),
          coalesce((select max(q.turn) from public.google_ai_queue q
                    where q.model = v_limits.model and q.caller = p_caller and q.class_rank = v_rank), 0));
        v_since := v_now;
      end if;
      select count(*), min(q.lease_until) filter (where q.expected_at <= v_now) into v_ahead, v_due_lease
      from public.google_ai_queue q
      where q.model = v_limits.model and q.ticket_id is distinct from v_ticket.ticket_id
        and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
            < (v_rank, v_turn, v_since, coalesce(v_ticket.ticket_id, v_new_ticket));
      select t.free_now, t.turn_at, t.likely_at into v_free_now, v_turn_at, v_likely_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd, p_exclude_key_ids, v_now,
        v_ahead + 1, v_rank) t;
      -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls,
      -- the slot is this one's once its ticket lapses. When the next opening lies beyond this
      -- caller's wait, that is its chance: it asks again then (one call more if the waiter did come).
      if v_free_now > 0 and v_due_lease is not null
         and coalesce(v_turn_at > v_now + p_wait_left_ms * interval '1 millisecond', true) then
        v_turn_at := v_due_lease + interval '1 millisecond';
        v_likely_at := v_turn_at;
      end if;
      -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
      -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and
      -- asking again would not either, so it is answered now rather than given a turn.
      if v_may_book and v_reopens_at is null and v_recheck_at is null then
        v_turn_at := null;
        v_likely_at := null;
      end if;
      -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
      v_expected := greatest(v_turn_at, least(v_reopens_at, v_recheck_at), v_now + interval '50 milliseconds');
      if v_turn_at is null and v_reopens_at is null then
        v_expected := null;
      end if;
      -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
      -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
      -- waiter is still told the earliest time (v_expected), so no slot waits for it.
      if v_expected <= v_now + p_wait_left_ms * interval '1 millisecond'
         and greatest(v_expected, v_likely_at) <= v_now + p_wait_left_ms * interval '1 millisecond' then
        insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
          token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
        values (coalesce(v_ticket.ticket_id, v_new_ticket), v_limits.model, v_class, v_rank, p_caller,
          p_client_id, p_token_id, p_request_id, p_model, v_turn, v_since, p_estimated_tokens, v_blocked_by,
          v_expected, v_expected + v_grace, v_ahead + 1)
        on conflict (ticket_id) do update set
          expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
          position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
        returning * into v_ticket;
        return jsonb_build_object(
          'ok', false,
          'limit', v_blocked_by,
          'retry_after_ms', greatest(0, ceil(extract(epoch from (v_expected - v_now)) * 1000))::bigint,
          'retry_at', v_expected,
          'model', v_limits.model,
          'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                      'expected_at', v_expected, 'priority', v_class));
      end if;
    end if;

    -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
    if v_ticket.ticket_id is not null then
      delete from public.google_ai_queue q where q.ticket_id = v_ticket.ticket_id;
    end if;
    if v_blocked_by in ('rpm', 'tpm') then
      -- Behind a queue, capacity for this caller comes with its turn (the likely one, for a lower class).
      v_reopens_at := coalesce(greatest(v_expected, v_likely_at), greatest(v_turn_at, v_reopens_at));
      if v_recheck_at >= v_reopens_at then
        v_recheck_at := null;
      end if;
    end if;
    v_retry_ms := public.google_ai_record_refusal(v_now, p_caller, p_request_id, p_client_id, p_token_id,
      coalesce(v_limits.model, p_model), p_model, p_attempt, p_estimated_tokens,
      v_blocked_by, v_reopens_at, p_wait_ms, p_metadata);
    return jsonb_build_object(
      'ok', false,
      'limit', v_blocked_by,
      'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at,
      'model', v_limits.model,
      'max_tokens', case when v_limits.blocked_by = 'too_large' then v_limits.tpm end,
      'recheck_after_ms', case when v_recheck_at is not null
                               then greatest(0, ceil(extract(epoch from (v_recheck_at - v_now)) * 1000))::bigint end)
      -- A withdrawn model: when Google said so, and the model it names instead (if a row says).
      || case when v_blocked_by = 'withdrawn'
              then jsonb_build_object('withdrawn_at', v_limits.withdrawn_at, 'successor', v_limits.successor)
              else '{}'::jsonb end;
  end if;

  select * into v_key from public.google_ai_serving_key(v_group, v_limits.model, p_exclude_key_ids);
  if v_key.id is null then
    raise exception 'the keys of quota group % changed during the reservation; retry', v_group
      using errcode = '40001';
  end if;

  if v_ticket.ticket_id is not null then
    delete from public.google_ai_queue q where q.ticket_id = v_ticket.ticket_id;
    -- A request that arrived before the last window says nothing of what its class asks for now: its
    -- admission is left out of what the queue reads as the higher classes' part (likely_at).
    if v_since <= v_now - (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond' then
      update public.google_ai_admissions a set class_rank = null where a.reservation_id = v_reservation_id;
    end if;
  end if;

  if p_idempotent and p_request_id is not null then
    perform public.google_ai_hold_request(p_caller, p_request_id, v_limits.model, v_now);
  end if;

  insert into public.google_ai_attempts (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class)
  values (v_reservation_id, 'reserved', p_request_id, p_caller, p_client_id, p_token_id, v_limits.model,
    p_model, p_attempt, v_key.id, v_key.key_alias, v_group, v_minute, v_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'), v_class);

  v_answer := jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key.id,
    'key_alias', v_key.key_alias,
    'env_var_name', v_key.env_var_name,
    'quota_group', v_group,
    'model', v_limits.model,
    'minute_bucket', v_minute,
    'day_bucket', v_day,
    'priority', v_class);
  if v_quota is not null then
    v_answer := v_answer || jsonb_build_object('quota', v_quota);
  end if;
  return v_answer;
end
$$;
