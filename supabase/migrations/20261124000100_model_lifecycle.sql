-- The model life cycle: Google withdraws models (a 404 NOT_FOUND for a model it served yesterday),
-- announces shutdown dates and successors, and lists models no row serves yet. What changes here:
--
--   * A withdrawn model is learned once. llm-invoke finalizes the call that met Google's 404 with
--     google_ai_finalize_withdrawn: the reservation is given back (as google_ai_release does), the
--     attempt row says 'withdrawn' with Google's sanitized message, and the model row is marked
--     (withdrawn_at, withdrawn_message), all in one transaction.
--   * Every reservation refuses a marked model without booking anything (limit 'withdrawn', with the
--     row's successor): google_ai_admit_at decides it, and every entry goes through it (the service
--     key's and the token's, one model or a chain, before the fast booking and the general one). A
--     chain passes over it to its next model.
--   * A caller's name is an alias that belongs to one row: giving it to another row (one UPDATE)
--     takes it from the row that had it, so the operator repoints `gemma-3-27b` with
--       update public.google_ai_model_limits set aliases = aliases || '{gemma-3-27b}' where model = 'gemma-4-31b-it';
--   * The maintenance function's models.list run brings a withdrawn model back when a checked key
--     lists it again, and reports the life cycle (google_ai_model_lifecycle_review); the operator
--     clears a mark with
--       update public.google_ai_model_limits set withdrawn_at = null, withdrawn_message = null where model = '...';
--   * The view google_ai_model_lifecycle shows every row's place in it.
--   * llm-invoke reads a row's capabilities, images included, through google_ai_model_traits; the
--     models a caller can list leave withdrawn ones out (google_ai_model_list).
--
-- Redefined here (copied from the last file that defines them, changed only as said):
-- google_ai_admit_at (20261123010000_hot_path.sql), google_ai_admit_chain_at
-- (20261122040000_model_fallback.sql) and google_ai_model_list (20261123000000_surfaces.sql).
-- Applying this file twice changes nothing.

-- An alias belongs to one row ----------------------------------------------------------------------
-- Before: a name in two rows' aliases resolved to the older row, so giving it to a new row changed
-- nothing until it was also taken from the old one. Now the row that gains an alias takes it.
create or replace function public.google_ai_model_alias_moves()
returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_gained text[];
begin
  select coalesce(array_agg(a), '{}') into v_gained
  from unnest(new.aliases) a
  where tg_op = 'INSERT' or not (a = any (coalesce(old.aliases, '{}')));
  if cardinality(v_gained) > 0 then
    update public.google_ai_model_limits l
    set aliases = (select coalesce(array_agg(a order by i), '{}') from unnest(l.aliases) with ordinality x(a, i)
                   where not (a = any (v_gained)))
    where l.id <> new.id and l.aliases && v_gained;
  end if;
  return null;
end
$$;

create or replace trigger google_ai_model_alias_moves
  after insert or update of aliases on public.google_ai_model_limits
  for each row execute function public.google_ai_model_alias_moves();

