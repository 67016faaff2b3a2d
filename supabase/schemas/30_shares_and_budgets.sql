-- Reserved shares: part of a model's RPM/RPD kept for a class or a caller, an owner's day paced, the
-- owners' use counted under the counter-row lock; and an admission settled when its attempt ends
-- (capacity given back at once, the shares' too). Budgets: 32_budgets.sql.
set check_function_bodies = off;

CREATE TABLE public.google_ai_quota_shares (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL PRIMARY KEY,
    model text NOT NULL REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE,
    priority_class text REFERENCES public.google_ai_priority_classes(name) ON UPDATE CASCADE ON DELETE CASCADE,
    caller text CHECK (caller ~ '^[A-Za-z0-9._:@-]{1,80}$'),
    reserved_rpm integer,
    reserved_rpd integer,
    pace_burst integer,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    derived_from_class boolean DEFAULT false NOT NULL,
    CONSTRAINT google_ai_quota_shares_owner_key UNIQUE NULLS NOT DISTINCT (model, priority_class, caller),
    CONSTRAINT google_ai_quota_shares_one_owner CHECK ((num_nonnulls(priority_class, caller) = 1)),
    CONSTRAINT google_ai_quota_shares_pace_check CHECK ((pace_burst >= 0)),
    CONSTRAINT google_ai_quota_shares_rpd_check CHECK ((reserved_rpd >= 0)),
    CONSTRAINT google_ai_quota_shares_rpm_check CHECK ((reserved_rpm >= 0)),
    CONSTRAINT google_ai_quota_shares_something CHECK ((num_nonnulls(reserved_rpm, reserved_rpd, pace_burst) >= 1))
);

COMMENT ON TABLE public.google_ai_quota_shares IS
    'Per model, the requests of each quota group''s RPM/RPD kept for one owner (a priority class or a caller), and the '
    'optional pacing of the owner''s day (pace_burst; only for a model with an RPD). Others may book only what the '
    'owners'' unused shares leave over; an owner may use the whole limit.';

COMMENT ON COLUMN public.google_ai_quota_shares.derived_from_class IS
    'True: the row is the class''s kept percents applied to the model (google_ai_priority_classes.kept_rpm_percent, '
    'kept_rpd_percent), kept in step by triggers. An operator''s edit of the row makes it the operator''s (false); '
    'setting it back to true re-derives it.';

-- What a model's shares keep, as an answer's quota names it: of the RPM and of the RPD, the sizes of
-- the shares kept for other owners and of those kept for the requester, each at most the limit; null
-- for a limit the model does not have.
CREATE OR REPLACE FUNCTION public.google_ai_kept_object(p_rpm integer, p_rpd integer, p_rpm_for_others bigint,
    p_rpm_for_you bigint, p_rpd_for_others bigint, p_rpd_for_you bigint) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select jsonb_build_object(
    'rpm_for_others', case when p_rpm is not null then least(p_rpm, coalesce(p_rpm_for_others, 0)) end,
    'rpm_for_you', case when p_rpm is not null then least(p_rpm, coalesce(p_rpm_for_you, 0)) end,
    'rpd_for_others', case when p_rpd is not null then least(p_rpd, coalesce(p_rpd_for_others, 0)) end,
    'rpd_for_you', case when p_rpd is not null then least(p_rpd, coalesce(p_rpd_for_you, 0)) end)
$$;

-- What a paced owner may have used of day p_day (its provider's, in zone p_zone) at p_at: the burst,
-- plus the part of the usable requests that the elapsed part of the day (23, 24 or 25 hours) earns.
CREATE OR REPLACE FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer, p_zone text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select p_burst + floor(greatest(0, p_usable)::numeric
             * least(greatest(extract(epoch from p_at - d.s), 0), extract(epoch from d.e - d.s))
             / extract(epoch from d.e - d.s))::integer
    from (select public.google_ai_day_start_in(p_day, p_zone) as s,
                 public.google_ai_day_start_in(p_day + 1, p_zone) as e) d);
end
$$;

-- A class's default share: its kept percents (google_ai_priority_classes.kept_rpm_percent,
-- kept_rpd_percent) applied to every model, held as ordinary share rows marked derived_from_class,
-- so the booking reads them like any other share. Triggers keep them in step: a model inserted or
-- its limits changed re-derives its rows, a percent changed re-derives the class's rows on every
-- model, and an operator's edit of a derived row makes it the operator's.

