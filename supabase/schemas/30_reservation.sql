-- The reservation: one round trip that answers "may this request go to Google now, on which key?".
-- One verb per layer, outermost first:
--   reserve    the entry: google_ai_reserve_models (models as an array, a caller or a token hash,
--              the holder's deadlines and id), its clock seam google_ai_reserve_models_at; the older
--              google_ai_reserve, _with_token, _chain, _chain_with_token and google_ai_reserve_at
--              remain thin wrappers over admit for the tests and the bench that call them;
--   admit      the queue-aware decision for one request (idempotency, credential, queue turn), per
--              model of a chain (google_ai_admit_at, google_ai_admit_chain_at);
--   book       pick a quota group and count the request in its windows (google_ai_book_fast, the
--              hot path; google_ai_book_best_group when it does not apply);
--   try_book   one group's windows, under its counter row's lock;
--   settle     give back what an ended attempt did not use (20_windows.sql).
-- Also: the claim of a request id and its holder's deadlines (reply_by, hold_until).
--
-- The functions a request enters through (reserve, admit, and finalize and release in 60_life_cycle.sql)
-- set plan_cache_mode = force_generic_plan for everything they run. Their statements take the clock
-- and the model as parameters; PostgreSQL's default would plan them again on every call (a custom
-- plan for the window's time range looks cheaper than the generic one), which was a quarter of the
-- reservation's CPU. Every statement here finds its rows by key (counter row, model, quota group,
-- ticket), so the generic plan is the one a custom plan would choose.
-- Bodies are checked when called, not when created: a function may name one defined in a later file.
set check_function_bodies = off;