-- The reservation refuses a withdrawn model ------------------------------------------------------
-- As in 20261123010000_hot_path.sql, with one more reason a model cannot be booked: its row is
-- marked withdrawn ('withdrawn', decided before the size check, answered with withdrawn_at and the
-- row's successor). Nothing is booked and no ticket is taken: waiting cannot bring it back.
create or replace function public.google_ai_admit_at(
  p_now timestamptz,
  p_model text,
  p_estimated_tokens integer,
  p_caller text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_client_id uuid default null,
  p_token_id uuid default null,
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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
  v_quota jsonb;
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
      v_turn := v_ticket.turn; v_since := v_ticket.enqueued_at;
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
        and (q.class_rank, q.turn, q.enqueued_at) < (v_rank, v_turn, v_since);
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd,
        p_exclude_key_ids, v_now, v_ahead + 1) t;
      -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks.
      -- (No turn today anywhere: book_best_group names the reopening.)
      v_may_book := v_turn_at is null or v_due_ahead < v_free_now;
    end if;

    if v_may_book and not v_queued then
      -- Nothing but the limits in the way: the fast booking, with the quota it leaves.
      select f.booked_group, f.minute_bucket, f.day_bucket, f.quota into v_group, v_minute, v_day, v_quota
      from public.google_ai_book_fast(v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd,
        p_estimated_tokens, p_exclude_key_ids, p_now, v_now, v_reservation_id, p_caller, p_client_id) f;
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
        and (q.class_rank, q.turn, q.enqueued_at) < (v_rank, v_turn, v_since);
      select t.free_now, t.turn_at into v_free_now, v_turn_at
      from public.google_ai_queue_turn_at(v_limits.model, v_limits.rpm, v_limits.rpd, p_exclude_key_ids, v_now,
        v_ahead + 1) t;
      -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls,
      -- the slot is this one's once its ticket lapses. When the next opening lies beyond this
      -- caller's wait, that is its chance: it asks again then (one call more if the waiter did come).
      if v_free_now > 0 and v_due_lease is not null
         and coalesce(v_turn_at > v_now + p_wait_left_ms * interval '1 millisecond', true) then
        v_turn_at := v_due_lease + interval '1 millisecond';
      end if;
      -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
      -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and
      -- asking again would not either, so it is answered now rather than given a turn.
      if v_may_book and v_reopens_at is null and v_recheck_at is null then
        v_turn_at := null;
      end if;
      -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
      v_expected := greatest(v_turn_at, least(v_reopens_at, v_recheck_at), v_now + interval '50 milliseconds');
      if v_turn_at is null and v_reopens_at is null then
        v_expected := null;
      end if;
      if v_expected <= v_now + p_wait_left_ms * interval '1 millisecond' then
        insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
          token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
        values (coalesce(v_ticket.ticket_id, gen_random_uuid()), v_limits.model, v_class, v_rank, p_caller,
          p_client_id, p_token_id, p_request_id, p_model, v_turn, v_since, p_estimated_tokens, v_blocked_by,
          v_expected, v_expected + v_grace, v_ahead + 1)
        on conflict (ticket_id) do update set
          expected_at = excluded.expected_at, lease_until = excluded.lease_until,
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
      -- Behind a queue, capacity for this caller comes with its turn.
      v_reopens_at := coalesce(v_expected, greatest(v_turn_at, v_reopens_at));
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

-- A chain passes over a withdrawn model ----------------------------------------------------------
-- As in 20261122040000_model_fallback.sql, with 'withdrawn' among the refusals that belong to one
-- model (the next model is tried). When every model refuses, the answer is the refusal whose
-- capacity comes back first, else the first model's: a chain of withdrawn models is refused
-- 'withdrawn' as a single model is.
create or replace function public.google_ai_admit_chain_at(
  p_now timestamptz,
  p_models text[],
  p_estimated_tokens integer,
  p_caller text,
  p_token_hash text,
  p_request_id text,
  p_exclude_key_ids uuid[] default '{}',
  p_attempt integer default 1,
  p_wait_ms integer default 0,
  p_metadata jsonb default '{}',
  p_idempotent boolean default false,
  p_priority text default null,
  p_queue_ticket uuid default null,
  p_wait_left_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'retry_after_ms', null, 'model', v_models[i]);
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
      'retry_after_ms', v_try -> 'retry_after_ms'));
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, coalesce(v_caller, 'token'), v_client_id, v_token_id, v_models[i], p_models[1],
      p_attempt, p_estimated_tokens, v_try ->> 'limit', (v_try ->> 'retry_after_ms')::bigint, p_wait_ms,
      coalesce(p_metadata, '{}'));
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

