-- Quota you can see: what a reservation's answer carries (google_ai_answer_quota, read in the
-- reservation's own statement) and the quota route's report per model and credential.
set check_function_bodies = off;

-- What llm-invoke calls, beside the reservation in one statement. Seeing the quota must never cost
-- an admission: an error here would roll the reservation back with it, so the function only reads,
-- and reads its input without a cast that could fail (an answer it cannot read is "no quota known").
-- Not an exception block: its subtransaction would cost more than the whole read (measured ~150 µs).
CREATE OR REPLACE FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[]) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_answer_quota_at(null, p_answer, p_model, p_exclude_key_ids);
end
$$;

COMMENT ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) IS
    'The quota a reservation''s answer carries (llm-invoke''s '
    'x-ratelimit-* headers): called in the reservation''s own statement.';

-- For a reservation's answer (google_ai_reserve_models): the quota of the group it booked, as
-- of the booking (this request counted); for a refusal, of the model asked on its best candidate
-- group (the one that could admit soonest, then the one with most left). Null when no model or group
-- is known (an unknown model, a token refused before the quota, no key for the model).
-- VOLATILE on purpose: called in the reservation's own statement, it must see what the reservation
-- wrote (a stable function would read the statement's starting snapshot).
CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb,
    p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[]) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits public.google_ai_model_limits;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}'::jsonb;
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  v_limits := public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model));
  if v_limits.model is null then
    return null;
  end if;

  -- (A row that follows its provider: the group's limits as the provider stated them for it.)
  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    if v_limits.provider_limits = 'follow' then
      v_limits := public.google_ai_group_limits(v_limits, v_group);
    end if;
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.*, (e.l).rpm as rpm, (e.l).tpm as tpm, (e.l).rpd as rpd into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral (select case when v_limits.provider_limits = 'follow'
                                    then public.google_ai_group_limits(v_limits, g.quota_group)
                                    else v_limits end as l) e
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, (e.l).rpm, (e.l).tpm,
                                                     (e.l).rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
    v_limits.rpm := v_quota.rpm; v_limits.tpm := v_quota.tpm; v_limits.rpd := v_quota.rpd;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model,
      v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    -- (google_ai_group_quota leaves a limit's reset null where the model has no such limit: so is its ms.)
    'requests_reset_ms', public.google_ai_ms_until(v_quota.requests_reset_at, v_now),
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', public.google_ai_ms_until(v_quota.tokens_reset_at, v_now),
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', public.google_ai_ms_until(v_quota.day_reset_at, v_now))
    || v_kept;
end
$$;

-- What a model's shares keep, as one requester (class p_class, caller p_caller) sees them: per quota
-- group, the requests of the RPM and of the RPD kept for other owners (rpm_for_others, rpd_for_others:
-- this requester books only what their unused part leaves over) and those kept for it, its class's
-- share and its own (rpm_for_you, rpd_for_you). Share sizes, not what is unused of them; each at most
-- the effective limit given (p_rpm, p_rpd); null for a limit the model does not have.
CREATE OR REPLACE FUNCTION public.google_ai_quota_kept(p_model text,
    p_rpm integer, p_rpd integer, p_class text, p_caller text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select public.google_ai_kept_object(p_rpm, p_rpd,
             sum(s.reserved_rpm) filter (where not o.own), sum(s.reserved_rpm) filter (where o.own),
             sum(s.reserved_rpd) filter (where not o.own), sum(s.reserved_rpd) filter (where o.own))
    from public.google_ai_quota_shares s
    cross join lateral (select coalesce(s.priority_class = p_class,
      false) or coalesce(s.caller = p_caller, false) as own) o
    where s.model = p_model);
end
$$;

-- The cause of the model's cooldown that ends first among the quota groups resting for it that an
-- active key serving the model belongs to (google_ai_serving_keys: the groups the refusal was about, so
-- never the rest of an inactive or deleted key's organization); the one a refusal's retry_after_ms is
-- about. Null: none rests, or its rest has no cause recorded.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown_cause(p_model text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
begin
  return (
    select c.cause
    from public.google_ai_cooldowns c
    where c.model = v_model
      and c.cooldown_until > pg_catalog.clock_timestamp()
      and c.quota_group in (select s.quota_group from public.google_ai_serving_keys(v_model, '{}') s)
    order by c.cooldown_until, c.quota_group
    limit 1);
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text) IS
    'Why a model''s first-ending cooldown rests (a quota cause: docs/google-429s.md): read in the reservation''s '
    'statement when it refuses with limit cooldown.';

-- A chain's steps (fallback_from: {model, limit, cause, retry_after_ms}) with each model passed over for
-- a rest saying that rest's own cause (google_ai_cooldown_cause: money, a spend cap, a day, ...), as the
-- refusal itself says its first-back model's; a rest with no cause recorded keeps upstream_cooldown.
CREATE OR REPLACE FUNCTION public.google_ai_step_causes(p_steps jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select coalesce(jsonb_agg(case when s.step ->> 'limit' = 'cooldown'
                                   then s.step || jsonb_build_object('cause', coalesce(
                                     public.google_ai_cooldown_cause(p_model => s.step ->> 'model'),
                                     s.step ->> 'cause'))
                                   else s.step end order by s.i), '[]'::jsonb)
    from jsonb_array_elements(p_steps) with ordinality s(step, i));
end
$$;

COMMENT ON FUNCTION public.google_ai_step_causes(p_steps jsonb) IS
    'A refusal''s or answer''s fallback_from steps, each cooldown step naming its own rest''s cause: read in the '
    'reservation''s statement.';

-- What is left in one quota group for a model at p_now under the effective limits given (null limit:
-- none, its fields null), and when each figure next grows. ready_at: the earliest moment the group
-- could admit one more request (used to pick the best group for a refusal). An unlocked read.
CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer,
    p_rpd integer, p_now timestamp with time zone, OUT requests_left integer,
    OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint,
    OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone,
    OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of p_now, in the provider's day
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute and the day, counted as google_ai_book_group counts them (google_ai_counter_at): the ring
  -- moved on to p_now, the next to leave the window its oldest seconds; within the guard of a midnight
  -- the other day's count binds too.
  v_at := public.google_ai_counter_at(v_row, public.google_ai_day_zone(p_model), p_now, false);
  if p_rpm is not null then
    requests_left := greatest(0, p_rpm - v_at.sum_requests);
    requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute), p_now);
  end if;
  if p_tpm is not null then
    tokens_left := greatest(0, p_tpm - v_at.sum_tokens);
    tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute, true), p_now);
  end if;
  if p_rpd is not null then
    day_left := greatest(0, p_rpd - greatest(v_at.counts[1], case when v_at.near_end then v_at.counts[2] else 0 end,
                                             case when v_at.near_start then v_at.counts[3] else 0 end));
    day_reset_at := case when v_at.near_start and v_at.counts[3] > v_at.counts[1] then v_at.day_start
                         else v_at.midnight end + v_at.day_guard;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_at.midnight then
      day_left := 0; -- the provider's per-day refusal: the cooldown lasts until its midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$$;

