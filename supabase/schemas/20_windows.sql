-- Windows on Google's clock: the Pacific day, the sliding minute window (60 s plus a guard) over
-- google_ai_admissions, when a full window opens again, and the spread's schedule.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE public.google_ai_admission_settings (
    id boolean DEFAULT true NOT NULL,
    minute_guard_ms integer DEFAULT 1000 NOT NULL,
    day_guard_ms integer DEFAULT 5000 NOT NULL,
    recheck_ms integer DEFAULT 2000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_admission_settings_day_guard_ms_check
      CHECK (((day_guard_ms >= 0) AND (day_guard_ms <= 600000))),
    CONSTRAINT google_ai_admission_settings_minute_guard_ms_check
      CHECK (((minute_guard_ms >= 0) AND (minute_guard_ms <= 30000))),
    CONSTRAINT google_ai_admission_settings_one_row CHECK (id),
    CONSTRAINT google_ai_admission_settings_recheck_ms_check CHECK (((recheck_ms >= 100) AND (recheck_ms <= 60000)))
);

COMMENT ON TABLE public.google_ai_admission_settings IS
    'How far admission allows for Google''s clock: minute_guard_ms (>= the spread of network delays; the minute window '
    'is 60 s plus this), day_guard_ms (>= clock offset + delay at Pacific midnight), recheck_ms (how soon a TPM waiter '
    'asks again while tokens of its window may still be given back).';

CREATE TABLE public.google_ai_admissions (
    reservation_id uuid NOT NULL,
    quota_group text NOT NULL,
    model text NOT NULL,
    admitted_at timestamp with time zone NOT NULL,
    tokens integer NOT NULL,
    in_flight boolean DEFAULT true NOT NULL,
    day_guard smallint DEFAULT 0 NOT NULL,
    share_ids bigint[],
    class_rank smallint
);

COMMENT ON TABLE public.google_ai_admissions IS
    'Admissions of the last minute + guard per quota group and model (the sliding window); expired rows are removed by '
    'the next admission of their group. No caller data, no secrets.';

COMMENT ON COLUMN public.google_ai_admissions.class_rank IS
    'The rank of the priority class that made this admission (null: not known): the queue reads what the higher '
    'classes took of the window to tell a lower class whether its turn is likely within its wait.';

COMMENT ON COLUMN public.google_ai_admissions.share_ids IS
    'The shares whose owner made this admission: their window counts give it back when it leaves the window.';

ALTER TABLE ONLY public.google_ai_admission_settings
    ADD CONSTRAINT google_ai_admission_settings_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.google_ai_admissions
    ADD CONSTRAINT google_ai_admissions_pkey PRIMARY KEY (reservation_id);

CREATE INDEX IF NOT EXISTS google_ai_admissions_window_idx ON
    public.google_ai_admissions USING btree (quota_group, model, admitted_at);

CREATE OR REPLACE FUNCTION public.google_ai_admission_guard() RETURNS public.google_ai_admission_settings
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_settings public.google_ai_admission_settings;
begin
  select s.* into v_settings from public.google_ai_admission_settings s where s.id;
  if not found then
    v_settings := row(true, 1000, 5000, 2000, now())::public.google_ai_admission_settings;
  end if;
  return v_settings;
end
$$;

-- date_trunc with a time zone is STABLE, so the minute is too (an IMMUTABLE declaration over it kept
-- the planner from inlining it).
CREATE OR REPLACE FUNCTION public.google_ai_minute_window(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

-- The answer of finalize and release for a reservation that is not open (any more).
CREATE OR REPLACE FUNCTION public.google_ai_not_open(p_reservation_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id)));
end
$$;

-- Google's day: Pacific time, midnight to midnight (23, 24 or 25 hours). The zone is named here only.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_zone() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select 'America/Los_Angeles'::text $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone public.google_ai_pacific_zone())::pg_catalog.date $$;

-- The moment Pacific day p_day begins.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_start(p_day date) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_day::pg_catalog.timestamp at time zone public.google_ai_pacific_zone()) $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select public.google_ai_pacific_start(public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1) $$;

