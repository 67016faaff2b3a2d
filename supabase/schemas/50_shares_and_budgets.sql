-- Reserved shares and budgets: part of a model's RPM/RPD kept for a class or a caller, an owner's
-- day paced, the owners' use counted under the counter-row lock, and service callers' daily budgets.
-- Bodies are checked when called, not when created: a function may name one defined in a later file.
set check_function_bodies = off;

CREATE TABLE public.google_ai_caller_budgets (
    caller text NOT NULL,
    daily_max_requests integer,
    daily_max_tokens integer,
    day_bucket date,
    requests_today integer DEFAULT 0 NOT NULL,
    tokens_today bigint DEFAULT 0 NOT NULL,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_caller_budgets_caller_check CHECK (((caller ~ '^[A-Za-z0-9._:@-]{1,80}$'::text) AND (caller !~* '^client:'::text))),
    CONSTRAINT google_ai_caller_budgets_requests_check CHECK ((daily_max_requests >= 0)),
    CONSTRAINT google_ai_caller_budgets_tokens_check CHECK ((daily_max_tokens >= 0))
);

COMMENT ON TABLE public.google_ai_caller_budgets IS 'Requests and input tokens a service caller may book per Pacific day (null: no limit); requests_today and tokens_today are booked with each reservation. Refusal caller_budget until Pacific midnight.';

CREATE TABLE public.google_ai_quota_shares (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    model text NOT NULL,
    priority_class text,
    caller text,
    reserved_rpm integer,
    reserved_rpd integer,
    pace_burst integer,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_quota_shares_caller_check CHECK ((caller ~ '^[A-Za-z0-9._:@-]{1,80}$'::text)),
    CONSTRAINT google_ai_quota_shares_one_owner CHECK ((num_nonnulls(priority_class, caller) = 1)),
    CONSTRAINT google_ai_quota_shares_pace_check CHECK ((pace_burst >= 0)),
    CONSTRAINT google_ai_quota_shares_rpd_check CHECK ((reserved_rpd >= 0)),
    CONSTRAINT google_ai_quota_shares_rpm_check CHECK ((reserved_rpm >= 0)),
    CONSTRAINT google_ai_quota_shares_something CHECK ((num_nonnulls(reserved_rpm, reserved_rpd, pace_burst) >= 1))
);

COMMENT ON TABLE public.google_ai_quota_shares IS 'Per model, the requests of each quota group''s RPM/RPD kept for one owner (a priority class or a caller), and the optional pacing of the owner''s day (pace_burst; only for a model with an RPD). Others may book only what the owners'' unused shares leave over; an owner may use the whole limit.';

CREATE TABLE public.google_ai_share_usage (
    quota_group text NOT NULL,
    share_id bigint NOT NULL,
    window_requests integer DEFAULT 0 NOT NULL,
    day_bucket date,
    day_used integer DEFAULT 0 NOT NULL,
    day_next_used integer DEFAULT 0 NOT NULL,
    day_prev_used integer DEFAULT 0 NOT NULL
);

COMMENT ON TABLE public.google_ai_share_usage IS 'What each share''s owner used of a quota group, written only under that group''s counter-row lock.';

ALTER TABLE ONLY public.google_ai_caller_budgets
    ADD CONSTRAINT google_ai_caller_budgets_pkey PRIMARY KEY (caller);

ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_owner_key UNIQUE NULLS NOT DISTINCT (model, priority_class, caller);

ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.google_ai_share_usage
    ADD CONSTRAINT google_ai_share_usage_pkey PRIMARY KEY (quota_group, share_id);

ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_model_fkey FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_priority_class_fkey FOREIGN KEY (priority_class) REFERENCES public.google_ai_priority_classes(name) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY public.google_ai_share_usage
    ADD CONSTRAINT google_ai_share_usage_share_id_fkey FOREIGN KEY (share_id) REFERENCES public.google_ai_quota_shares(id) ON DELETE CASCADE;

CREATE INDEX IF NOT EXISTS google_ai_share_usage_share_idx ON public.google_ai_share_usage USING btree (share_id);

-- What is left of a budget (null: there is none), never below 0.
CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_max bigint, p_used bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when p_max is not null
                  then greatest(0, p_max operator(pg_catalog.-) coalesce(p_used, 0)) end $$;

-- What a paced owner may have used of Pacific day p_day at p_at: the burst, plus the part of the
-- usable requests that the elapsed part of the day (23, 24 or 25 hours) earns.
CREATE OR REPLACE FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer, p_usable integer) RETURNS integer
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select p_burst + floor(greatest(0, p_usable)::numeric
           * least(greatest(extract(epoch from p_at - d.s), 0), extract(epoch from d.e - d.s))
           / extract(epoch from d.e - d.s))::integer
  from (select (p_day::timestamp at time zone 'America/Los_Angeles') as s,
               ((p_day + 1)::timestamp at time zone 'America/Los_Angeles') as e) d
$$;