-- The token buckets one quota group has for a model whose row counts input and output apart (itpm,
-- otpm; p_limits after the margin: google_ai_request_limits), on the counter row it books (its pool's,
-- limit_pool, or its own): what each holds at p_now (google_ai_bucket_take's bucket: what a request could
-- take now, its size less what is still refilling, rounded down, never more than a booking would take)
-- and when it is full again (p_now when full), 0 while a cooldown rests the group (full at the cooldown's
-- end at the earliest). Null for a limit the row does not have. An unlocked read, as google_ai_group_quota's.
CREATE OR REPLACE FUNCTION public.google_ai_group_token_room(p_quota_group text,
    p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint,
    OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone)
    RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval;
  v_row public.google_ai_usage_counters;
  v_rest timestamptz;
  v_left bigint[];
  v_full timestamptz[];
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  select array_agg(case when b.size is null then null when v_rest is not null then 0
                        else greatest(0, floor(greatest(floor(b.size * coalesce(p_limits.bucket_share, 1)), 1)
                          - extract(epoch from b.full_at - p_now) * b.size / extract(epoch from v_window))) end
                   order by b.i),
         array_agg(case when b.size is not null then greatest(b.full_at, v_rest) end order by b.i)
  into v_left, v_full
  from (values (1, greatest(v_row.input_until, p_now), p_limits.itpm),
               (2, greatest(v_row.output_until, p_now), p_limits.otpm)) b(i, full_at, size);
  select v_left[1], v_full[1], v_left[2], v_full[2] into input_left, input_full_at, output_left, output_full_at;