-- The day reopens after midnight plus the day guard (the first moments of a day still count for the
-- day before, on a clock that may lag ours).
CREATE OR REPLACE FUNCTION public.google_ai_reopens_at(p_limit text,
    p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
begin
  return (
    select case when p_limit = 'rpd'
                then public.google_ai_pacific_midnight_after(p_now)
                     + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
                else public.google_ai_minute_window(p_now) + interval '1 minute' end);
end
$$;

-- The spread of a model's window (p_burst: google_ai_model_limits.spread_burst): each quota group hands its
-- window out on a schedule (google_ai_usage_counters.spread_until, a GCRA "theoretical arrival
-- time"), one step per request: p_window / RPM, or the request's tokens' part of p_window / TPM when
-- that is longer (limit_name says which). Every booking moves it one step on (google_ai_spread_next);
-- while the spread holds (google_ai_spread_holds: requests wait), a request may be booked when the
-- schedule is at most tolerance = (spread_burst - 1) RPM steps ahead of now.
-- So under a flood at most spread_burst requests go at once, then one per step, and capacity comes
-- back to the window a request at a time instead of all at once a window later. Microseconds are
-- rounded up: the schedule never runs faster than the limit. All null: the model is not spread.
-- (PL/pgSQL: a SQL function that is not inlined is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_spread_step(p_burst integer, p_window interval, p_rpm integer,
    p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_window_us numeric := extract(epoch from p_window) * 1000000;
  v_request_us numeric;
  v_token_us numeric;
begin
  if p_burst is null or (p_rpm is null and p_tpm is null) then
    return;
  end if;
  v_request_us := case when p_rpm > 0 then ceil(v_window_us / p_rpm) end;
  v_token_us := case when p_tpm > 0 then ceil(v_window_us * greatest(p_tokens, 0) / p_tpm) end;
  limit_name := case when coalesce(v_token_us, 0) > coalesce(v_request_us, 0) then 'tpm' else 'rpm' end;
  step := greatest(v_request_us, v_token_us, 0) * interval '1 microsecond';
  tolerance := (p_burst - 1) * coalesce(v_request_us, greatest(v_token_us, 0)) * interval '1 microsecond';
end
$$;

-- The schedule after a booking at p_now: one step after the booking's place. A booking at most half a
-- step after its place (its waiter woke a little late) keeps the schedule's grid, so waking up late
-- does not cost the window capacity under sustained demand; one later than that (the schedule fell
-- behind: nobody asked) starts it again from now. Null step: not spread (null). STABLE, as timestamptz
-- minus an interval is: so it is inlined into the booking's statement, not called.
CREATE OR REPLACE FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone,
    p_now timestamp with time zone, p_step interval) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case
    when p_spread_until operator(pg_catalog.>=) (p_now operator(pg_catalog.-) (p_step operator(pg_catalog./) 2))
              then p_spread_until else p_now end operator(pg_catalog.+) p_step
$$;

-- When the sliding window has room again for one more request of p_tokens under both limits: when
-- the shortest run of its oldest admissions that frees enough has left it (admitted_at + window).
CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_at(p_quota_group text, p_model text,
    p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer,
    p_tokens integer) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select min(a.admitted_at) + p_window
    from (
      select w.admitted_at,
             count(*) over () - row_number() over (order by w.admitted_at, w.reservation_id) as left_requests,
             sum(w.tokens) over () - sum(w.tokens) over (order by w.admitted_at, w.reservation_id) as left_tokens
      from public.google_ai_admissions w
      where w.quota_group = p_quota_group and w.model = p_model and w.admitted_at > p_now - p_window
    ) a
    where (p_rpm is null or a.left_requests + 1 <= p_rpm)
      and (p_tpm is null or a.left_tokens + p_tokens <= p_tpm));
end
$$;

-- Milliseconds from p_now until p_at, rounded up (a caller that waits that long is not early); 0 if past,
-- null if there is no such time (greatest alone would turn a null into 0).
CREATE OR REPLACE FUNCTION public.google_ai_ms_until(p_at timestamp with time zone,
    p_now timestamp with time zone) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when p_at is not null
                      then greatest(0, pg_catalog.ceil(extract(epoch from (p_at operator(pg_catalog.-) p_now))
                                                       operator(pg_catalog.*) 1000))::bigint end $$;