-- The implementation takes a new name (google_ai_admit_at): the earlier migrations, applied again,
-- re-create google_ai_reserve_at with its old arguments, and two overloads that differ only in
-- trailing defaults would make their calls ambiguous. google_ai_reserve_at stays, calling it.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
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
  v_cause text;
  v_spread_bound boolean;
  v_reopens_at timestamptz;
  v_recheck_at timestamptz;
  v_retry_ms bigint;
  v_key_id uuid;
  v_key_alias text;
  v_env_var_name text;
  v_reservation_id uuid := gen_random_uuid();
  -- The queue
  v_class text;
  v_rank smallint;
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

  -- The class: the one asked for, never above the credential's (the client's class, or the top
  -- class for a service caller). One statement: this runs on every request.
  select a.rank, pc.name into v_rank, v_class
  from (select greatest(coalesce((select pc.rank from public.google_ai_priority_classes pc where pc.name = p_priority),
                                 x.allowed), x.allowed) as rank
        from (select coalesce((select pc.rank from public.google_ai_clients c
                               join public.google_ai_priority_classes pc on pc.name = c.priority_class
                               where c.id = p_client_id),
                              (select min(pc.rank) from public.google_ai_priority_classes pc)) as allowed) x) a
  left join public.google_ai_priority_classes pc on pc.rank = a.rank;

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
  -- The row named exactly (its unique index), else the first row with the name as an alias.
  from (select m.* from public.google_ai_model_limits m where m.model = p_model and m.is_active
        union all
        (select m.* from public.google_ai_model_limits m where m.is_active and p_model = any (m.aliases)
         order by m.id limit 1)
        limit 1) l;
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
      select t.free_now, t.turn_at, t.spread_bound into v_free_now, v_turn_at, v_spread_bound
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd,
        p_exclude_key_ids, v_now, v_ahead + 1, v_rank) t;
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
      select f.booked_group, f.minute_bucket, f.day_bucket, f.quota, f.key_id, f.key_alias, f.env_var_name
        into v_group, v_minute, v_day, v_quota, v_key_id, v_key_alias, v_env_var_name
      from public.google_ai_book_fast(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id, p_caller, p_client_id, v_class, v_rank) f;
    end if;
    if v_may_book and v_group is null then
      select b.booked_group, b.minute_bucket, b.day_bucket, b.blocked_by, b.reopens_at, b.recheck_at, b.cause
        into v_group, v_minute, v_day, v_blocked_by, v_reopens_at, v_recheck_at, v_cause
      from public.google_ai_book_best_group(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id,
        v_class, p_caller, p_client_id, p_attempt) b;
    elsif not v_may_book then
      -- Slots free now are the turns of the tickets ahead; none free: the schedule or the window.
      v_blocked_by := case when v_limits.rpm is not null then 'rpm' else 'tpm' end;
      v_cause := case when v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread' else 'window_full' end;
    end if;
  end if;

  if v_group is null then
    v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_blocked_by));
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
          'cause', v_cause,
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
      v_blocked_by, v_reopens_at, p_wait_ms, p_metadata, v_cause);
    return jsonb_build_object(
      'ok', false,
      'limit', v_blocked_by,
      'cause', v_cause,
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

  -- (The fast booking looked the key up before it locked the counter row.)
  if v_key_id is null then
    select k.id, k.key_alias, k.env_var_name into v_key_id, v_key_alias, v_env_var_name
    from public.google_ai_serving_key(v_group, v_limits.model, p_exclude_key_ids) k;
    if v_key_id is null then
      raise exception 'the keys of quota group % changed during the reservation; retry', v_group
        using errcode = '40001';
    end if;
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
    p_model, p_attempt, v_key_id, v_key_alias, v_group, v_minute, v_day, p_estimated_tokens,
    p_wait_ms, coalesce(p_metadata, '{}'), v_class);

  v_answer := jsonb_build_object(
    'ok', true,
    'reservation_id', v_reservation_id,
    'key_id', v_key_id,
    'key_alias', v_key_alias,
    'env_var_name', v_env_var_name,
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

-- p_models: the request's model as the caller named it, then its fallbacks, in order (at most 4).
-- A service caller passes p_caller; a scoped token passes p_token_hash instead (each model is then
-- reserved through google_ai_admit_with_token_at: token, budgets and scope checked under the token's
-- lock, as for one model). Fallbacks the token may not use are left out; the first model is always
-- asked, so a token that may not use it is refused model_not_allowed.
--
-- With p_queue_ticket, the chain starts at the ticket's model: the models before it could not serve
-- within the wait when the ticket was taken, so the ticket's turn is the request's best chance.
--
-- The answer is google_ai_admit_at's, plus:
--   requested_model  the chain's first model (canonical)
--   fallback_from    each model passed over before the one that answered: {model, limit, retry_after_ms}
-- When every model refuses, the refusal whose capacity comes back first is answered (the first
-- model's when none names a time), with fallback_from listing every model tried.
CREATE OR REPLACE FUNCTION public.google_ai_admit_chain_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  -- Refusals that belong to one model: another model may still serve.
  c_model_limits constant text[] := array['rpm', 'tpm', 'rpd', 'cooldown', 'pace', 'no_active_key', 'too_large', 'unknown_model',
                                          'withdrawn'];
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_names text[] := '{}';     -- as asked (the first as the caller wrote it)
  v_models text[] := '{}';    -- canonical
  v_retired boolean[] := '{}';
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_caller text := p_caller;
  v_client_id uuid;
  v_token_id uuid;
  v_start integer := 1;
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]';   -- every model's refusal, in order
  v_steps jsonb := '[]';      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;

  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, v_token_id, v_client_id, v_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;

  foreach v_name in array p_models loop
    v_row := public.google_ai_model_by_name(v_name);
    continue when coalesce(v_row.model, v_name) = any (v_models);
    -- A token falls back only to models it may use (its first model is asked regardless and refused).
    continue when cardinality(v_models) > 0 and p_token_hash is not null
                  and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
    v_names := v_names || v_name;
    v_models := v_models || coalesce(v_row.model, v_name);
    v_retired := v_retired || (v_row.id is not null
                               and (not v_row.is_active or public.google_ai_model_unlisted(v_row.model)));
  end loop;
  -- When every model is retired the catalogue may be the one that is wrong: ask them in order.
  if not (false = any (v_retired)) then
    v_retired := array_fill(false, array[cardinality(v_models)]);
  end if;

  if p_queue_ticket is not null then
    v_start := coalesce(array_position(v_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;

  for i in v_start .. cardinality(v_models) loop
    if v_retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_models[i]);
    else
      begin
        if p_token_hash is null then
          v_try := public.google_ai_admit_at(p_now => p_now, p_model => v_names[i],
            p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
            p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
            p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
            p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
        else
          v_try := public.google_ai_admit_with_token_at(p_now => p_now, p_token_hash => p_token_hash,
            p_model => v_names[i], p_estimated_tokens => p_estimated_tokens, p_request_id => p_request_id,
            p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
            p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
            p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
        end if;
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and (v_try ->> 'limit') = any (c_model_limits) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_queue_ticket is not null then
      delete from public.google_ai_queue q where q.ticket_id = p_queue_ticket and q.model = v_models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, coalesce(v_caller, 'token'), v_client_id, v_token_id, v_models[i], p_models[1],
      p_attempt, p_estimated_tokens, v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint,
      p_wait_ms, coalesce(p_metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_models[1], 'fallback_from', v_steps);
end
$$;

-- Reserving with a token: token and client checked and booked with the quota (all or
-- nothing); the client's class bounds the request's (google_ai_admit_at reads it). A queued
-- refusal books no budget: the budget is booked when the request is admitted.
CREATE OR REPLACE FUNCTION public.google_ai_admit_with_token_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_refusal text;
  v_retry_at timestamptz;
  v_count_request integer := case when coalesce(p_attempt, 1) = 1 then 1 else 0 end;
  v_requests_today integer;
  v_tokens_today integer;
  v_result jsonb;
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash for update;
  if not found then
    return jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid', 'retry_after_ms', null);
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  v_model := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_requests_today := case when v_client.day_bucket = v_day then v_client.requests_today else 0 end;
  v_tokens_today := case when v_client.day_bucket = v_day then v_client.tokens_today else 0 end;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_refusal := 'token_revoked';
  elsif v_token.expires_at <= v_now then
    v_refusal := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_refusal := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null and v_token.tokens_used + p_estimated_tokens > v_token.max_tokens) then
    v_refusal := 'token_budget';
  elsif (v_client.daily_max_requests is not null and v_requests_today + v_count_request > v_client.daily_max_requests)
     or (v_client.daily_max_tokens is not null and v_tokens_today + p_estimated_tokens > v_client.daily_max_tokens) then
    v_refusal := 'client_budget';
    v_retry_at := public.google_ai_pacific_midnight_after(v_now);
  end if;

  if v_refusal is not null then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, 'client:' || v_client.name, v_client.id, v_token.id, v_model, p_model,
      coalesce(p_attempt, 1), p_estimated_tokens, v_refusal, public.google_ai_refusal_cause(v_refusal),
      ceil(extract(epoch from (v_retry_at - v_now)) * 1000)::bigint, p_wait_ms, coalesce(p_metadata, '{}'));
    return jsonb_build_object('ok', false, 'limit', v_refusal, 'cause', public.google_ai_refusal_cause(v_refusal),
      'retry_after_ms', ceil(extract(epoch from (v_retry_at - v_now)) * 1000)::bigint, 'retry_at', v_retry_at,
      'client_id', v_client.id, 'token_id', v_token.id);
  end if;

  v_result := public.google_ai_admit_at(p_now, p_model, p_estimated_tokens, 'client:' || v_client.name,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, v_client.id, v_token.id, p_idempotent,
    p_priority, p_queue_ticket, p_wait_left_ms);

  if (v_result ->> 'ok')::boolean then
    update public.google_ai_tokens t set
      requests_used = t.requests_used + v_count_request,
      tokens_used = t.tokens_used + p_estimated_tokens,
      last_used_at = v_now
    where t.id = v_token.id;
    update public.google_ai_clients c set
      day_bucket = v_day,
      requests_today = v_requests_today + v_count_request,
      tokens_today = v_tokens_today + p_estimated_tokens
    where c.id = v_client.id;
  end if;
  return v_result || jsonb_build_object('client_id', v_client.id, 'token_id', v_token.id);
end
$$;

-- The attempt row takes the holder's times and identity out of its metadata: the row keeps them; a
-- claim just taken (no holder yet) becomes the admitted invocation's, with its hold_until; a claim its
-- holder still holds is renewed by its holder's statements only, never shortened. A claim nobody
-- holds any more is not revived: a repeat may take it over.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
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
$_$;

-- At commit: a reservation or refusal whose holder stopped waiting is rolled back with everything its
-- statement did (a refusal renews its holder's claim). 57014 (query_canceled) is what a statement
-- timeout raises: the function answers it 503.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_reply_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception '% of request % reached its commit after its caller stopped waiting (%); rolled back',
      coalesce('reservation ' || new.reservation_id::text, 'refusal'), new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time). Groups cooling down are skipped.
-- Within a priority tier a group whose row another reservation holds is passed over (SKIP LOCKED)
-- so concurrent callers spread across groups; before moving to a lower tier the passed-over groups
-- are tried again, waiting for their locks, so a busy row is never mistaken for a full one.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model.
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, p_client_id uuid, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_candidate record;
  v_tier integer;
  v_first boolean := true;
  v_skipped text[] := '{}';
  v_outcome text;
  v_cause text;
  v_try record;
  v_wait record;
  v_at timestamptz;
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_budget public.google_ai_caller_budgets;
  v_budget_day date := public.google_ai_pacific_day(p_at);
  v_count_request integer := case when coalesce(p_attempt, 1) = 1 then 1 else 0 end;
  v_requests_today integer;
  v_tokens_today bigint;
begin
  if p_client_id is null and p_caller is not null then
    select * into v_budget from public.google_ai_caller_budgets b where b.caller = p_caller for update;
    if found then
      v_requests_today := case when v_budget.day_bucket = v_budget_day then v_budget.requests_today else 0 end;
      v_tokens_today := case when v_budget.day_bucket = v_budget_day then v_budget.tokens_today else 0 end;
      if (v_budget.daily_max_requests is not null and v_requests_today + v_count_request > v_budget.daily_max_requests)
         or (v_budget.daily_max_tokens is not null and v_tokens_today + p_tokens > v_budget.daily_max_tokens) then
        blocked_by := 'caller_budget';
        cause := 'budget';
        reopens_at := public.google_ai_pacific_midnight_after(p_at);
        return;
      end if;
    end if;
  end if;

  <<booking>>
  begin
    for v_candidate in
      select * from public.google_ai_ranked_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) c
      order by c.rank
    loop
      if not v_first and v_candidate.priority is distinct from v_tier and cardinality(v_skipped) > 0 then
        select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
          p_reservation_id, p_class, p_caller);
        if v_wait.booked_group is not null then
          booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
          exit booking;
        end if;
        if reopens_at is null or v_wait.reopens_at < reopens_at then
          reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by; cause := v_wait.cause;
        end if;
        recheck_at := least(recheck_at, v_wait.recheck_at);
        v_skipped := '{}';
      end if;
      v_first := false;
      v_tier := v_candidate.priority;

      v_cause := null;
      if v_candidate.cooldown_until is not null then
        v_outcome := 'cooldown';
        v_at := v_candidate.cooldown_until;
      elsif p_rpd is not null and v_candidate.rpd_used + 1 > p_rpd then
        v_outcome := 'rpd';
        v_at := public.google_ai_reopens_at('rpd', p_at);
      elsif p_rpm is not null and v_candidate.rpm_used + 1 > p_rpm then
        -- Full for everyone; for a requester that others' shares keep slots from, it reopens later.
        v_outcome := 'rpm';
        v_at := public.google_ai_window_reopens_for(v_candidate.quota_group, p_model, p_at, v_window, p_rpm, p_tpm,
          p_tokens, p_class, p_caller);
      else
        -- TPM, shares and pacing are decided under the lock.
        select * into v_try from public.google_ai_try_book(v_candidate.quota_group, p_model,
          p_rpm, p_tpm, p_rpd, p_tokens, p_now, true, p_reservation_id, p_class, p_caller);
        v_outcome := v_try.outcome;
        if v_outcome = 'booked' then
          booked_group := v_candidate.quota_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
          exit booking;
        end if;
        v_at := v_try.reopens_at;
        v_cause := v_try.cause;
        recheck_at := least(recheck_at, v_try.recheck_at);
      end if;

      if v_outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
      elsif reopens_at is null or v_at < reopens_at then
        reopens_at := v_at; blocked_by := v_outcome;
        cause := coalesce(v_cause, public.google_ai_refusal_cause(v_outcome));
      end if;
    end loop;

    if cardinality(v_skipped) > 0 then
      select * into v_wait from public.google_ai_book_waiting(v_skipped, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now,
        p_reservation_id, p_class, p_caller);
      if v_wait.booked_group is not null then
        booked_group := v_wait.booked_group; minute_bucket := v_wait.minute_bucket; day_bucket := v_wait.day_bucket;
        exit booking;
      elsif reopens_at is null or v_wait.reopens_at < reopens_at then
        reopens_at := v_wait.reopens_at; blocked_by := v_wait.blocked_by; cause := v_wait.cause;
      end if;
      recheck_at := least(recheck_at, v_wait.recheck_at);
    end if;
  end;

  if booked_group is not null then
    blocked_by := null; reopens_at := null; recheck_at := null; cause := null;
    if v_budget.caller is not null then
      update public.google_ai_caller_budgets b set
        day_bucket = v_budget_day,
        requests_today = v_requests_today + v_count_request,
        tokens_today = v_tokens_today + p_tokens
      where b.caller = v_budget.caller;
    end if;
    return;
  end if;

  if v_first then
    blocked_by := 'no_active_key';
  end if;
  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  if recheck_at >= reopens_at then
    recheck_at := null;
  end if;