-- The first moment of Pacific day p_day at which the allowance reaches p_used + 1 (to the
-- microsecond, the clock's resolution); null when it does not within that day. The allowance at
-- s + e is burst + floor(usable x e / L), so it reaches need = p_used + 1 - burst at
-- e = ceil(need x L / usable), which lies within the day (e < L) exactly when need < usable.
CREATE OR REPLACE FUNCTION public.google_ai_pace_opens_at(p_day date, p_used integer, p_burst integer, p_usable integer) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select case when n.need <= 0 then d.s
              -- The allowance reaches burst + usable only at the day's end, which is the next day.
              when p_usable <= 0 or n.need >= p_usable then null
              else d.s + ceil(n.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / p_usable)
                         * interval '1 microsecond' end
  from (select (p_day::timestamp at time zone 'America/Los_Angeles') as s,
               ((p_day + 1)::timestamp at time zone 'America/Los_Angeles') as e) d,
       (select p_used + 1 - p_burst as need) n
$$;

-- What a requester may still use of a quota group, as the queue counts it (an unlocked read, like
-- the queue's): the times at which slots of the sliding window are free for it, counting requests
-- only — p_now once per slot free now, then the moment each admission whose leaving frees a slot
-- for it leaves (an owner's admission leaving frees a slot for its owner, not for the others) — and
-- the requests of today the others' day shares keep from it. Without shares kept from it: every
-- admission's leaving opens a slot, and nothing of the day is kept.
CREATE OR REPLACE FUNCTION public.google_ai_share_room(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_class text, p_caller text, OUT openings timestamp with time zone[], OUT day_held integer) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_ids bigint[];
  v_kept integer[];
  v_used integer[];
  v_count integer;
  v_free integer;
  v_room integer;
  v_held integer;
  v_adm record;
  v_day date := public.google_ai_pacific_day(p_now);
begin
  select coalesce(sum(greatest(0, s.reserved_rpd - case when u.day_bucket = v_day then u.day_used
                                                        when u.day_bucket = v_day - 1 then u.day_next_used
                                                        else 0 end)), 0)::integer
    into day_held
  from public.google_ai_quota_shares s
  left join public.google_ai_share_usage u on u.quota_group = p_quota_group and u.share_id = s.id
  where s.model = p_model and s.reserved_rpd is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  if p_rpm is null then
    return;
  end if;

  select array_agg(s.id order by s.id), array_agg(s.reserved_rpm order by s.id) into v_ids, v_kept
  from public.google_ai_quota_shares s
  where s.model = p_model and s.reserved_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  v_ids := coalesce(v_ids, '{}'); v_kept := coalesce(v_kept, '{}');
  select count(*) into v_count from public.google_ai_admissions a
  where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window;
  select coalesce(array_agg((select count(*) from public.google_ai_admissions a
                             where a.quota_group = p_quota_group and a.model = p_model
                               and a.admitted_at > p_now - p_window and i.id = any (a.share_ids))::integer
                            order by i.n), '{}')
    into v_used
  from unnest(v_ids) with ordinality as i(id, n);
  v_held := 0;
  for i in 1 .. cardinality(v_ids) loop
    v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
  end loop;
  v_free := greatest(0, p_rpm - v_count - v_held);
  openings := array_fill(p_now, array[v_free]);

  for v_adm in
    select a.admitted_at, a.share_ids from public.google_ai_admissions a
    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
    order by a.admitted_at, a.reservation_id
  loop
    v_count := v_count - 1;
    v_held := 0;
    for i in 1 .. cardinality(v_ids) loop
      if v_ids[i] = any (v_adm.share_ids) then
        v_used[i] := v_used[i] - 1;
      end if;
      v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
    end loop;
    v_room := greatest(0, p_rpm - v_count - v_held);
    if v_room > v_free then
      openings := openings || array_fill(v_adm.admitted_at + p_window, array[v_room - v_free]);
      v_free := v_room;
    end if;
  end loop;
end
$$;

-- When the sliding window has room again for one more request of p_tokens for a requester that does
-- not own some RPM shares: walking its admissions oldest first, the first moment the ones left, plus
-- what the other owners may still claim of their shares, leave a request over (an owner's admission
-- leaving gives its owner room, not the others). Without such shares: google_ai_window_reopens_at.
-- Null: never within the window (the shares kept from this requester cover the limit).
CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_ids bigint[];
  v_kept integer[];
  v_used integer[];
  v_left_requests integer;
  v_left_tokens bigint;
  v_held integer;
  v_adm record;
begin
  select array_agg(s.id order by s.id), array_agg(s.reserved_rpm order by s.id) into v_ids, v_kept
  from public.google_ai_quota_shares s
  where s.model = p_model and s.reserved_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));
  if v_ids is null or p_rpm is null then
    return public.google_ai_window_reopens_at(p_quota_group, p_model, p_now, p_window, p_rpm, p_tpm, p_tokens);
  end if;

  select count(*), coalesce(sum(a.tokens), 0) into v_left_requests, v_left_tokens
  from public.google_ai_admissions a
  where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window;
  select array_agg((select count(*) from public.google_ai_admissions a
                    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
                      and i.id = any (a.share_ids))::integer order by i.n)
    into v_used
  from unnest(v_ids) with ordinality as i(id, n);

  for v_adm in
    select a.admitted_at, a.tokens, a.share_ids from public.google_ai_admissions a
    where a.quota_group = p_quota_group and a.model = p_model and a.admitted_at > p_now - p_window
    order by a.admitted_at, a.reservation_id
  loop
    v_left_requests := v_left_requests - 1;
    v_left_tokens := v_left_tokens - v_adm.tokens;
    v_held := 0;
    for i in 1 .. cardinality(v_ids) loop
      if v_ids[i] = any (v_adm.share_ids) then
        v_used[i] := v_used[i] - 1;
      end if;
      v_held := v_held + greatest(0, v_kept[i] - v_used[i]);
    end loop;
    if v_left_requests + 1 + v_held <= p_rpm and (p_tpm is null or v_left_tokens + p_tokens <= p_tpm) then
      return v_adm.admitted_at + p_window;
    end if;
  end loop;
  return null;
end
$$;