-- Google's 404 for a model ----------------------------------------------------------------------
-- One transaction: the attempt row says 'withdrawn' (Google's status, code and sanitized message,
-- the call's latency), the reservation's capacity is given back as google_ai_release gives it (the
-- admission leaves the minute window and the day; the estimated tokens go back to a token's budget,
-- its request stays counted: the same request goes on to its chain's next model as a later attempt),
-- and the model row is marked withdrawn — once: a row already marked keeps the first time and
-- message. A reservation that is not open (finalized or released before) changes nothing and is
-- answered as google_ai_release answers it.
create or replace function public.google_ai_finalize_withdrawn(
  p_reservation_id uuid,
  p_http_status integer default 404,
  p_error_code text default 'NOT_FOUND',
  p_error_message text default null,
  p_latency_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_marked boolean;
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, 0, -v_att.estimated_tokens);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message
  where l.model = v_att.model and l.withdrawn_at is null;
  v_marked := found;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', v_marked,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$$;

-- Every row's place in the life cycle -------------------------------------------------------------
-- state: withdrawn (Google answered 404 for it; requests pass over it), shut_down (its announced
-- shutdown date has passed, Google has not said 404 yet), shutting_down (within 14 days of it),
-- retired (the operator's is_active = false), served.
create or replace view public.google_ai_model_lifecycle
with (security_invoker = true) as
select l.model, l.aliases, l.is_active,
       case when l.withdrawn_at is not null then 'withdrawn'
            when not l.is_active then 'retired'
            when l.shutdown_date <= current_date then 'shut_down'
            when l.shutdown_date <= current_date + 14 then 'shutting_down'
            else 'served' end as state,
       l.withdrawn_at, l.withdrawn_message, l.successor, l.shutdown_date,
       (l.shutdown_date - current_date) as days_to_shutdown,
       l.fallback_models, l.rpm, l.tpm, l.rpd, l.limits_source,
       l.supports_system_instruction, l.supports_json_mode, coalesce(l.supports_tools, l.supports_json_mode) as supports_tools,
       l.supports_images,
       s.catalogue_status, s.last_listed_at
from public.google_ai_model_limits l
left join public.google_ai_model_catalogue_status s on s.model = l.model;

comment on view public.google_ai_model_lifecycle is
  'Each model row in its life cycle: withdrawn (when, Google''s message), shutdown date, successor, chain, '
  'limits and where they come from, and what models.list last said of it.';

-- What the maintenance function's models.list run concludes ----------------------------------------
-- Called after every key was checked (its catalogue rows are fresh). A withdrawn model that a key
-- whose last check succeeded lists again (seen after it was withdrawn) is brought back. The answer:
--   restored       models brought back now
--   withdrawn      models still marked: {model, withdrawn_at, message, successor}
--   missing        active rows no checked key lists (Google retired or renamed them)
--   shutting_down  rows whose shutdown date is within p_within_days (or past): {model, shutdown_date,
--                  days_left, successor}
--   unserved       models Google lists that no row serves (nobody can name them yet)
-- Without a key whose last check succeeded, nothing is concluded from the catalogue.
create or replace function public.google_ai_model_lifecycle_review(p_within_days integer default 14)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_checked boolean;
  v_listed jsonb;   -- {model: when a checked active key last listed it}
  v_restored text[];
begin
  select coalesce(jsonb_object_agg(x.model, x.listed_at), '{}') into v_listed
  from (select c.model, max(c.refreshed_at) as listed_at
        from public.google_ai_model_catalogue c
        join public.google_ai_key_health h on h.api_key_id = c.api_key_id and h.status = 'ok'
        join public.google_ai_api_keys k on k.id = c.api_key_id and k.is_active
        group by c.model) x;
  v_checked := exists (select 1 from public.google_ai_key_health h
                       join public.google_ai_api_keys k on k.id = h.api_key_id
                       where h.status = 'ok' and k.is_active);

  with back as (
    update public.google_ai_model_limits l set withdrawn_at = null, withdrawn_message = null
    where v_checked and l.withdrawn_at is not null and v_listed ? l.model
      and (v_listed ->> l.model)::timestamptz > l.withdrawn_at
    returning l.model)
  select coalesce(array_agg(b.model order by b.model), '{}') into v_restored from back b;

  return jsonb_build_object(
    'checked', v_checked,
    'restored', to_jsonb(v_restored),
    'withdrawn', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'withdrawn_at', l.withdrawn_at,
                             'message', l.withdrawn_message, 'successor', l.successor) order by l.model)
                           from public.google_ai_model_limits l where l.withdrawn_at is not null), '[]'),
    'missing', coalesce((select jsonb_agg(l.model order by l.model) from public.google_ai_model_limits l
                         where v_checked and l.is_active and not v_listed ? l.model), '[]'),
    'shutting_down', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'shutdown_date', l.shutdown_date,
                                 'days_left', l.shutdown_date - current_date, 'successor', l.successor)
                                 order by l.shutdown_date, l.model)
                               from public.google_ai_model_limits l
                               where l.is_active and l.shutdown_date <= current_date + coalesce(p_within_days, 14)), '[]'),
    'unserved', coalesce((select jsonb_agg(g order by g) from jsonb_object_keys(v_listed) g
                          where not exists (select 1 from public.google_ai_model_limits l where l.model = g)), '[]'));
end
$$;

-- What llm-invoke reads of a model row -----------------------------------------------------------
-- google_ai_model_features with whether the model takes images (google_ai_model_limits.supports_images,
-- null: not known), whether it is withdrawn and its successor (the countTokens route, which books
-- nothing, answers a withdrawn model without calling Google). A new name: google_ai_model_features
-- keeps its result type (an earlier migration creates it, and re-applying that file must not meet a
-- different one).
create or replace function public.google_ai_model_traits(p_model text)
returns table (model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean,
               supports_tools boolean, supports_images boolean, fallback_models text[], withdrawn boolean,
               successor text)
language sql stable security definer set search_path = ''
as $$
  select f.model, f.is_active, f.supports_system_instruction, f.supports_json_mode, f.supports_tools,
         l.supports_images, f.fallback_models, l.withdrawn_at is not null, l.successor
  from public.google_ai_model_features(p_model) f
  join public.google_ai_model_limits l on l.model = f.model
$$;

-- The models a caller can name, as in 20261123000000_surfaces.sql, without the withdrawn ones: like
-- Google's models.list, the gateway's does not offer a model Google no longer serves (its names,
-- once repointed, are listed under the row that took them).
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
  where l.is_active and l.withdrawn_at is null
  order by l.model
$$;

-- Access (as in the access file) -------------------------------------------------------------------
revoke all on function public.google_ai_model_alias_moves() from public, anon, authenticated, service_role;
revoke all on function
  public.google_ai_finalize_withdrawn(uuid, integer, text, text, integer),
  public.google_ai_model_lifecycle_review(integer),
  public.google_ai_model_traits(text)
from public, anon, authenticated, service_role, eve_gateway;
-- llm-invoke reads model rows and finalizes a withdrawn call; the maintenance function reviews the life cycle.
grant execute on function
  public.google_ai_finalize_withdrawn(uuid, integer, text, text, integer),
  public.google_ai_model_lifecycle_review(integer),
  public.google_ai_model_traits(text)
to service_role, eve_gateway;
revoke all on table public.google_ai_model_lifecycle from public, anon, authenticated, eve_gateway;
grant select on public.google_ai_model_lifecycle to service_role;