end
$$;

-- What one quota group has of a model now, as the admission counts it (google_ai_group_quota on the
-- model's effective limits in the group, google_ai_stored_group_limits: a following row's are those its
-- provider stated; at the database's clock): the requests and tokens in the sliding window, and what
-- the next request could book (0 while a cooldown rests the group); for a row that counts input
-- and output apart (itpm, otpm), what its token buckets hold (google_ai_group_token_room). The usage view's
-- figures (google_ai_usage_now); callable by service_role, which may not give google_ai_group_quota a clock.
CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer,
    OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer,
    OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone,
    OUT input_tokens_left bigint, OUT output_tokens_left bigint) RETURNS record
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits := public.google_ai_stored_group_limits(v_limits, p_quota_group);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  select coalesce(r.sum_requests, 0), coalesce(r.sum_tokens, 0) into requests_used, tokens_used
  from public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0)) r;
  select q.requests_left, q.tokens_left, q.day_left, least(q.requests_reset_at, q.tokens_reset_at), q.ready_at
    into requests_left, tokens_left, day_left, window_frees_at, ready_at
  from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  select t.input_left, t.output_left into input_tokens_left, output_tokens_left
  from public.google_ai_group_token_room(p_quota_group, v_limits, v_now) t;
end
$$;

-- One model over all quota groups that may serve it: what is left of the minute (groups cooling
-- down count 0) and of its provider's day, when each sum next grows, and the queue per class; each group
-- under its effective limits (a row that follows its provider: those it stated for the group).
CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_limits public.google_ai_model_limits;
  v_sum record;
  v_bucket_limits jsonb := '{}'::jsonb;
  v_bucket_minute jsonb := '{}'::jsonb;
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at,
         max(e.rpm) as rpm, max(e.tpm) as tpm, max(e.rpd) as rpd
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  -- (A row that follows its provider: each group's limits as the provider stated them for it.)
  cross join lateral (select (f.l).rpm, (f.l).tpm, (f.l).rpd
                      from (select case when v_limits.provider_limits = 'follow'
                                        then public.google_ai_group_limits(v_limits, g.quota_group)
                                        else v_limits end as l) f) e(rpm, tpm, rpd)
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, e.rpm, e.tpm, e.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object('model', v_limits.model,
    -- (The effective limits: a row that follows its provider, the largest of its groups'.)
    'limits', jsonb_build_object('rpm', coalesce(v_sum.rpm, v_limits.rpm), 'tpm', coalesce(v_sum.tpm, v_limits.tpm),
                                 'rpd', coalesce(v_sum.rpd, v_limits.rpd)) || v_bucket_limits,
    'quota_groups', v_sum.groups, 'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
end
$$;

-- The quota report's `budget` at p_now: a token's own (p_token; null for a service caller) and the
-- day's and month's of whoever owns the budgets (p_owner: the token's client, or a service caller's row;
-- null when it has none, so no budget in money and no spend), each from its row as stored
-- (google_ai_budget_left), whose budgets in money apply (usd_applies_to), and under `spend` the running
-- totals in money of the Pacific day and month (calls in flight at their worst case).
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_budget(p_now timestamp with time zone,
    p_token public.google_ai_tokens, p_owner public.google_ai_budget) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select jsonb_build_object(
    'token_requests_left', t.requests, 'token_tokens_left', t.tokens, 'token_expires_at', p_token.expires_at,
    'token_max_usd', p_token.max_usd, 'token_usd_left', t.usd,
    'usd_applies_to', case when p_token.id is not null then 'client' when p_owner.period is not null then 'caller' end,
    'daily_requests_left', o.requests, 'daily_tokens_left', o.tokens,
    'daily_resets_at', case when num_nonnulls(p_owner.max_requests, p_owner.max_tokens) > 0
                            then public.google_ai_pacific_midnight_after(p_now) end,
    'daily_max_usd', p_owner.max_usd, 'daily_usd_left', o.usd,
    'monthly_max_usd', p_owner.monthly_max_usd, 'monthly_usd_left', o.month_usd,
    'spend', case when p_owner.period is not null then jsonb_build_object('today_usd', (b.owner).spent_usd,
                                                                   'month_usd', (b.owner).spent_month_usd) end)
  from (select public.google_ai_pacific_day(p_now) as day) d
  cross join lateral (select public.google_ai_budget_on(p_owner, d.day) as owner) b
  cross join lateral public.google_ai_budget_left(public.google_ai_budget_of(p_token), d.day) t
  cross join lateral public.google_ai_budget_left(p_owner, d.day) o
$$;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report(p_token_hash text DEFAULT NULL::text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select public.google_ai_quota_report_at(null, p_token_hash, p_caller) $$;

COMMENT ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) IS
    'GET llm-invoke/v1/quota: per model the caller may use, what is left of the minute and the day over all quota '
    'groups, the queue per class, and the caller''s budgets.';

-- A model's limits beside its provider's, each quota group's (google_ai_stated_limits): for the quota
-- route's service key, which may see every group; a scoped token sees the effective limits alone.
CREATE OR REPLACE FUNCTION public.google_ai_provider_limits_of(p_model text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('quota_group', d.quota_group, 'limit', d.limit_name,
           'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'effective', d.effective_limit, 'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.model = p_model
$$;

-- The quota route's report at p_now (google_ai_quota_report): per model, the minute and the day
-- over all quota groups, the queue, the caller's budgets, each model's `cooldowns` (with their cause)
-- and `kept` (what its shares keep for others and for this caller, google_ai_quota_kept),
-- and the models Google withdrew (`withdrawn`: when, Google's message, the successor, the shutdown date);
-- for a service caller, each model's `provider_limits` (google_ai_provider_limits_of).
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_models text[];           -- a token's models (google_ai_token_models; empty: none)
  v_every_model boolean := p_token_hash is null;  -- a service caller's: every model, said apart, not by a null list
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner public.google_ai_budget;  -- the token's client's or the service caller's (null: none)
  v_budget jsonb;
  v_refused text;  -- why the token can never be admitted
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    v_refused := public.google_ai_token_refusal(v_token, v_client, v_now);
    if v_refused is not null then
      return jsonb_build_object('ok', false, 'status', v_refused);
    end if;
    v_models := public.google_ai_token_models(v_token, v_client);
    v_owner := public.google_ai_budget_of(v_client);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: v_owner stays null.
    v_owner := (select public.google_ai_budget_of(b) from public.google_ai_caller_budgets b where b.caller = p_caller);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;
  v_budget := public.google_ai_quota_report_budget(v_now, v_token, v_owner);

  return jsonb_build_object('ok', true, 'as_of', v_now, 'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    -- Each active model the caller may use (v_models, or every one: v_every_model), in model order: its provider, the
    -- minute, the day and the queue (google_ai_model_quota), its cooldowns (the quota groups' names, Google
    -- project ids and key:<uuid>, only for a service caller: a token's caller sees each cause and end, not
    -- whose project rests) and what its shares keep (google_ai_quota_kept).
    'models', (
      select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('provider', l.provider,
                            'cooldowns', (
                              select coalesce(jsonb_agg(to_jsonb(c) - case when p_token_hash is null then ''
                                                                            else 'quota_group' end
                                                        order by c.cooldown_until, c.quota_group), '[]')
                              from (select cd.quota_group, cd.cause, cd.cooldown_until,
                                           public.google_ai_ms_until(cd.cooldown_until, v_now) as retry_after_ms
                                    from public.google_ai_cooldowns cd
                                    where cd.model = l.model and cd.cooldown_until > v_now) c),
                            'kept', public.google_ai_quota_kept(l.model,
                              public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class,
                              v_owner_caller))
                       -- The row's limits beside its provider's, per group, to the service key alone.
                       || case when p_token_hash is null then jsonb_build_object('provider_limits',
                            public.google_ai_provider_limits_of(l.model)) else '{}' end
                       order by l.model), '[]')
      from public.google_ai_model_limits l
      where l.is_active and (v_every_model or l.model = any (v_models))),
    -- The models their provider withdrew among those (which provider, when, its message, the successors,
    -- the shutdown date).
    'withdrawn', (
      select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
      from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
                   l.shutdown_date
            from public.google_ai_model_limits l
            where l.withdrawn_at is not null and (v_every_model or l.model = any (v_models))) w));
end
$$;