end
$$;

-- Most admissions meet nothing but the limits and the shares: nobody is queued for the model, no
-- share of it paces its owner's day, the caller has no daily budget, the best group is not cooling
-- down, its counter row is of today (and, with other groups to try, of a settled window), and
-- Pacific midnight is not within the day guard. For them this books on the best candidate group in a few statements, under the same
-- counter-row lock and with the same arithmetic as google_ai_try_book (what the others' shares keep
-- from the requester, its own shares' use, the spread's schedule), and answers with the quota the
-- booking leaves, so the answer needs no second reading of the window, and the key that serves the
-- group (p_rank: the class's rank, recorded on the admission for the queue's likely turns).
-- Whenever anything else could matter it books nothing and returns no group: the general booking
-- (google_ai_book_best_group) decides, and names the time of a refusal.
--
-- Exactness does not depend on the unlocked look taken when there are other groups (it only chooses
-- the path): the decision is taken on the counter row locked here. A row another transaction holds
-- is waited for when its group is the only candidate, else left to the general path (which tries the
-- others first, as it always did). The unlocked look counts what the shares keep from the requester
-- too: a row locked here stays locked until commit, and the general booking that follows when the
-- locked look finds no room may wait for another group's row (two requests, each holding a full
-- group's row and waiting for the other's, would deadlock). If the locked look finds no room after
-- all, the expired admissions it removed are taken off the row's sums (as the general try would)
-- before it leaves.
CREATE OR REPLACE FUNCTION public.google_ai_book_fast(p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_reservation_id uuid, p_caller text, p_client_id uuid, p_class text DEFAULT NULL::text, p_rank smallint DEFAULT NULL::smallint, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_group text;
  v_groups bigint;
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_midnight timestamptz;
  v_gone_requests integer;
  v_gone_tokens bigint;
  v_win_requests integer;
  v_win_tokens bigint;
  v_oldest timestamptz;
  v_oldest_tokens timestamptz;
  v_shared boolean;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_owned bigint[];
  v_in_share boolean := false;
  v_spread record;
  v_fits boolean;
  v_paced boolean;
  v_kept jsonb;
  -- The key that serves the group (its best, as google_ai_serving_key names it).
  v_key_id uuid;
  v_key_alias text;
  v_env_var_name text;
begin
  -- Paced shares and a service caller's budget are the general booking's; whether the model has
  -- shares at all decides whether they are read under the lock.
  select coalesce(bool_or(s.pace_burst is not null), false), count(*) > 0 into v_paced, v_shared
  from public.google_ai_quota_shares s where s.model = p_model;
  if v_paced or (p_client_id is null and exists (select 1 from public.google_ai_caller_budgets b where b.caller = p_caller)) then
    return;
  end if;

  -- The group the general booking would try first, and an unlocked look at its row.
  select c.quota_group, c.groups, c.key_id, c.key_alias, c.env_var_name
    into v_group, v_groups, v_key_id, v_key_alias, v_env_var_name
  from (select g.*, count(*) over () as groups
        from public.google_ai_ranked_groups(p_model, p_exclude_key_ids, p_rpm, p_tpm, p_rpd, p_at) g) c
  where c.cooldown_until is null
    and c.rank = 1;
  if v_group is null then
    return;
  end if;
  -- What does not depend on the counter row is read before its lock, which is held until commit: the
  -- key that serves the group (above) and the spread's step.
  v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, p_tpm, p_tokens);
  -- With other groups to try, a row another transaction holds is left to the general booking (which
  -- tries the others first), and so is one the unlocked look finds full; the only group is waited
  -- for, as the general booking would, and looked at under its lock only.
  if v_groups > 1 then
    select * into v_row from public.google_ai_usage_counters c where c.quota_group = v_group and c.model = p_model;
    if not found or v_row.window_at is null then
      return;
    end if;
    if v_shared then
      v_day := public.google_ai_pacific_day(greatest(p_at, v_row.window_at));
      select coalesce(sum(greatest(0, coalesce(s.reserved_rpm, 0) - coalesce(u.window_requests, 0))), 0),
             coalesce(sum(greatest(0, coalesce(s.reserved_rpd, 0)
                                      - case when u.day_bucket = v_day then u.day_used
                                             when u.day_bucket = v_day - 1 then u.day_next_used else 0 end)), 0)
        into v_held_rpm, v_held_rpd
      from public.google_ai_quota_shares s
      left join public.google_ai_share_usage u on u.quota_group = v_group and u.share_id = s.id
      where s.model = p_model
        and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
    end if;
    if not public.google_ai_fast_fits(v_row, v_row.window_requests + v_held_rpm, v_row.window_tokens, p_rpm, p_tpm,
                                      p_rpd - v_held_rpd, p_tokens, greatest(p_at, v_row.window_at), v_day_guard) then
      return;
    end if;
    select * into v_row from public.google_ai_usage_counters c
    where c.quota_group = v_group and c.model = p_model
    for update skip locked;
  else
    select * into v_row from public.google_ai_usage_counters c
    where c.quota_group = v_group and c.model = p_model
    for update;
  end if;
  if not found or v_row.window_at is null then
    return;
  end if;

  v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
  v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
  v_day := public.google_ai_pacific_day(v_now);
  v_midnight := public.google_ai_pacific_midnight_after(v_now);

  -- The admissions that left the window since the last removal (window_floor, below).
  with gone as (
    delete from public.google_ai_admissions a
    where a.quota_group = v_group and a.model = p_model
      and a.admitted_at > coalesce(v_row.window_floor, '-infinity') and a.admitted_at <= v_now - v_window
    returning a.tokens, a.share_ids),
  owners_back as (
    update public.google_ai_share_usage u set window_requests = greatest(0, u.window_requests - b.n)
    from (select s.id, count(*)::integer as n from gone g cross join unnest(g.share_ids) as s(id) group by s.id) b
    where u.quota_group = v_group and u.share_id = b.id)
  select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
  v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
  v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);

  -- The model's shares in this group (their use is written under the lock held here): what the
  -- others' keep from the requester, and the requester's own.
  if v_shared then
    -- (kept: what the shares keep for the admitted class, as google_ai_quota_kept(p_model, p_rpm,
    -- p_rpd, p_class, null) reads it for the answer's quota; read here in the same pass.)
    select coalesce(sum(greatest(0, coalesce(x.reserved_rpm, 0) - x.win)) filter (where not x.owned), 0),
           coalesce(sum(greatest(0, coalesce(x.reserved_rpd, 0) - x.day_used)) filter (where not x.owned), 0),
           array_agg(x.id order by x.id) filter (where x.owned),
           coalesce(bool_or(x.owned and x.win < coalesce(x.reserved_rpm, 0)), false),
           case when p_class is not null then jsonb_build_object(
             'rpm_for_others', case when p_rpm is not null
                                    then least(p_rpm, coalesce(sum(x.reserved_rpm) filter (where not x.for_class), 0)) end,
             'rpm_for_you', case when p_rpm is not null
                                 then least(p_rpm, coalesce(sum(x.reserved_rpm) filter (where x.for_class), 0)) end,
             'rpd_for_others', case when p_rpd is not null
                                    then least(p_rpd, coalesce(sum(x.reserved_rpd) filter (where not x.for_class), 0)) end,
             'rpd_for_you', case when p_rpd is not null
                                 then least(p_rpd, coalesce(sum(x.reserved_rpd) filter (where x.for_class), 0)) end) end
      into v_held_rpm, v_held_rpd, v_owned, v_in_share, v_kept
    from (select s.id, s.reserved_rpm, s.reserved_rpd,
                 coalesce(s.priority_class = p_class, false) as for_class,
                 coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
                 coalesce(u.window_requests, 0) as win,
                 case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end as day_used
          from public.google_ai_quota_shares s
          left join public.google_ai_share_usage u on u.quota_group = v_group and u.share_id = s.id
          where s.model = p_model) x;
  end if;

  -- Its place in the schedule holds it back only as google_ai_spread_holds says; its own share lets
  -- it past the schedule too.
  v_fits := public.google_ai_fast_fits(v_row, v_win_requests + v_held_rpm, v_win_tokens, p_rpm, p_tpm,
                                       p_rpd - v_held_rpd, p_tokens, v_now, v_day_guard)
            and (v_spread.step is null or v_in_share or v_row.spread_until - v_spread.tolerance <= v_now
                 or not public.google_ai_spread_holds(p_model, p_rank, v_now));
  if not v_fits then
    update public.google_ai_usage_counters c set window_requests = v_win_requests, window_tokens = v_win_tokens,
      window_floor = greatest(c.window_floor, v_now - v_window)
    where c.id = v_row.id;
    return;
  end if;

  insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard, share_ids,
    class_rank)
  values (p_reservation_id, v_group, p_model, v_now, p_tokens, 0, v_owned, p_rank);

  if v_owned is not null then
    -- The owners' use, rolled to today as try_book rolls it (the day guard is not near here).
    insert into public.google_ai_share_usage as u (quota_group, share_id, window_requests, day_bucket, day_used,
      day_next_used, day_prev_used)
    select v_group, o.id, 1, v_day, 1, 0, 0 from unnest(v_owned) as o(id)
    on conflict (quota_group, share_id) do update set
      window_requests = u.window_requests + 1,
      day_used = case when u.day_bucket = v_day then u.day_used
                      when u.day_bucket = v_day - 1 then u.day_next_used else 0 end + 1,
      day_next_used = case when u.day_bucket = v_day then u.day_next_used else 0 end,
      day_prev_used = case when u.day_bucket = v_day then u.day_prev_used
                           when u.day_bucket = v_day - 1 then u.day_used else 0 end,
      day_bucket = v_day;
  end if;

  update public.google_ai_usage_counters c set
    minute_bucket   = v_minute,
    day_bucket      = v_day,
    rpm_used        = case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end + 1,
    tpm_used        = case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end + p_tokens,
    rpd_used        = v_row.rpd_used + 1,
    window_requests = v_win_requests + 1,
    window_tokens   = v_win_tokens + p_tokens,
    window_at       = v_now,
    window_floor    = greatest(v_row.window_floor, v_now - v_window),
    spread_until    = public.google_ai_spread_next(v_row.spread_until, v_now, v_spread.step),
    updated_at      = v_now
  where c.id = v_row.id;

  booked_group := v_group;
  minute_bucket := v_minute;
  day_bucket := v_day;
  key_id := v_key_id;
  key_alias := v_key_alias;
  env_var_name := v_env_var_name;

  -- What the booking leaves, as google_ai_group_quota reads it (this request counted): the next
  -- to leave the window are its oldest admissions (this one at the latest).
  select a.admitted_at into v_oldest from public.google_ai_admissions a
  where a.quota_group = v_group and a.model = p_model and a.admitted_at > v_now - v_window
  order by a.admitted_at limit 1;
  if p_tpm is not null then
    select a.admitted_at into v_oldest_tokens from public.google_ai_admissions a
    where a.quota_group = v_group and a.model = p_model and a.admitted_at > v_now - v_window and a.tokens > 0
    order by a.admitted_at limit 1;
  end if;
  quota := jsonb_build_object(
    'model', p_model,
    'quota_group', v_group,
    'rpm', p_rpm,
    'requests_left', case when p_rpm is not null then greatest(0, p_rpm - (v_win_requests + 1)) end,
    'requests_reset_ms', case when p_rpm is not null
                              then public.google_ai_ms_until(coalesce(v_oldest + v_window, v_now), v_now) end,
    'tpm', p_tpm,
    'tokens_left', case when p_tpm is not null then greatest(0, p_tpm - (v_win_tokens + p_tokens)) end,
    'tokens_reset_ms', case when p_tpm is not null
                            then public.google_ai_ms_until(coalesce(v_oldest_tokens + v_window, v_now), v_now) end,
    'rpd', p_rpd,
    'day_left', case when p_rpd is not null then greatest(0, p_rpd - (v_row.rpd_used + 1)) end,
    'day_reset_ms', case when p_rpd is not null
                         then public.google_ai_ms_until(v_midnight + v_day_guard, v_now) end)
    -- What the model's shares keep, for the admitted class (as google_ai_answer_quota_at adds it).
    || case when v_kept is not null then jsonb_build_object('kept', v_kept) else '{}'::jsonb end;