-- The requests a percent keeps of an effective limit: rounded down, but at least 1 request (10% of
-- 5 RPM keeps 1, not 0), and below 100% never the whole limit, so that others keep at least 1 (a
-- limit of 1 keeps nothing); null without a percent or without a limit.
CREATE OR REPLACE FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
  select case when p_limit is null or p_percent is null then null
              when p_percent >= 100 then greatest(p_limit, 0)
              when p_limit <= 1 then 0
              else least(p_limit - 1, greatest(1, floor(p_limit * p_percent / 100)))::integer end
$$;

-- The derived share rows the kept percents call for: per model (p_model, or every model when null)
-- and class (p_class, or every class when null), what the class keeps of the model's effective
-- RPM and RPD (null: nothing of that limit). A pair keeping nothing of either has no row.
CREATE OR REPLACE FUNCTION public.google_ai_derived_shares(p_model text, p_class text) RETURNS TABLE(model text,
    priority_class text, reserved_rpm integer, reserved_rpd integer)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd
  from (select l.model, c.name as priority_class,
               public.google_ai_kept_requests(public.google_ai_effective_limit(l.rpm, l.safety_margin),
                                              c.kept_rpm_percent) as reserved_rpm,
               public.google_ai_kept_requests(public.google_ai_effective_limit(l.rpd, l.safety_margin),
                                              c.kept_rpd_percent) as reserved_rpd
        from public.google_ai_model_limits l
        cross join public.google_ai_priority_classes c
        where (p_model is null or l.model = p_model) and (p_class is null or c.name = p_class)) d
  where d.reserved_rpm is not null or d.reserved_rpd is not null
$$;

-- The derived shares follow what they derive from. Before a class's kept percents are written (set or
-- cleared): when, for the seed (kept_changed_at). After the write, the derived rows of the model
-- (inserted, or its limits or safety margin changed: v_model), or of the class on every model (v_class),
-- are brought in step: a derived row is updated, or removed when the class keeps nothing of the model any
-- more, and a missing one is inserted; a row the operator owns for the same model and class
-- (derived_from_class false) is left as it is, and none is derived beside it. A share's owner counts
-- (google_ai_usage_counters.share_use) stay with its row; a removed row's are no longer read.
CREATE OR REPLACE FUNCTION public.google_ai_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text;
  v_class text;
begin
  if tg_when = 'BEFORE' then
    if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
       or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                               is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
      new.kept_changed_at := pg_catalog.now();
    end if;
    return new;
  elsif tg_table_name = 'google_ai_model_limits' then
    v_model := new.model;
  else
    v_class := new.name;
  end if;
  -- Tells the shares' trigger that these writes are the derivation's, not an operator's edit.
  perform pg_catalog.set_config('google_ai.deriving_shares', 'on', true);
  delete from public.google_ai_quota_shares s
  where s.derived_from_class
    and (v_model is null or s.model = v_model) and (v_class is null or s.priority_class = v_class)
    and not exists (select 1 from public.google_ai_derived_shares(s.model, s.priority_class));
  update public.google_ai_quota_shares s set reserved_rpm = d.reserved_rpm, reserved_rpd = d.reserved_rpd
  from public.google_ai_derived_shares(v_model, v_class) d
  where s.derived_from_class and s.model = d.model and s.priority_class = d.priority_class and s.caller is null
    and (s.reserved_rpm, s.reserved_rpd) is distinct from (d.reserved_rpm, d.reserved_rpd);
  insert into public.google_ai_quota_shares (model, priority_class,
    reserved_rpm, reserved_rpd, derived_from_class, notes)
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd, true,
         'Derived from the class''s kept percents (google_ai_priority_classes); an edit makes the row the operator''s.'
  from public.google_ai_derived_shares(v_model, v_class) d
  on conflict on constraint google_ai_quota_shares_owner_key do nothing;
  perform pg_catalog.set_config('google_ai.deriving_shares', '', true);
  return null;
end
$$;

