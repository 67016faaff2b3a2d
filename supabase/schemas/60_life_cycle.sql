-- A request's life after its reservation: finalize (tokens, outcome, 429 causes and cooldowns,
-- token_usage), a cut stream, a withdrawn model, release, and the end of an idempotent request.
set check_function_bodies = off;

-- token_usage is the bot's GPT-4o usage table. Seed 000 says the bot writes the time into `at`
-- (seed 001 lists `ts`): we create `at` and, on adoption, accept whichever the table has.
CREATE TABLE public.token_usage (
    id bigserial NOT NULL,
    model text,
    prompt_tokens integer,
    completion_tokens integer,
    total_tokens integer,
    request_id text,
    meta jsonb,
    at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.token_usage
    ADD CONSTRAINT token_usage_pkey PRIMARY KEY (id);

CREATE INDEX IF NOT EXISTS token_usage_request_id_idx ON public.token_usage USING btree (request_id);

-- A quota group rests until p_until (never shortened by a later 429), with the 429's cause: one
-- model and every active row of its pool (limit_pool: they share its limits, so a rate's 429 for one
-- is the pool's), or for a spend cap every active model row the group's keys serve (their provider's;
-- a key's `models`, null: all of them) and the attempt's own model, a row or not. A row keeps the cause
-- of whichever rest ends later.
-- The rows are written in model order: two spend caps of one group (or a key check's delete, which
-- locks in the same order) take their row locks in one order and cannot deadlock.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text,
    p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l
        where l.is_active and l.limit_pool = (select p.limit_pool from public.google_ai_model_limits p
                                              where p.model = p_model)
        union
        select l.model from public.google_ai_model_limits l
        where p_cause = any (public.google_ai_quota_causes(true)) and l.is_active
          and exists (select 1 from public.google_ai_api_keys k
                      where public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
                        and k.serves_provider = l.provider
                        and (k.models is null or l.model = any (k.models)))) m
  order by m.model
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text,
    p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) IS
    'Finalize''s cooldown: one model and the active rows of its pool (limit_pool), or for a spend cap or money '
    '(google_ai_quota_causes(true)) every active model the quota group''s keys serve.';

-- Cooldown by hand (an operator's, or a test's): a quota group rests for one model until p_until,
-- never shortened by a later call; written as finalize writes Google's (google_ai_cooldown_for_cause),
-- with no cause.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone,
    p_reason text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
begin
  if p_quota_group is null or p_until is null then
    raise exception 'p_quota_group and p_until are required' using errcode = '22023';
  end if;
  perform public.google_ai_cooldown_for_cause(p_quota_group, v_model, p_until, null, p_reason, p_quota_id);
  return jsonb_build_object('ok', true, 'quota_group', p_quota_group, 'model', v_model, 'cooldown_until',
    (select c.cooldown_until from public.google_ai_cooldowns c
     where c.quota_group = p_quota_group and c.model = v_model));
end
$$;

-- The end of an idempotent request that failed: its in-flight marker goes, so the caller may repeat
-- the request id at once (a success replaces the marker with the answer in finalize instead).
-- Any reservation of the request identifies it; a holder ends only the claim it holds (by identity),
-- a row that names no holder only a claim taken before its reply_by.
CREATE OR REPLACE FUNCTION public.google_ai_end_request(p_reservation_id uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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

-- What successes leave beside their attempt rows (p_atts, just finalized; p_outcomes theirs, each at its
-- att's index): each one's response (the outcome's, when given and the caller sent its own request_id)
-- kept for replay in place of the request's in-flight marker, and the bot's token_usage row with the
-- provider's counts. A step of finalize, taken for successes only (a cut stream is one too: its meta says
-- who cut it, and it keeps no answer); other rows are passed over. One statement for a batch
-- (google_ai_finalize_calls); two successes of one request leave the later one's answer, as one finalize
-- after the other would.
CREATE OR REPLACE FUNCTION public.google_ai_record_successes(p_atts public.google_ai_attempts[],
    p_outcomes public.google_ai_attempt_outcome[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  with x as materialized (
    select p_atts[g.n] as a, p_outcomes[g.n] as o, g.n from pg_catalog.generate_subscripts(p_atts, 1) g(n)
  ), kept as (
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    select distinct on ((x.a).caller, (x.a).request_id)
      (x.a).caller, (x.a).request_id, 'done', (x.a).model, (x.o).response, now(), null::timestamptz
    from x
    where (x.o).response is not null and (x.a).request_id is not null and (x.a).status = 'succeeded'
    order by (x.a).caller, (x.a).request_id, x.n desc
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null)
  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  select (x.a).model, (x.o).input_tokens, (x.o).output_tokens,
    coalesce((x.o).input_tokens, 0) + coalesce((x.o).output_tokens, 0),
    coalesce((x.a).request_id, (x.a).reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', (x.a).caller, 'key_alias', (x.a).key_alias,
      'attempt', (x.a).attempt, 'reservation_id', (x.a).reservation_id)
      || case when (x.a).status = 'cut' then jsonb_build_object('cut_by', (x.o).cut_by) else '{}' end
  from x
  where (x.a).status in ('succeeded', 'cut')
  order by x.n;
end
$$;

-- The model whose own request bucket takes the provider's word (google_ai_settle_call): the word is a
-- bucket's (p_room_requests 0, p_room_tokens null), still ahead, and the model's limits are buckets
-- (bucket_share, a request limit after its margin); else null, and the word is weighed against the
-- margin (google_ai_room_rest).
CREATE OR REPLACE FUNCTION public.google_ai_room_bucket_model(p_att public.google_ai_attempts,
    p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone)
    RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_model public.google_ai_model_limits;
begin
  if p_room_until > pg_catalog.clock_timestamp() and p_att.quota_group is not null and p_room_requests = 0
     and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m
    where m.model = p_att.model and m.bucket_share is not null
      and public.google_ai_effective_limit(m.rpm, m.safety_margin) > 0;
  end if;
  return v_model;
end
$$;

-- The rest a sliding window's remaining counts ask for (google_ai_settle_call says when): the margin read
-- from the group's recent log, and the model rested when the provider's room is no more than it. It
-- reads the log and writes cooldown rows only, never a counter row: several finalizes written together
-- (google_ai_finalize_calls) take each one's before the first counter row is locked.
CREATE OR REPLACE FUNCTION public.google_ai_room_rest(p_att public.google_ai_attempts, p_room_requests integer,
    p_room_tokens integer, p_room_until timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
begin
  if not (p_room_until > v_now and p_att.quota_group is not null) then
    return;
  end if;
  -- (Out since: still on their way, or back since. Not only those still on their way: a caller whose
  -- answer is back may be admitting its next call now, which this count cannot see until it commits,
  -- and which will not see this rest; when the callers come back at once, all of them do. The answered
  -- call's own caller is not among them: its call is in the provider's count already, and its next
  -- call is either not made yet (this lands before the answer) or taken out of p_room_* already.)
  select 2 * count(*) filter (where f.out_since) + count(*) filter (where f.counted_since),
    coalesce(2 * sum(a.estimated_tokens) filter (where f.out_since), 0)
      + coalesce(sum(a.estimated_tokens) filter (where f.counted_since), 0)
  into v_margin, v_margin_tokens
  from public.google_ai_attempts a
  cross join lateral (select a.id <> p_att.id and (a.status = 'reserved' or a.finished_at >= p_att.admitted_at),
    a.admitted_at > p_att.admitted_at) f(out_since, counted_since)
  where a.quota_group = p_att.quota_group and a.model = p_att.model
    and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
  if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
    perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
      'provider_room', null);
  end if;
end
$$;

-- Finalize's accounting of one call, after its row is written: the rest the provider's own counts ask
-- for, then the admission settled at the provider's count (the counter row, the hot one, last).
--   Room: what the provider says is left of the group's limits (OpenAI's x-ratelimit-remaining-*,
--   which count every user of the organization). When no more is left than this group's calls of the
--   model out at any moment since this call was admitted, twice (those, and as many again admitted
--   before this rest lands), plus those admitted since this call was (the provider may have counted
--   them after its answer: on a busy machine a finalize lags its answer while callers go on), the model
--   rests until the provider's counts are full again (room_until, reason 'provider_room'), so the
--   gateway waits instead of meeting the provider's 429s. This call's own caller is not counted: its
--   room is left for the others (llm-invoke writes this before the answer where little is left, and
--   otherwise sends what the provider said less that caller's next call). A provider whose limits are buckets
--   (Anthropic's) says instead when they hold the next request (llm-invoke's roomUntil: nothing left
--   until room_until). Where that is its request bucket (room_requests 0, room_tokens null) on a
--   model whose own limits are buckets (bucket_share), the word may be up to one refill late (what is
--   left is rounded down), and the gateway's own request bucket already holds the next request back
--   until its place
--   (google_ai_schedule_place, at the group's RPM as the booking counts it: google_ai_group_rpm, a following
--   row's the provider's): only when even the word's earliest reading is later than that place
--   (others use the organization's bucket) does the model rest, in that bucket: its next place moves to
--   room_until and each later one a step after (the bucket taken down to what Anthropic's holds), so
--   requests wait for their place there (cause spread) rather than meet the 429s a rest for one request
--   would leave to the ones after it.
--   The margin is read (google_ai_room_rest) before the counter row is locked, here and where several
--   finalizes go together (google_ai_finalize_calls reads each one's before its first counter row).
--   Count: the input, and the output too where the model's TPM counts answers (its row's
--   booked_output_tokens, OpenAI's rule). When the provider sent none: settled_tokens (a call it
--   refused before generating keeps its input, its output booking goes back), else the booking stays.
--   Stated: the limits the answer states (stated_limits), noted on the counter row last (google_ai_note_stated).
-- The room and the count are google_ai_call_counted's; the counter row's settle is google_ai_settle_admission's.
CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, public.google_ai_call_counted(p_att, p_outcome), false);
  -- The limits the answer states, on the counter row just settled (locked: no other lock taken).
  if p_outcome.stated_limits is not null then
    perform public.google_ai_note_stated(p_att, p_outcome.stated_limits);
  end if;
end
$$;

-- google_ai_settle_call's steps before the counter row's settle: the room (a rest, or a bucket's word on the
-- counter row) and the call's cost and count in its caller's budgets; answers the tokens to settle the
-- admission at.
CREATE OR REPLACE FUNCTION public.google_ai_call_counted(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_outcome.room_until is not null then
    v_model := public.google_ai_room_bucket_model(p_att, p_outcome.room_requests, p_outcome.room_tokens,
      p_outcome.room_until);
  end if;
  if v_model.model is not null then
    v_rpm := public.google_ai_group_rpm(v_model, p_att.quota_group);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_outcome.room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_outcome.room_until - 60000.0 / greatest(v_model.rpm, v_rpm) * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_outcome.room_until + v_step.tolerance;
  elsif p_outcome.room_until is not null then
    perform public.google_ai_room_rest(p_att, p_outcome.room_requests, p_outcome.room_tokens, p_outcome.room_until);
  end if;

  v_counted := p_outcome.input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null)
    then coalesce(p_outcome.output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_outcome.settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(row(p_att.caller, p_att.client_id, p_att.token_id)::public.google_ai_caller,
      p_att.created_at, public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  return greatest(0, coalesce(v_counted, p_att.estimated_tokens));
end
$$;

-- What an outcome asks for beyond its attempt row (p_att, just finalized with p_outcome), one step of
-- finalize: the key out of rotation when the provider says the key itself is no good (with the reason,
-- never deleted), rather than let every request spend an attempt on it until the next health check;
-- and the group's rest (google_ai_cooldown_for_cause), whose end it answers.
CREATE OR REPLACE FUNCTION public.google_ai_rest_asked(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_until timestamptz;
begin
  if coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID') and p_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_outcome.error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = p_att.api_key_id and k.is_active;
  end if;

  if p_outcome.cooldown_until_provider_midnight then
    -- A per-day quota: until the next midnight of the provider's day (its row's day_zone: Pacific
    -- for Google's row, whose per-day quotas are the ones that say so).
    select public.google_ai_midnight_after_in(pg_catalog.clock_timestamp(), p.day_zone) into v_until
    from public.google_ai_api_keys k join public.google_ai_providers p on p.name = k.serves_provider
    where k.id = p_att.api_key_id;
  else
    v_until := p_outcome.cooldown_until;
  end if;
  if v_until is not null and p_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, v_until, p_outcome.quota_cause,
      coalesce(p_outcome.error_code, p_att.status), p_outcome.quota_id);
  end if;
  return v_until;
end
$$;

-- Finalize: record what came of the call to the provider (p_outcome) and settle its admission at the
-- provider's count (google_ai_settle_call): input tokens, and output too where the model's TPM counts
-- it (without the provider's count: settled_tokens, what a refusal keeps; else the booking). A success
-- also lands in token_usage, and its response (when given: the caller sent its own request_id) is kept
-- for replay (google_ai_record_successes). An outcome may take its key out of rotation and cool the group
-- down (the provider's 429) in the same transaction (google_ai_rest_asked): until cooldown_until, or
-- with cooldown_until_provider_midnight until the next midnight of the provider's day, in whatever zone
-- its row names. A cut stream (kind cut: the provider billed what it streamed) is written as a success
-- (its counts, room and stated limits; no stored answer), its row marked 'cut' with who cut it
-- (cut_by 'client': the caller went away; 'upstream': the stream broke off on the provider's side) as
-- its error_code stream_cut_by_<cut_by> and in its token_usage row's meta (cut_by), so the bot's books
-- tell a cut answer apart. A withdrawn model is a step of its own (google_ai_withdraw_attempt).
CREATE OR REPLACE FUNCTION public.google_ai_finalize_attempt(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_written public.google_ai_outcome_written := public.google_ai_write_outcome(p_reservation_id, p_outcome);
begin
  if (v_written.att).id is not null then
    perform public.google_ai_settle_call(v_written.att, p_outcome);
  end if;
  return v_written.answer;
end
$$;

-- An outcome's kind as its attempt row takes it, or an error (22023) naming what the outcome got wrong.
CREATE OR REPLACE FUNCTION public.google_ai_outcome_kind(p_outcome public.google_ai_attempt_outcome) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_kind text := p_outcome.kind;
begin
  if v_kind = 'withdrawn' then
    return v_kind;  -- (its own step reads the rest: google_ai_withdraw_attempt)
  elsif v_kind is null or v_kind not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'cut') then
    raise exception 'an outcome''s kind must be succeeded, upstream_error, network_error, timeout, cut or withdrawn'
      using errcode = '22023';
  elsif v_kind = 'cut' and (p_outcome.cut_by is null or p_outcome.cut_by not in ('client', 'upstream')) then
    raise exception 'a cut''s cut_by must be client or upstream' using errcode = '22023';
  end if;
  if not (p_outcome.quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;
  return v_kind;
end
$$;

-- Whether an outcome asks for more than its rows (google_ai_rest_asked): a key out of rotation, a rest.
-- Most successes do not.
CREATE OR REPLACE FUNCTION public.google_ai_outcome_asks_rest(p_outcome public.google_ai_attempt_outcome)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  select coalesce(p_outcome.cooldown_until is not null or p_outcome.cooldown_until_provider_midnight
    or coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID'), false)
$$;

-- The attempt rows of outcomes (p_outcomes, their kinds checked: google_ai_outcome_kind, none withdrawn)
-- written in one statement: each open attempt of p_ids[n] takes p_outcomes[n]. Answers the rows written,
-- each at its call's index, null where the reservation is not open (a reservation named twice is
-- written by its first). The rows are found by their key whatever the log held when the connection
-- planned the statement (google_ai_finalize_calls says why: planned with sequential scans off).
CREATE OR REPLACE FUNCTION public.google_ai_write_attempts(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[])
    RETURNS public.google_ai_attempts[]
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_atts public.google_ai_attempts[];
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  with w as (
    update public.google_ai_attempts a set
      status = x.kind,
      finished_at = pg_catalog.clock_timestamp(),
      input_tokens = (x.o).input_tokens,
      output_tokens = (x.o).output_tokens,
      http_status = case when x.kind = 'cut' then coalesce((x.o).http_status, 200) else (x.o).http_status end,
      error_code = case when x.kind = 'cut' then 'stream_cut_by_' || (x.o).cut_by
                        else left((x.o).error_code, 200) end,
      quota_id = left((x.o).quota_id, 200),
      error_message = left((x.o).error_message, 1000),
      latency_ms = (x.o).latency_ms,
      quota_cause = (x.o).quota_cause,
      service_tier = left((x.o).service_tier, 20),
      served_tier = left((x.o).served_tier, 20),
      -- (greatest() ignores a null: a time not known stays null)
      added_ms = case when (x.o).added_ms is not null then greatest(0, (x.o).added_ms) end,
      first_byte_ms = case when (x.o).first_byte_ms is not null then greatest(0, (x.o).first_byte_ms) end,
      cached_input_tokens = (x.o).cached_input_tokens,
      thinking_tokens = (x.o).thinking_tokens,
      cache_write_1h_tokens = (x.o).cache_write_1h_tokens, cache_write_5m_tokens = (x.o).cache_write_5m_tokens,
      cost_usd = public.google_ai_call_cost(a.model, x.o)
    from (select distinct on (g.id) g.n, g.id, p_outcomes[g.n] as o,
            public.google_ai_outcome_kind(p_outcomes[g.n]) as kind
          from unnest(p_ids) with ordinality g(id, n) order by g.id, g.n) x
    -- (= any: the key read by index whatever join the plan makes)
    where a.reservation_id = any (p_ids) and a.reservation_id = x.id and a.status = 'reserved'
      and x.kind <> 'withdrawn'
    returning x.n, a)
  select array(select w.a from unnest(p_ids) with ordinality g(id, n) left join w on w.n = g.n order by g.n)
  into v_atts;
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  return v_atts;
end
$$;

-- Finalize's first half, every row but the counter row (google_ai_finalize_attempt): the outcome checked,
-- the attempt row written, a success recorded, the rest the outcome asks for. Its att: the row written,
-- whose admission google_ai_settle_call settles next; null where nothing is left to settle (not open,
-- or withdrawn: google_ai_withdraw_attempt settles its own). Several finalizes written together
-- (google_ai_finalize_calls) take the same steps a step at a time for all of them, before the first settle,
-- so their counter rows are held only for the settles.
CREATE OR REPLACE FUNCTION public.google_ai_write_outcome(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS public.google_ai_outcome_written
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if public.google_ai_outcome_kind(p_outcome) = 'withdrawn' then
    return row(null, public.google_ai_withdraw_attempt(p_reservation_id, p_outcome))::public.google_ai_outcome_written;
  end if;
  v_att := (public.google_ai_write_attempts(array[p_reservation_id], array[p_outcome]))[1];
  if v_att.id is null then
    return row(null, public.google_ai_not_open(p_reservation_id))::public.google_ai_outcome_written;
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if v_att.status in ('succeeded', 'cut') then
    perform public.google_ai_record_successes(array[v_att], array[p_outcome]);
  end if;
  if public.google_ai_outcome_asks_rest(p_outcome) then
    v_until := public.google_ai_rest_asked(v_att, p_outcome);
  end if;
  return row(v_att, jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until))
    ::public.google_ai_outcome_written;
end
$$;

-- A withdrawn model, in one transaction: the attempt row says 'withdrawn' (the provider's status, 404
-- when not said, its code, NOT_FOUND when not said, its sanitized message, the call's latency), the
-- reservation's capacity is given back as google_ai_release gives it (the admission leaves the minute
-- window and the day; the estimated tokens go back to a token's budget, its request stays counted: the
-- same request goes on to its chain's next model as a later attempt), and the model row is marked
-- withdrawn — once: a row already marked keeps the first time and message. successor: the model the
-- provider's answer names instead, as its dialect read it (a suggestion for the operator; another name
-- than the model's own). A reservation that is not open (finalized or released before) changes nothing
-- and is answered as google_ai_release answers it.
CREATE OR REPLACE FUNCTION public.google_ai_withdraw_attempt(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_outcome.error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = coalesce(p_outcome.http_status, 404),
    error_code = left(coalesce(p_outcome.error_code, 'NOT_FOUND'), 200),
    error_message = v_message,
    latency_ms = p_outcome.latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0,
    -v_att.estimated_tokens, -v_att.booked_usd, false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_outcome.successor) <> pg_catalog.lower(v_att.model)
                            then left(p_outcome.successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', found,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$$;

-- The entry llm-invoke writes an outcome through alone (store/pg-store.ts; successes go in batches,
-- 86_finalize_call.sql): p_outcome read as jsonb_populate_record reads it into
-- google_ai_attempt_outcome, so a key this database does not know yet is ignored and one the caller
-- does not send is null (an attribute added by db push before the functions deploy breaks nothing);
-- below here the outcome travels typed. Its answer: {ok, status, cooldown_until}, a cut's {ok, status},
-- a withdrawn model's {ok, status, model, marked, successor}, or google_ai_not_open's.
CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_finalize_attempt(p_reservation_id,
    pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, p_outcome));
end
$$;

-- Release: the call never reached Google, so the booking is given back (google_ai_settle_admission).
CREATE OR REPLACE FUNCTION public.google_ai_release(p_reservation_id uuid,
    p_reason text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_att public.google_ai_attempts;
begin
  update public.google_ai_attempts a set
    status = 'released',
    finished_at = pg_catalog.clock_timestamp(),
    error_message = left(p_reason, 1000)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)),
    -public.google_ai_request_counts(v_att.attempt) * v_att.requests, -v_att.estimated_tokens, -v_att.booked_usd,
    false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;