end
$$;

-- Books on the first of p_groups that fits, waiting for each row lock in turn (holding no other
-- counter lock while it waits). Reports the earliest reopening among the full ones.
CREATE OR REPLACE FUNCTION public.google_ai_book_waiting(p_groups text[], p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_reservation_id uuid, p_class text, p_caller text, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_group text;
  v_try record;
begin
  foreach v_group in array p_groups loop
    select * into v_try from public.google_ai_try_book(v_group, p_model, p_rpm, p_tpm, p_rpd, p_tokens, p_now, false,
      p_reservation_id, p_class, p_caller);
    if v_try.outcome = 'booked' then
      booked_group := v_group; minute_bucket := v_try.minute_bucket; day_bucket := v_try.day_bucket;
      return;
    end if;
    if reopens_at is null or v_try.reopens_at < reopens_at then
      reopens_at := v_try.reopens_at; blocked_by := v_try.outcome; cause := v_try.cause;
    end if;
    if v_try.recheck_at is not null and (recheck_at is null or v_try.recheck_at < recheck_at) then
      recheck_at := v_try.recheck_at;
    end if;
  end loop;
end
$$;

-- The quota groups that may serve p_model (through an active key the caller did not exclude), one
-- row each: the priority of its best key, the cooldown in force at p_now and what it used in the
-- current minute and Pacific day (an unlocked read), ranked in the order the reservation tries
-- them: priority (lower first), then headroom (the smallest remaining fraction of RPM, TPM and
-- RPD, largest first), then name. Each row names the key that serves its group, as
-- google_ai_serving_key would (the best active key for the model, by priority, then alias), so the
-- fast booking needs no second look at the keys.
CREATE OR REPLACE FUNCTION public.google_ai_ranked_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone) RETURNS TABLE(quota_group text, priority integer, cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, rank bigint, key_id uuid, key_alias text, env_var_name text)
    LANGUAGE sql STABLE
    AS $$
  with keys as (
    select distinct on (public.google_ai_quota_group(k.project_id, k.id))
           public.google_ai_quota_group(k.project_id, k.id) as quota_group,
           k.priority, k.id as key_id, k.key_alias, k.env_var_name
    from public.google_ai_api_keys k
    where k.is_active
      and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
      and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
    order by public.google_ai_quota_group(k.project_id, k.id), k.priority nulls last, k.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join public.google_ai_cooldowns cd
      on cd.quota_group operator(pg_catalog.=) g.quota_group and cd.model operator(pg_catalog.=) p_model
         and cd.cooldown_until operator(pg_catalog.>) p_now
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         row_number() over (
           order by u.priority nulls last,
                    least(coalesce(1 operator(pg_catalog.-) u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0), 1),
                          coalesce(1 operator(pg_catalog.-) u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0), 1),
                          coalesce(1 operator(pg_catalog.-) u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0), 1)) desc,
                    u.quota_group),
         u.key_id, u.key_alias, u.env_var_name
  from usage u