-- A write to a share row that is not the derivation's: an edit of a derived row's numbers makes the
-- row the operator's (derived_from_class false: no later derivation touches it); a model or class
-- renamed (the foreign keys' cascade) leaves it derived. A row marked derived by the operator
-- (inserted so, or set back to true) takes the class's numbers now.
CREATE OR REPLACE FUNCTION public.google_ai_share_edited() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_derived record;
begin
  if coalesce(pg_catalog.current_setting('google_ai.deriving_shares', true), '') = 'on' then
    return new;
  end if;
  if tg_op = 'UPDATE' and old.derived_from_class and new.derived_from_class then
    if (new.reserved_rpm, new.reserved_rpd, new.pace_burst)
       is distinct from (old.reserved_rpm, old.reserved_rpd, old.pace_burst) then
      new.derived_from_class := false;
    end if;
    return new;
  end if;
  if new.derived_from_class then
    select * into v_derived from public.google_ai_derived_shares(new.model, new.priority_class) d
    where new.caller is null;
    if not found then
      raise exception using errcode = '23514', message = 'a derived share belongs to a class that keeps part of the '
        || 'model (google_ai_priority_classes.kept_rpm_percent, kept_rpd_percent); this one keeps nothing of '
        || new.model;
    end if;
    new.reserved_rpm := v_derived.reserved_rpm;
    new.reserved_rpd := v_derived.reserved_rpd;
    new.pace_burst := null;
  end if;
  return new;
end
$$;

CREATE OR REPLACE TRIGGER google_ai_model_derives_shares AFTER INSERT OR UPDATE OF rpm, rpd,
    safety_margin ON public.google_ai_model_limits FOR EACH ROW EXECUTE FUNCTION public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_kept_changed BEFORE INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION
    public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_derives_shares AFTER INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW
    EXECUTE FUNCTION public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_share_edited BEFORE INSERT OR UPDATE ON public.google_ai_quota_shares FOR EACH ROW
    WHEN (new.derived_from_class) EXECUTE FUNCTION public.google_ai_share_edited();

-- The shares' use (google_ai_usage_counters.share_use) with a request more or less counted for the
-- shares of p_owned, in their window (google_ai_ring_at) and in their group's day. p_at: the counter as
-- of the booking or the admission (google_ai_counter_at): its instant (at), window (minute), day (day;
-- the other day's counts too within a guard of midnight: near_end, near_start). A booking (p_requests: 1,
-- or a request's several at its provider, google_ai_attempts.requests) at p_at.at moves each owner's day
-- on to p_at.day; p_live: the model's shares in id order, whose elements the result keeps (a removed
-- share's go). A release (p_live null: every element is kept) gives back p_requests (-its requests, or 0
-- for an admission the window does not look for) in the second of its admission p_at.at, and as many of
-- a day still counted (p_at.day: its day_bucket; one when the window does not look for it).
CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[],
    p_owned bigint[], p_at public.google_ai_counter_at, p_requests integer) RETURNS public.google_ai_share_use[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_day_requests integer := p_requests;
  v_at timestamptz := p_at.at;  -- a booking's: the ring moves on to it
  v_admitted_at timestamptz;  -- a release's
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- A release. (The ids apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
    v_day_requests := case when p_requests < 0 then p_requests else -1 end;
    v_admitted_at := v_at;
    v_at := null;
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (v_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    -- (A booking moves the ring on, keeping its fields loose; a release corrects its admission's second.)
    v_ring := case when v_admitted_at is null
                   then public.google_ai_ring_at(v_at, p_at.minute, v_old.ring_low, v_old.ring, v_old.window_requests,
                          null, p_requests, 0)
                   else public.google_ai_ring_counted(row(v_old.ring_low, v_old.ring, v_old.window_requests,
                          null)::public.google_ai_ring, p_at.minute, v_admitted_at, p_requests, 0, true) end;
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if v_day_requests > 0 or v_old.day_bucket = p_at.day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_at.day);
      v_new.day_bucket := p_at.day;
      v_new.day_used := greatest(0, v_days[1] + v_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_at.near_end then v_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_at.near_start then v_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$$;

-- Settles an admission on its counter row: finalize sets its tokens to Google's count (p_tokens),
-- release gives back the request (its requests: google_ai_attempts.requests) in its minute, day and window
-- (and in its owners' shares), and a
-- model's token buckets get back what the call did not use (google_ai_admission_settled), on the row of its
-- pool when it names one (google_ai_model_limits.limit_pool). The window is corrected in the second the
-- admission counts in (google_ai_attempts.admitted_at) while that second is still in the ring; one that left
-- it changes only the calendar counters. The row is locked, settled in hand and written
-- (google_ai_write_settled); several finalizes written together settle theirs in hand and write each row once
-- (google_ai_finalize_calls).
CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer,
    p_released boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model)
  for update;
  if not found then
    return;
  end if;
  perform public.google_ai_write_settled(public.google_ai_admission_settled(v_row, v_model, p_att, p_tokens,
    p_released));
end
$$;

-- The counter row p_row (p_att's, locked) with p_att settled at p_tokens (released: given back whole), as
-- google_ai_settle_admission says, computed on the row in hand and not written. p_model: p_att's model row.
CREATE OR REPLACE FUNCTION public.google_ai_admission_settled(p_row public.google_ai_usage_counters,
    p_model public.google_ai_model_limits, p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -p_att.requests else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  v_window_us numeric;
  -- The tokens a bucket gets back: what was booked less what was used.
  v_input_back integer;
  v_output_back integer;
  v_new public.google_ai_usage_counters := p_row;
begin
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(p_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  v_at.day := p_att.day_bucket;  -- (the day it counted in, which its owners' shares give back: its row's)
  -- The token buckets (itpm, otpm: google_ai_schedule_place) get back what the admission booked (its answer,
  -- booked_output_tokens, and its input, the rest of estimated_tokens where the row books answers in its
  -- tokens) less what the call used, as Anthropic corrects its estimates at the end: the answer's input (its
  -- cache reads left out unless the row counts them) and output. Released: all of it. No count from the
  -- provider: the input stays, the answer goes back when the settled count (p_tokens) gave it back (a call
  -- refused before generating). A call that used more than it booked takes nothing more. What goes back
  -- moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was taken; no limit
  -- (after the margin, as the booking took it: google_ai_request_limits), or nothing back: as it was.
  if p_att.booked_output_tokens is not null then
    v_input_back := p_att.estimated_tokens - case when p_model.booked_output_tokens is not null
                                                  then p_att.booked_output_tokens else 0 end;
    v_output_back := p_att.booked_output_tokens;
    if not p_released and p_att.input_tokens is not null then
      v_input_back := v_input_back - (p_att.input_tokens
        - case when p_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end);
      v_output_back := v_output_back - coalesce(p_att.output_tokens, 0);
    elsif not p_released then
      v_input_back := 0;
      v_output_back := case when p_tokens < p_att.estimated_tokens then v_output_back else 0 end;
    end if;
    p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
    p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
    v_window_us := extract(epoch from v_at.minute) * 1000000;
    if p_model.itpm is not null and coalesce(v_input_back, 0) > 0 then
      v_new.input_until := p_row.input_until
        - floor(v_window_us * v_input_back / p_model.itpm) * interval '1 microsecond';
    end if;
    if p_model.otpm is not null and coalesce(v_output_back, 0) > 0 then
      v_new.output_until := p_row.output_until
        - floor(v_window_us * v_output_back / p_model.otpm) * interval '1 microsecond';
    end if;
  end if;

  if p_released and p_row.minute_bucket = p_att.minute_bucket then
    v_new.rpm_used := greatest(0, p_row.rpm_used - p_att.requests);
  end if;
  if p_row.minute_bucket = p_att.minute_bucket then
    v_new.tpm_used := greatest(0, p_row.tpm_used + v_delta);
  end if;
  if p_released and p_row.day_bucket = p_att.day_bucket then
    v_new.rpd_used := greatest(0, p_row.rpd_used - p_att.requests);
    if v_at.near_end then
      v_new.rpd_next_used := greatest(0, p_row.rpd_next_used - p_att.requests);
    end if;
    if v_at.near_start then
      v_new.rpd_prev_used := greatest(0, p_row.rpd_prev_used - p_att.requests);
    end if;
  end if;
  v_new.ring := v_at.ring;
  v_new.window_requests := v_at.sum_requests;
  v_new.window_tokens := v_at.sum_tokens;
  if p_released and p_row.share_use is not null then
    v_new.share_use := public.google_ai_share_use_counted(p_row.share_use, null,
      array(select s.id from public.google_ai_quota_shares s
            where s.model = p_att.model and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
      v_at, v_requests);
  end if;
  return v_new;
end
$$;

-- Writes what settling changed on a counter row (google_ai_admission_settled), locked by the transaction.
CREATE OR REPLACE FUNCTION public.google_ai_write_settled(p_row public.google_ai_usage_counters) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  update public.google_ai_usage_counters c set
    rpm_used = p_row.rpm_used, tpm_used = p_row.tpm_used, rpd_used = p_row.rpd_used,
    rpd_next_used = p_row.rpd_next_used, rpd_prev_used = p_row.rpd_prev_used,
    ring = p_row.ring, window_requests = p_row.window_requests, window_tokens = p_row.window_tokens,
    input_until = p_row.input_until, output_until = p_row.output_until, share_use = p_row.share_use
  where c.id = p_row.id;
end
$$;
