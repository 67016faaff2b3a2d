-- The limits a provider states: recorded per quota group and model (or pool) on the counter row finalize
-- settles (google_ai_note_stated), read by the booking of a row that follows them
-- (google_ai_followed_limits, 10_keys_and_limits.sql), and listed where a row and its provider disagree
-- (google_ai_stated_limits, google_ai_limit_disagreements: the quota route, the metrics, the maintenance run).
set check_function_bodies = off;

-- The stated limits as applied after one more answer (p_stated: its figures, rpm, tpm, rpd, itpm, otpm;
-- null: not stated), from those applied before (p_applied), the last answer's (p_heard) and the model
-- row's (p_row, before any statement). A figure below the one applied (or the row's, before any) is
-- applied at once: the provider refuses above it now. One above it is applied when the answer before
-- stated it too (two answers agree): one answer's word does not raise what the gateway admits. A
-- figure not stated keeps the one applied. Null: nothing applied. (PL/pgSQL: read by finalize only.)
CREATE OR REPLACE FUNCTION public.google_ai_stated_applied(p_applied integer[], p_heard integer[],
    p_stated integer[], p_row integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_applied integer[] := array_fill(null::integer, array[5]);
  v_before integer;
begin
  for i in 1 .. 5 loop
    v_before := coalesce(p_applied[i], p_row[i]);
    v_applied[i] := case when p_stated[i] is null then p_applied[i]
                         when v_before is null or p_stated[i] <= v_before or p_heard[i] = p_stated[i] then p_stated[i]
                         else p_applied[i] end;
  end loop;
  return case when num_nonnulls(variadic v_applied) > 0 then v_applied end;
end
$$;

-- A schedule's time (a counter row's spread_until, input_until or output_until: when its GCRA is level
-- again, p_until) at p_now, carried from a limit of p_before to one of p_after a window: what it already
-- owes, in requests or tokens, is owed at the new rate, so what is booked counts against the new limit
-- (booked + new <= the limit after a raise; a lowering refuses nothing booked, the next wait longer).
-- Unchanged when either limit is not known or the schedule is level. SQL, inlined where it is read.
CREATE OR REPLACE FUNCTION public.google_ai_until_rescaled(p_until timestamp with time zone,
    p_now timestamp with time zone, p_before integer, p_after integer) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case when p_until operator(pg_catalog.>) p_now and p_before operator(pg_catalog.>) 0
                   and p_after operator(pg_catalog.>) 0 and p_before operator(pg_catalog.<>) p_after
              then p_now operator(pg_catalog.+) ((p_until operator(pg_catalog.-) p_now)
                   operator(pg_catalog.*) (p_before::double precision operator(pg_catalog./) p_after))
              else p_until end
$$;

-- What an answer states of its group's limits (p_stated, as google_ai_stated_applied takes it), written on
-- the counter row the call's finalize has just settled and holds locked (google_ai_settle_call: no other
-- row, no other lock): only when a figure applied or heard changes, else at most once a minute to say
-- when the provider last said them (stated_at). A row that follows its provider carries its schedules
-- (the spread's and the buckets') to the limits now applied (google_ai_until_rescaled), so a raise applies
-- to what is already booked. A row whose group has no counter row yet: nothing.
CREATE OR REPLACE FUNCTION public.google_ai_note_stated(p_att public.google_ai_attempts, p_stated integer[])
    RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_applied integer[];
  v_before public.google_ai_model_limits;  -- a following row's limits, as booked until now and from now
  v_after public.google_ai_model_limits;
