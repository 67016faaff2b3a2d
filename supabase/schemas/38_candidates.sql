-- A request's candidates: the limits of the model it names (google_ai_request_limits), the class it
-- runs in (google_ai_request_class) and the quota groups that may serve it (google_ai_candidate_groups),
-- with what ranks them and the key a group serves it on, and when a full one's window has room again for
-- it (google_ai_window_reopens_for).
set check_function_bodies = off;

-- The keys that may serve p_model, each with its quota group and its provider: active, of the model's
-- provider (a model no row names has none), for the model (a key's models; null: every model of its provider) and
-- not excluded by the caller. The booking's candidates, a booking that waited
-- for a row, the quota reads and the metrics ask here (the operators' views keep their own reading).
-- A SQL table function, so it is inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_serving_keys(p_model text, p_exclude_key_ids uuid[])
    RETURNS TABLE(quota_group text, key_id uuid, priority integer, key_alias text, env_var_name text,
    provider text)
    LANGUAGE sql STABLE
    AS $$
  select public.google_ai_quota_group(k.project_id, k.id), k.id, k.priority, k.key_alias, k.env_var_name,
         k.serves_provider
  from public.google_ai_api_keys k
  where k.is_active
    and k.serves_provider operator(pg_catalog.=)
        (select m.provider from public.google_ai_model_limits m where m.model operator(pg_catalog.=) p_model)
    and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
    and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
$$;

-- The quota groups that may serve p_model (through a key google_ai_serving_keys names), one
-- row each: the priority of its best key, the cooldown in force at p_now, what it used in the
-- current minute and its provider's day (an unlocked read) and its headroom (the smallest remaining
-- fraction of RPM, TPM and RPD) and what those counts already show full for everyone (full_by: a
-- cooldown, the day, the window). The reservation tries them by priority (lower first, none last),
-- then headroom (largest first), then name: the order the caller sorts them in (no row_number():
-- starting its window aggregate cost about 1% of a reservation's CPU). Each row names the key that serves its group
-- (the best active key for the model, by priority, then alias), so a booking needs no second look at
-- the keys, and the zone of the provider's day (day_zone), which the booking counts the group's day in
-- (read here, with the keys: a statement of its own for the provider's row cost about 40k instructions).
-- (The cooldown is a lateral subquery kept apart, offset 0: so it is read by its key, the group and
-- the model, where a join scanned the model's cooldowns into a bitmap for every group; counted, 2.6k less.
-- usage is kept apart too, offset 0: pulled up, each count's case was copied into headroom and full_by,
-- every copy set up again on each reservation; counted, about 18k less.)
CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer,
    p_tpm integer, p_rpd integer, p_now timestamp with time zone) RETURNS TABLE(quota_group text, priority integer,
    cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric,
    key_id uuid, key_alias text, env_var_name text, full_by text, day_zone text)
    LANGUAGE sql STABLE
    AS $$
  with keys as (
    select distinct on (s.quota_group) s.quota_group, s.priority, s.key_id, s.key_alias, s.env_var_name, s.provider
    from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
    order by s.quota_group, s.priority nulls last, s.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until, p.day_zone,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_day_in(p_now, p.day_zone)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_providers p on p.name operator(pg_catalog.=) g.provider
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join lateral (select cd.cooldown_until from public.google_ai_cooldowns cd
                       where cd.quota_group operator(pg_catalog.=) g.quota_group
                         and cd.model operator(pg_catalog.=) p_model and cd.cooldown_until operator(pg_catalog.>) p_now
                       offset 0) cd on true
    offset 0
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         least(coalesce(1 operator(pg_catalog.-) (u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0)), 1)),
         u.key_id, u.key_alias, u.env_var_name,
         case when u.cooldown_until is not null then 'cooldown'
              when p_rpd is not null and u.rpd_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpd then 'rpd'
              when p_rpm is not null and u.rpm_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpm then 'rpm'
         end, coalesce(u.day_zone, 'UTC')
  from usage u
$$;

-- The model a request names, as the request is held to it: its row (google_ai_model_limits), the
-- active one named exactly (its unique index), else the first active row with the name as an alias,
-- with rpm, tpm, rpd, itpm and otpm after the safety margin (safety_margin then 0, but on a row that follows its
-- provider: google_ai_followed_limits applies it to the provider's figures); all null when none is
-- (google_ai_admit_at then refuses unknown_model, as it refuses a withdrawn model or a request too
-- large for a minute before any lock). The booking takes this row whole (google_ai_admit_at to
-- google_ai_booking_rules and google_ai_booking_outcome), so a rule reads a new column of the model where
-- it decides.
-- (PL/pgSQL called as an expression: only the lookup a request needs runs, where one inlined statement
-- set up both lookups and the class's for every request; counted, about 350k instructions less.)
CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_row public.google_ai_model_limits;
begin
  -- (The row as one whole-row value: one column to set up, not one per column; counted, 6.5k less.)
  v_row := (select m from public.google_ai_model_limits m where m.model = p_model and m.is_active);
  if v_row.id is null then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  -- (No margin leaves every limit as it is, but a negative one: the row then goes on as read. A row with a
  -- field set is formed again at every call it is handed to: counted, about 60k less a reservation.)
  if v_row.safety_margin is distinct from 0 or least(v_row.rpm, v_row.tpm, v_row.rpd) < 0 then
    v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
    v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
    v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
    if v_row.itpm is not null or v_row.otpm is not null then
      v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
      v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
    end if;
    -- (A row that follows its provider keeps its margin: the booking takes it from the provider's figures.)
    v_row.safety_margin := case when v_row.provider_limits = 'follow' then v_row.safety_margin else 0 end;
  end if;
  return v_row;
end
$$;


-- When the sliding window of quota group p_quota_group has room again for p_requests more requests (1,
-- or a request's several at its provider, booked at once) of p_tokens, for a requester that
-- does not own the RPM shares it holds back: walking the window's seconds oldest first (a second's
-- first admission leaves on time, the others with its last: google_ai_ring_at), the first moment the
-- admissions left, plus what the other owners may still claim of their shares, leave a request over
-- (an owner's admission leaving gives its owner room, not the others). Null: never within the window
-- (the shares kept from this requester cover the limit, or the tokens the TPM). The request's model row
-- (p_model: its limits after the margin, its counter row its pool's when it names one), class row and
-- caller, whole, as the rules take them (google_ai_booking_rules): its shares are its class's or its caller's.
CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text,
    p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes,
    p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer,
    p_requests integer DEFAULT 1) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_ring record;
  -- The others' RPM shares: what each keeps, what its owner used of the window, its ring (a row each).
  v_kept integer[];
  v_used integer[];
  v_rings integer[];
  v_span integer;
  v_left_requests integer;
  v_left_tokens bigint;
  v_i integer;
  v_us integer;
  v_gone integer;
  v_held integer;
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_model.limit_pool, p_model.model);
  v_ring := public.google_ai_ring_at(p_now, p_window, v_row.ring_low, v_row.ring, v_row.window_requests,
    v_row.window_tokens);
  if v_ring.ring_low is null then
    return null;
  end if;
  v_span := cardinality(v_ring.ring) / 4;
  select coalesce(array_agg(s.reserved_rpm), '{}'), coalesce(array_agg(r.sum_requests), '{}'),
         coalesce(array_agg(r.ring), '{}')
    into v_kept, v_used, v_rings
  from public.google_ai_quota_shares s
  left join unnest(v_row.share_use) u on u.share_id = s.id
  cross join lateral public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests, null) r
  where s.model = p_model.model and s.reserved_rpm is not null and p_model.rpm is not null
    and not (coalesce(s.priority_class = p_class.name, false) or coalesce(s.caller = p_caller.name, false));

  v_left_requests := v_ring.sum_requests;
  v_left_tokens := v_ring.sum_tokens;
  for k in 0 .. v_span - 1 loop
    v_s := v_ring.ring_low + k;
    v_i := (v_s % v_span)::integer * 4;
    continue when v_ring.ring[v_i + 1] = 0;
    -- Two moments a second: its first admission leaves, then the others (and the tokens) with its last.
    foreach v_us in array v_ring.ring[v_i + 3 : v_i + 4] loop
      v_gone := case when v_us < v_ring.ring[v_i + 4] then 1 else v_ring.ring[v_i + 1] end;
      v_held := 0;
      for j in 1 .. cardinality(v_kept) loop
        -- What of the owner's admissions of this second have left by then, the same way.
        v_held := v_held + greatest(0, v_kept[j] - (v_used[j]
          - case when v_rings[j][v_i + 1] = 0 or v_rings[j][v_i + 3] > v_us then 0
                 when v_rings[j][v_i + 4] <= v_us then v_rings[j][v_i + 1] else 1 end));
      end loop;
      if (p_model.rpm is null or v_left_requests - v_gone + p_requests + v_held <= p_model.rpm)
         and (p_model.tpm is null
              or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2] else 0 end
                 + p_tokens <= p_model.tpm) then
        return public.google_ai_ring_time(v_s, v_us) + p_window;
      end if;
    end loop;
    v_left_requests := v_left_requests - v_ring.ring[v_i + 1];
    v_left_tokens := v_left_tokens - v_ring.ring[v_i + 2];
    for j in 1 .. cardinality(v_kept) loop
      v_used[j] := v_used[j] - v_rings[j][v_i + 1];
    end loop;
  end loop;
  return null;
end
$$;