$$;

-- Until when a request's in-flight claim is held at p_now: its lease, or a live ticket of the request
-- in the admission queue (its holder is waiting for its turn). Null: nobody holds it.
CREATE OR REPLACE FUNCTION public.google_ai_claim_held_until(p_caller text, p_request_id text, p_expires_at timestamp with time zone, p_now timestamp with time zone) RETURNS timestamp with time zone
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

-- Whether one more request of p_tokens fits a counter row of today, away from the day guard, with
-- the window's sums given: the checks of google_ai_try_book when no share or pacing applies.
CREATE OR REPLACE FUNCTION public.google_ai_fast_fits(p_row public.google_ai_usage_counters, p_win_requests integer, p_win_tokens bigint, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_day_guard interval) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select p_row.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
     and p_now operator(pg_catalog.<) (public.google_ai_pacific_midnight_after(p_now) operator(pg_catalog.-) p_day_guard)
     and p_now operator(pg_catalog.>=) (public.google_ai_pacific_start(public.google_ai_pacific_day(p_now))
                                        operator(pg_catalog.+) p_day_guard)
     and (p_rpd is null or (p_row.rpd_used operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpd)
     and (p_rpm is null or (p_win_requests operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpm)
     and (p_tpm is null or (p_win_tokens operator(pg_catalog.+) p_tokens) operator(pg_catalog.<=) p_tpm)
$$;

-- One time of a '$holder' (null when absent); anything but an ISO timestamp is a clear 22023.
CREATE OR REPLACE FUNCTION public.google_ai_holder_time(p_holder jsonb, p_key text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
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
CREATE OR REPLACE FUNCTION public.google_ai_holder_id(p_holder jsonb) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
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

-- The statement's reply_by for rows that do not carry it (a queue ticket): the reservation entry
-- passes its metadata through this, which notes '$holder'.reply_by for the transaction
-- (google_ai_queue_reply_check reads it) and returns the metadata unchanged. Owner only.
CREATE OR REPLACE FUNCTION public.google_ai_statement_holder(p_metadata jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_reply_by timestamptz :=
    case when pg_catalog.jsonb_typeof(p_metadata -> '$holder') = 'object'
         then public.google_ai_holder_time(p_metadata -> '$holder', 'reply_by') end;
begin
  perform pg_catalog.set_config('google_ai.reply_by', coalesce(v_reply_by::text, ''), true);
  return p_metadata;
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
-- taken (or taken over) names no holder until its taker's attempt row, in the same statement, makes
-- it the taker's (google_ai_attempt_holder).
CREATE OR REPLACE FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, p_now + interval '7 minutes', null)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = null
$$;

-- For a request the caller named with its own request_id: the answer to give instead of reserving,
-- or null to go on. A request id this caller completed within 24 hours is answered from the stored
-- response; one whose earlier call still holds its lease (in flight, or between attempts) is refused
-- as in_progress. The advisory lock serialises concurrent duplicates until the first one's marker
-- (google_ai_hold_request, in the same transaction) is committed.
CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
      'retry_after_ms', null, 'retry_at', null);
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      return jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
        'retry_after_ms', greatest(1000, ceil(extract(epoch from (v_held_until - p_now)) * 1000))::bigint,
        'retry_at', v_held_until);
    end if;
  end if;
  return null;
end
$$;

-- A refusal in the attempt log; returns the milliseconds until p_retry_at (null: none known). One
-- refused row per request and attempt, not one per poll: a WAIT caller asking again (it has waited,
-- so p_wait_ms > 0) updates the row its first refusal wrote during this wait.
CREATE OR REPLACE FUNCTION public.google_ai_record_refusal(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_limit text, p_retry_at timestamp with time zone, p_wait_ms integer, p_metadata jsonb, p_cause text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_retry_ms bigint := case when p_retry_at is null then null
                            else greatest(0, ceil(extract(epoch from (p_retry_at - p_now)) * 1000))::bigint end;
  v_cause text := coalesce(p_cause, public.google_ai_refusal_cause(p_limit));
begin
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, refusal_cause = v_cause, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  if coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, p_model, p_requested_model,
      p_attempt, p_estimated_tokens, p_limit, v_cause, v_retry_ms, p_wait_ms, coalesce(p_metadata, '{}'));
  end if;
  return v_retry_ms;
end
$$;

-- The model a request names and the limits it is held to (after the safety margin). blocked_by says
-- why no group can take it at all: unknown_model, or too_large (more tokens than a minute allows).
CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text, p_estimated_tokens integer, OUT model text, OUT rpm integer, OUT tpm integer, OUT rpd integer, OUT blocked_by text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_model public.google_ai_model_limits := public.google_ai_resolve_model(p_model);
begin
  if v_model.id is null then
    blocked_by := 'unknown_model';
    return;
  end if;
  model := v_model.model;
  rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  tpm := public.google_ai_effective_limit(v_model.tpm, v_model.safety_margin);
  rpd := public.google_ai_effective_limit(v_model.rpd, v_model.safety_margin);
  if tpm is not null and p_estimated_tokens > tpm then
    blocked_by := 'too_large';
  end if;
end
$$;

-- The RPCs llm-invoke calls, as in the files that created them, in PL/pgSQL: a SQL-language
-- function with a SET clause parses and plans its one statement on every call.
CREATE OR REPLACE FUNCTION public.google_ai_reserve(p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_admit_at(null, p_model, p_estimated_tokens, p_caller, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, null, null, p_idempotent,
    p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

-- The reservation RPC with an injectable clock (p_now null: the database clock). Tests cross
-- minute and day boundaries with it; the gateway calls google_ai_reserve below. One call does it
-- all, in one transaction: the idempotency answer, the model's limits, the booking on the best
-- quota group, the serving key, the idempotency marker and the attempt row — or the refusal.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select public.google_ai_admit_at(p_now, p_model, p_estimated_tokens, p_caller, p_request_id, p_exclude_key_ids,
    p_attempt, p_wait_ms, p_metadata, p_client_id, p_token_id, p_idempotent, null, null, null)
$$;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_chain(p_models text[], p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, p_caller, null, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_chain_with_token(p_token_hash text, p_models text[], p_estimated_tokens integer, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_admit_chain_at(null, p_models, p_estimated_tokens, null, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

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
    SET plan_cache_mode TO 'force_generic_plan'
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

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock. (PL/pgSQL, not
-- SQL: a SQL function with SET clauses is planned again on every call; this keeps its plan.)
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_reserve_models_at(null, p_models, p_estimated_tokens, p_caller, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms,
    p_reply_by, p_hold_until, p_holder);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_with_token(p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_admit_with_token_at(null, p_token_hash, p_model, p_estimated_tokens, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms);
end
$$;

-- The key that serves a booked group: the group's best active key for the model that the caller
-- did not exclude (all nulls when there is none).
CREATE OR REPLACE FUNCTION public.google_ai_serving_key(p_quota_group text, p_model text, p_exclude_key_ids uuid[], OUT id uuid, OUT key_alias text, OUT env_var_name text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  select k.id, k.key_alias, k.env_var_name into id, key_alias, env_var_name
  from public.google_ai_api_keys k
  where k.is_active
    and public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
    and (k.models is null or p_model = any (k.models))
    and not (k.id = any (coalesce(p_exclude_key_ids, '{}')))
  order by k.priority nulls last, k.key_alias
  limit 1;
end
$$;

-- One try at booking a request on a quota group's counter row. Returns 'booked', 'skipped' (row
-- locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd', 'rpm', 'tpm'.
-- The subtransaction (begin ... exception) gives the row lock back when the row is full, so the
-- caller can move on to the next group without holding it.
CREATE OR REPLACE FUNCTION public.google_ai_try_book(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_reservation_id uuid DEFAULT NULL::uuid, p_class text DEFAULT NULL::text, p_caller text DEFAULT NULL::text, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_midnight timestamptz;
  v_day_start timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_rpm_used integer;
  v_tpm_used integer;
  v_rpd_used integer;
  v_rpd_next integer;
  v_rpd_prev integer;
  v_gone_requests integer;
  v_gone_tokens bigint;
  v_win_requests integer;
  v_win_tokens bigint;
  -- Shares
  v_share record;
  v_used integer;
  v_next integer;
  v_prev integer;
  v_reserved_rpd integer := 0;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_held_next integer := 0;
  v_held_prev integer := 0;
  v_owned bigint[] := '{}';
  v_owned_win integer[] := '{}';
  v_owned_used integer[] := '{}';
  v_owned_next integer[] := '{}';
  v_owned_prev integer[] := '{}';
  v_pace_burst integer[] := '{}';
  v_pace_kept integer[] := '{}';
  v_pace_used integer[] := '{}';
  v_pace_next integer[] := '{}';
  v_usable integer;
  v_pace_at timestamptz;
  v_at timestamptz;
  v_window_full boolean;
  -- The spread of the window (google_ai_spread_step): the schedule's step and tolerance for this request
  v_spread record;
  v_in_share boolean := false;
  v_spread_at timestamptz;
begin
  begin
    for i in 1 .. 2 loop
      if p_skip_locked then
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update skip locked;
      else
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update;
      end if;
      exit when found;
      if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                   where c.quota_group = p_quota_group and c.model = p_model) then
        outcome := 'skipped';
        return;
      end if;
      insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
      values (p_quota_group, p_model, 0, 0, 0)
      on conflict (quota_group, model) where quota_group is not null do nothing;
    end loop;
    if v_row.id is null then
      raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
    end if;

    -- Decide with the time at which we hold the lock, and never move a window backwards.
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_rpm_used := case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end;
    v_tpm_used := case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end;
    if v_row.day_bucket = v_day then
      v_rpd_used := v_row.rpd_used; v_rpd_next := v_row.rpd_next_used; v_rpd_prev := v_row.rpd_prev_used;
    elsif v_row.day_bucket = v_day - 1 then
      -- The day rolled over: what was counted ahead becomes today's, yesterday's count stays in view.
      v_rpd_used := v_row.rpd_next_used; v_rpd_next := 0; v_rpd_prev := coalesce(v_row.rpd_used, 0);
    else
      v_rpd_used := 0; v_rpd_next := 0; v_rpd_prev := 0;
    end if;
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_day_start := public.google_ai_pacific_start(v_day);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < v_day_start + v_day_guard;

    -- Admissions that left the window (each is expired once, by the first try after it left); the
    -- owners of shares get their window count back with them.
    with gone as (
      delete from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model
        and a.admitted_at > coalesce(v_row.window_floor, '-infinity') and a.admitted_at <= v_now - v_window
      returning a.tokens, a.share_ids),
    owners_back as (
      update public.google_ai_share_usage u set window_requests = greatest(0, u.window_requests - b.n)
      from (select s.id, count(*)::integer as n from gone g cross join unnest(g.share_ids) as s(id) group by s.id) b
      where u.quota_group = p_quota_group and u.share_id = b.id)
    select count(*), coalesce(sum(g.tokens), 0) into v_gone_requests, v_gone_tokens from gone g;
    if v_row.window_at is null then
      -- A new counter row (first use, or housekeeping removed an idle one): count what is in the window.
      select count(*), coalesce(sum(a.tokens), 0) into v_win_requests, v_win_tokens
      from public.google_ai_admissions a
      where a.quota_group = p_quota_group and a.model = p_model;
      -- The owners' use starts again with the row: their admissions in the window, nothing of the day.
      delete from public.google_ai_share_usage u
      where u.quota_group = p_quota_group
        and u.share_id in (select s.id from public.google_ai_quota_shares s where s.model = p_model);
      insert into public.google_ai_share_usage (quota_group, share_id, window_requests)
      select p_quota_group, s.id, count(*)::integer
      from public.google_ai_admissions a
      cross join unnest(a.share_ids) as x(id)
      join public.google_ai_quota_shares s on s.id = x.id and s.model = p_model
      where a.quota_group = p_quota_group and a.model = p_model
      group by s.id;
    else
      v_win_requests := greatest(0, v_row.window_requests - v_gone_requests);
      v_win_tokens := greatest(0, v_row.window_tokens - v_gone_tokens);
    end if;

    -- The model's shares in this group: what the others' shares keep from this requester, and the
    -- use of its own (rolled to the current day like the counter row).
    for v_share in
      select s.id, s.reserved_rpm, s.reserved_rpd, s.pace_burst,
             coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
             coalesce(u.window_requests, 0) as win, u.day_bucket, coalesce(u.day_used, 0) as day_used,
             coalesce(u.day_next_used, 0) as day_next_used, coalesce(u.day_prev_used, 0) as day_prev_used
      from public.google_ai_quota_shares s
      left join public.google_ai_share_usage u on u.quota_group = p_quota_group and u.share_id = s.id
      where s.model = p_model
      order by s.id
    loop
      if v_share.day_bucket = v_day then
        v_used := v_share.day_used; v_next := v_share.day_next_used; v_prev := v_share.day_prev_used;
      elsif v_share.day_bucket = v_day - 1 then
        v_used := v_share.day_next_used; v_next := 0; v_prev := v_share.day_used;
      else
        v_used := 0; v_next := 0; v_prev := 0;
      end if;
      v_reserved_rpd := v_reserved_rpd + coalesce(v_share.reserved_rpd, 0);
      if v_share.owned then
        v_owned := v_owned || v_share.id;
        v_owned_win := v_owned_win || v_share.win;
        v_owned_used := v_owned_used || v_used;
        v_owned_next := v_owned_next || v_next;
        v_owned_prev := v_owned_prev || v_prev;
        -- A request its own RPM share still has room for is not held back by the spread.
        v_in_share := v_in_share or v_share.win < coalesce(v_share.reserved_rpm, 0);
        if v_share.pace_burst is not null then
          -- Checked below, once the day shares of all owners are known.
          v_pace_burst := v_pace_burst || v_share.pace_burst;
          v_pace_kept := v_pace_kept || coalesce(v_share.reserved_rpd, 0);
          v_pace_used := v_pace_used || v_used;
          v_pace_next := v_pace_next || v_next;
        end if;
      else
        v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_share.win);
        v_held_rpd := v_held_rpd + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_used);
        v_held_next := v_held_next + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_next);
        v_held_prev := v_held_prev + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_prev);
      end if;
    end loop;

    -- Pacing: each paced share the requester owns must allow one more of the day (usable: the
    -- group's day less what other owners' shares keep). The refusal names when the last one allows.
    for i in 1 .. case when p_rpd is null then 0 else cardinality(v_pace_burst) end loop
      v_usable := p_rpd - (v_reserved_rpd - v_pace_kept[i]);
      if v_pace_used[i] + 1 > public.google_ai_pace_allowance(v_now, v_day, v_pace_burst[i], v_usable) then
        -- Today, else tomorrow (counting what the guard before midnight booked ahead), else later.
        v_at := coalesce(public.google_ai_pace_opens_at(v_day, v_pace_used[i], v_pace_burst[i], v_usable),
                         public.google_ai_pace_opens_at(v_day + 1, v_pace_next[i], v_pace_burst[i], v_usable),
                         public.google_ai_pacific_start(v_day + 2));
        v_pace_at := greatest(v_pace_at, v_at);
      end if;
    end loop;

    -- The spread: the request waits for its place in the schedule when google_ai_spread_holds says so,
    -- unless its own share covers it.
    v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, p_tpm, p_tokens);
    if v_spread.step is not null and not v_in_share and v_row.spread_until - v_spread.tolerance > v_now
       and public.google_ai_spread_holds(p_model, public.google_ai_class_rank(p_class), v_now) then
      v_spread_at := v_row.spread_until - v_spread.tolerance;
    end if;

    v_window_full := (p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm)
                  or (p_tpm is not null and v_win_tokens + p_tokens > p_tpm);
    outcome := case
      when p_rpd is not null and (v_rpd_used + 1 > p_rpd - v_held_rpd
                                  or (v_near_end and v_rpd_next + 1 > p_rpd - v_held_next)
                                  or (v_near_start and v_rpd_prev + 1 > p_rpd - v_held_prev)) then 'rpd'
      when v_pace_at is not null then 'pace'
      when p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm then 'rpm'
      when p_tpm is not null and v_win_tokens + p_tokens > p_tpm then 'tpm'
      -- Held by the spread: named after the limit whose share of the window the request's step is.
      when v_spread_at is not null then v_spread.limit_name
      else 'booked' end;
    -- Why, one meaning each: the day spent or kept by others' day shares, a pace, the window full or
    -- kept by others' shares, or the request's place in the spread's schedule.
    cause := case
      when outcome = 'booked' then null
      when outcome = 'rpd' then case when v_rpd_used + 1 > p_rpd or (v_near_end and v_rpd_next + 1 > p_rpd)
                                          or (v_near_start and v_rpd_prev + 1 > p_rpd)
                                     then 'day_exhausted' else 'share_kept' end
      when outcome = 'pace' then 'pace'
      when not v_window_full then 'spread'
      when (p_rpm is not null and v_win_requests + 1 > p_rpm) or (p_tpm is not null and v_win_tokens + p_tokens > p_tpm)
        then 'window_full'
      else 'share_kept' end;
    minute_bucket := v_minute;
    day_bucket := v_day;

    if outcome <> 'booked' then
      if outcome = 'rpd' then
        -- Today's count is spent until midnight, and the guard after it still counts yesterday's.
        reopens_at := case when v_near_end and v_rpd_used + 1 <= p_rpd - v_held_rpd
                           then public.google_ai_pacific_midnight_after(v_midnight) + v_day_guard
                           else v_midnight + v_day_guard end;
      else
        if v_window_full then
          reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, v_now, v_window, p_rpm, p_tpm,
            p_tokens, p_class, p_caller);
          if outcome = 'tpm' and exists (select 1 from public.google_ai_admissions a
                                         where a.quota_group = p_quota_group and a.model = p_model
                                           and a.in_flight and a.admitted_at > v_now - v_window) then
            recheck_at := v_now + v_guard.recheck_ms * interval '1 millisecond';
          end if;
        end if;
        if outcome = 'pace' then
          -- Paced until then, and the window must have room by then too.
          reopens_at := greatest(v_pace_at, reopens_at);
          recheck_at := null;
        elsif v_spread_at is not null then
          -- Its place in the schedule, and the window must have room by then too.
          reopens_at := greatest(v_spread_at, reopens_at);
          if recheck_at >= reopens_at then
            recheck_at := null;
          end if;
        end if;
      end if;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    insert into public.google_ai_admissions (reservation_id, quota_group, model, admitted_at, tokens, day_guard, share_ids,
      class_rank)
    values (coalesce(p_reservation_id, gen_random_uuid()), p_quota_group, p_model, v_now, p_tokens,
            case when v_near_end then 1 when v_near_start then -1 else 0 end,
            case when cardinality(v_owned) > 0 then v_owned end, public.google_ai_class_rank(p_class));

    if cardinality(v_owned) > 0 then
      insert into public.google_ai_share_usage as u (quota_group, share_id, window_requests, day_bucket, day_used,
        day_next_used, day_prev_used)
      select p_quota_group, o.id, o.win + 1, v_day, o.used + 1,
             o.next + case when v_near_end then 1 else 0 end, o.prev + case when v_near_start then 1 else 0 end
      from unnest(v_owned, v_owned_win, v_owned_used, v_owned_next, v_owned_prev) as o(id, win, used, next, prev)
      on conflict (quota_group, share_id) do update set
        window_requests = excluded.window_requests, day_bucket = excluded.day_bucket, day_used = excluded.day_used,
        day_next_used = excluded.day_next_used, day_prev_used = excluded.day_prev_used;
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_day,
      rpm_used        = v_rpm_used + 1,
      tpm_used        = v_tpm_used + p_tokens,
      rpd_used        = v_rpd_used + 1,
      rpd_next_used   = v_rpd_next + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_rpd_prev + case when v_near_start then 1 else 0 end,
      window_requests = v_win_requests + 1,
      window_tokens   = v_win_tokens + p_tokens,
      window_at       = v_now,
      window_floor    = greatest(v_row.window_floor, v_now - v_window),
      spread_until    = public.google_ai_spread_next(v_row.spread_until, v_now, v_spread.step),
      updated_at      = v_now
    where c.id = v_row.id;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, buckets, reopens_at and recheck_at keep the values set above
  end;
end
$$;

CREATE OR REPLACE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN ((new.metadata ? '$holder'::text)) EXECUTE FUNCTION public.google_ai_attempt_holder();

CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_attempt_reply_check();

CREATE OR REPLACE TRIGGER google_ai_responses_holder_check BEFORE UPDATE ON public.google_ai_responses FOR EACH ROW WHEN (((old.status = 'in_progress'::text) AND (new.status = 'done'::text) AND (old.holder IS NOT NULL))) EXECUTE FUNCTION public.google_ai_response_holder_check();