begin
  if p_stated is null or p_att.quota_group is null then
    return;
  end if;
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select c.* into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model);
  if v_row.id is null then
    return;
  end if;
  v_applied := public.google_ai_stated_applied(v_row.stated_limits, v_row.stated_heard, p_stated,
    array[v_model.rpm, v_model.tpm, v_model.rpd, v_model.itpm, v_model.otpm]);
  if v_applied is not distinct from v_row.stated_limits and p_stated is not distinct from v_row.stated_heard
     and v_row.stated_at > v_now - interval '1 minute' then
    return;
  end if;
  if v_model.provider_limits = 'follow' and v_applied is distinct from v_row.stated_limits then
    -- (The row's own limits after its margin, as the booking counts them before any statement.)
    v_before := v_model;
    v_before.rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
    v_before.itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
    v_before.otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
    v_after := public.google_ai_followed_limits(v_before, v_applied);
    v_before := public.google_ai_followed_limits(v_before, v_row.stated_limits);
  end if;
  update public.google_ai_usage_counters c set
    stated_limits = v_applied, stated_heard = p_stated, stated_at = v_now,
    stated_since = case when v_applied is distinct from c.stated_limits then v_now else c.stated_since end,
    spread_until = public.google_ai_until_rescaled(c.spread_until, v_now, v_before.rpm, v_after.rpm),
    input_until = public.google_ai_until_rescaled(c.input_until, v_now, v_before.itpm, v_after.itpm),
    output_until = public.google_ai_until_rescaled(c.output_until, v_now, v_before.otpm, v_after.otpm)
  where c.id = v_row.id;
end
$$;

-- A model row's effective limits in one quota group (p_limits: after the margin, google_ai_request_limits):
-- for a row that follows its provider, the limits the provider stated for the group as its booking counts
-- them (google_ai_followed_limits, on the group's counter row: its pool's or its own); else p_limits. What
-- the quota route and a refusal's quota say; the booking reads the counter row it has locked instead.
CREATE OR REPLACE FUNCTION public.google_ai_group_limits(p_limits public.google_ai_model_limits, p_quota_group text)
    RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_limits.provider_limits is distinct from 'follow' then
    return p_limits;
  end if;
  return public.google_ai_followed_limits(p_limits, (select c.stated_limits from public.google_ai_usage_counters c
    where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)));
end
$$;

-- What a request to a row that follows its provider is judged too large by before any lock (p_limits:
-- google_ai_request_limits', the margin still to apply to the provider's figures; p_exclude_key_ids: the
-- request's): each limit the largest of those the quota groups serving it follow (google_ai_followed_limits,
-- on each group's counter row: its pool's or its own; a group the provider has stated nothing for counts
-- the row's), none where a group has none. So a request larger than every group's window is refused at
-- once, and one a group could take is left to the booking. No group serving it: p_limits, unchanged.
CREATE OR REPLACE FUNCTION public.google_ai_followed_widest(p_limits public.google_ai_model_limits,
    p_exclude_key_ids uuid[]) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_widest record;
begin
  select count(*) as groups,
         case when bool_and((f.l).rpm is not null) then max((f.l).rpm) end as rpm,
         case when bool_and((f.l).tpm is not null) then max((f.l).tpm) end as tpm,
         case when bool_and((f.l).rpd is not null) then max((f.l).rpd) end as rpd,
         case when bool_and((f.l).itpm is not null) then max((f.l).itpm) end as itpm,
         case when bool_and((f.l).otpm is not null) then max((f.l).otpm) end as otpm
    into v_widest
  from (select distinct s.quota_group from public.google_ai_serving_keys(p_limits.model, p_exclude_key_ids) s) g
  left join public.google_ai_usage_counters c
    on c.quota_group = g.quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)
  cross join lateral (select public.google_ai_followed_limits(p_limits, c.stated_limits) as l) f;
  if v_widest.groups > 0 then
    select v_widest.rpm, v_widest.tpm, v_widest.rpd, v_widest.itpm, v_widest.otpm
      into p_limits.rpm, p_limits.tpm, p_limits.rpd, p_limits.itpm, p_limits.otpm;
  end if;
  return p_limits;
end
$$;

-- A model row's effective limits in one quota group, from the row as stored (p_model, before its margin):
-- its figures after its margin, and for a row that follows its provider those the provider stated for
-- the group (google_ai_group_limits). What the usage view (google_ai_usage_now) and google_ai_group_room
-- count against, as the booking does. Security definer, as google_ai_group_room is: the view runs with
-- its reader's rights (service_role), which may call this and nothing under it.
CREATE OR REPLACE FUNCTION public.google_ai_stored_group_limits(p_model public.google_ai_model_limits,
    p_quota_group text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  p_model.tpm := public.google_ai_effective_limit(p_model.tpm, p_model.safety_margin);
  p_model.rpd := public.google_ai_effective_limit(p_model.rpd, p_model.safety_margin);
  p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
  p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
  return public.google_ai_group_limits(p_model, p_quota_group);
end
$$;

-- The RPM a quota group's booking counts against, for a model row as stored (p_model: the table's row,
-- before its margin): the row's after its margin, and for a row that follows its provider the one the
-- provider stated for the group (google_ai_group_limits). The rest a bucket's word asks for
-- (google_ai_settle_call) is placed on the schedule the booking keeps.
CREATE OR REPLACE FUNCTION public.google_ai_group_rpm(p_model public.google_ai_model_limits, p_quota_group text)
    RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  if p_model.provider_limits is distinct from 'follow' then
    return p_model.rpm;
  end if;
  return (public.google_ai_group_limits(p_model, p_quota_group)).rpm;
end
$$;

-- Each limit of an active model row beside what its provider stated for a quota group (the counter row
-- of the row's pool or its own), where the provider stated one: the row's own figure (before its margin),
-- the provider's as applied, the effective one the gateway counts against (after the margin; a row that
-- follows: google_ai_followed_limits), when the provider last said it and since when it holds. disagreement:
-- 'above' (a row that keeps its own limits above the provider's: the gateway admits what the provider
-- refuses), 'below' (one that keeps its own below it: room left unused), 'ceiling' (a row that follows,
-- held below the provider by its ceiling), else null.
CREATE OR REPLACE FUNCTION public.google_ai_stated_limits() RETURNS TABLE(quota_group text, model text,
    provider_limits text, limit_name text, row_limit integer, provider_limit integer, effective_limit integer,
    said_at timestamp with time zone, since timestamp with time zone, disagreement text)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select c.quota_group, l.model, l.provider_limits, n.name, n.own, n.said,
         case when l.provider_limits = 'follow' then n.followed else n.kept end, c.stated_at, c.stated_since,
         case when l.provider_limits = 'keep' and n.own is distinct from n.said
                then case when n.own is null or n.own > n.said then 'above' else 'below' end
              when l.provider_limits = 'follow' and n.ceiling < n.said then 'ceiling' end
  from public.google_ai_model_limits l
  join public.google_ai_usage_counters c on c.model = coalesce(l.limit_pool, l.model) and c.quota_group is not null
  cross join lateral (select public.google_ai_followed_limits(l, c.stated_limits) as f) f
  cross join lateral (values
    ('rpm', l.rpm, c.stated_limits[1], l.follow_ceiling_rpm, (f.f).rpm,
       public.google_ai_effective_limit(l.rpm, l.safety_margin)),
    ('tpm', l.tpm, c.stated_limits[2], l.follow_ceiling_tpm, (f.f).tpm,
       public.google_ai_effective_limit(l.tpm, l.safety_margin)),
    ('rpd', l.rpd, c.stated_limits[3], l.follow_ceiling_rpd, (f.f).rpd,
       public.google_ai_effective_limit(l.rpd, l.safety_margin)),
    ('itpm', l.itpm, c.stated_limits[4], null::integer, (f.f).itpm,
       public.google_ai_effective_limit(l.itpm, l.safety_margin)),
    ('otpm', l.otpm, c.stated_limits[5], null::integer, (f.f).otpm,
       public.google_ai_effective_limit(l.otpm, l.safety_margin)))
    n(name, own, said, ceiling, followed, kept)
  where l.is_active and n.said is not null
$$;

-- The disagreements (google_ai_stated_limits' rows that name one), as the maintenance run lists them among
-- its problems and housekeeping logs them: model, quota group, limit, mode, the row's and the provider's
-- figures, when it was said and the disagreement.
CREATE OR REPLACE FUNCTION public.google_ai_limit_disagreements() RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('model', d.model, 'quota_group', d.quota_group,
           'limit', d.limit_name, 'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.model, d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.disagreement is not null
$$;
