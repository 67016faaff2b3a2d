-- A share kept for people by default: each priority class may keep a percent of every model's RPM
-- and RPD (google_ai_priority_classes.kept_rpm_percent, kept_rpd_percent; null: none), held as
-- ordinary google_ai_quota_shares rows marked derived_from_class and kept in step by triggers (a
-- model inserted or its limits changed, a percent set or cleared; an operator's edit of a derived
-- row makes it the operator's). The booking reads them as it reads every share. The quota route
-- (google_ai_quota_report) and an answer's quota (google_ai_answer_quota) tell what the shares keep
-- for others and for the caller (`kept`, google_ai_quota_kept).
--
-- The owner's data: nothing is rewritten. The new columns start empty (false for derived_from_class,
-- so every share row already there stays the operator's). The `interactive` class is given its
-- default percents (20% of RPM, 10% of RPD: docs/architecture.md, "A share for people by default")
-- only while its percents were never set (kept_changed_at is null), which ADDS one derived share row
-- per model that has none for the class; a model that already has an `interactive` share row keeps
-- that row as it is. Applied twice, it changes nothing.

set check_function_bodies = off;

alter table public.google_ai_priority_classes add column if not exists kept_rpm_percent numeric(5,2);
alter table public.google_ai_priority_classes add column if not exists kept_rpd_percent numeric(5,2);
alter table public.google_ai_priority_classes add column if not exists kept_changed_at timestamp with time zone;
alter table public.google_ai_quota_shares add column if not exists derived_from_class boolean default false not null;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_constraint
                 where conname = 'google_ai_priority_classes_kept_rpm_check'
                   and conrelid = 'public.google_ai_priority_classes'::regclass) then
    alter table public.google_ai_priority_classes add constraint google_ai_priority_classes_kept_rpm_check
      check (((kept_rpm_percent > (0)::numeric) and (kept_rpm_percent <= (100)::numeric)));
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint
                 where conname = 'google_ai_priority_classes_kept_rpd_check'
                   and conrelid = 'public.google_ai_priority_classes'::regclass) then
    alter table public.google_ai_priority_classes add constraint google_ai_priority_classes_kept_rpd_check
      check (((kept_rpd_percent > (0)::numeric) and (kept_rpd_percent <= (100)::numeric)));
  end if;
end
$$;

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpm_percent IS 'Percent of every model''s RPM kept for this class, as a derived row of google_ai_quota_shares per model (rounded down, at least 1 request, below 100% never the whole limit). Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpd_percent IS 'Percent of every model''s RPD kept for this class, as kept_rpm_percent. Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_changed_at IS 'When a kept percent was last set or cleared; null: never (the seed writes its default percents only then).';

COMMENT ON COLUMN public.google_ai_quota_shares.derived_from_class IS 'True: the row is the class''s kept percents applied to the model (google_ai_priority_classes.kept_rpm_percent, kept_rpd_percent), kept in step by triggers. An operator''s edit of the row makes it the operator''s (false); setting it back to true re-derives it.';

-- The derivation (supabase/schemas/50_shares_and_budgets.sql).

CREATE OR REPLACE FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
  select case when p_limit is null or p_percent is null then null
              when p_percent >= 100 then greatest(p_limit, 0)
              when p_limit <= 1 then 0
              else least(p_limit - 1, greatest(1, floor(p_limit * p_percent / 100)))::integer end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_derived_shares(p_model text, p_class text) RETURNS TABLE(model text, priority_class text, reserved_rpm integer, reserved_rpd integer)
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

CREATE OR REPLACE FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  -- Tells the shares' trigger that these writes are the derivation's, not an operator's edit.
  perform pg_catalog.set_config('google_ai.deriving_shares', 'on', true);
  delete from public.google_ai_quota_shares s
  where s.derived_from_class
    and (p_model is null or s.model = p_model) and (p_class is null or s.priority_class = p_class)
    and not exists (select 1 from public.google_ai_derived_shares(s.model, s.priority_class));
  update public.google_ai_quota_shares s set reserved_rpm = d.reserved_rpm, reserved_rpd = d.reserved_rpd
  from public.google_ai_derived_shares(p_model, p_class) d
  where s.derived_from_class and s.model = d.model and s.priority_class = d.priority_class and s.caller is null
    and (s.reserved_rpm, s.reserved_rpd) is distinct from (d.reserved_rpm, d.reserved_rpd);
  insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm, reserved_rpd, derived_from_class, notes)
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd, true,
         'Derived from the class''s kept percents (google_ai_priority_classes); an edit makes the row the operator''s.'
  from public.google_ai_derived_shares(p_model, p_class) d
  on conflict on constraint google_ai_quota_shares_owner_key do nothing;
  perform pg_catalog.set_config('google_ai.deriving_shares', '', true);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_model_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.google_ai_derive_class_shares(new.model, null);
  return null;
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_class_kept_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
     or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                             is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
    new.kept_changed_at := pg_catalog.now();
  end if;
  return new;
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_class_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.google_ai_derive_class_shares(null, new.name);
  return null;
end
$$;

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
      raise exception 'a derived share belongs to a class that keeps part of the model (google_ai_priority_classes.kept_rpm_percent, kept_rpd_percent); this one keeps nothing of %', new.model
        using errcode = '23514';
    end if;
    new.reserved_rpm := v_derived.reserved_rpm;
    new.reserved_rpd := v_derived.reserved_rpd;
    new.pace_burst := null;
  end if;
  return new;
end
$$;

CREATE OR REPLACE TRIGGER google_ai_model_derives_shares AFTER INSERT OR UPDATE OF rpm, rpd, safety_margin ON public.google_ai_model_limits FOR EACH ROW EXECUTE FUNCTION public.google_ai_model_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_kept_changed BEFORE INSERT OR UPDATE OF kept_rpm_percent, kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION public.google_ai_class_kept_changed();

CREATE OR REPLACE TRIGGER google_ai_class_derives_shares AFTER INSERT OR UPDATE OF kept_rpm_percent, kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION public.google_ai_class_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_share_edited BEFORE INSERT OR UPDATE ON public.google_ai_quota_shares FOR EACH ROW WHEN (new.derived_from_class) EXECUTE FUNCTION public.google_ai_share_edited();

-- What the shares keep, in the quota an answer carries and in the quota route (supabase/schemas/80_quota_visibility.sql).

CREATE OR REPLACE FUNCTION public.google_ai_quota_kept(p_model text, p_rpm integer, p_rpd integer, p_class text, p_caller text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select jsonb_build_object(
    'rpm_for_others', case when p_rpm is not null
                           then least(p_rpm, coalesce(sum(s.reserved_rpm) filter (where not o.own), 0)) end,
    'rpm_for_you', case when p_rpm is not null
                        then least(p_rpm, coalesce(sum(s.reserved_rpm) filter (where o.own), 0)) end,
    'rpd_for_others', case when p_rpd is not null
                           then least(p_rpd, coalesce(sum(s.reserved_rpd) filter (where not o.own), 0)) end,
    'rpd_for_you', case when p_rpd is not null
                        then least(p_rpd, coalesce(sum(s.reserved_rpd) filter (where o.own), 0)) end)
  from public.google_ai_quota_shares s
  cross join lateral (select coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as own) o
  where s.model = p_model
$$;

CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[]) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits record;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}';
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  select * into v_limits from public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model), 0);
  if v_limits.model is null then
    return null;
  end if;

  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.* into v_quota
    from public.google_ai_serving_groups(v_limits.model, p_exclude_key_ids) g
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                     v_limits.rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model, v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    'requests_reset_ms', case when v_limits.rpm is not null
                              then public.google_ai_ms_until(v_quota.requests_reset_at, v_now) end,
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', case when v_limits.tpm is not null
                            then public.google_ai_ms_until(v_quota.tokens_reset_at, v_now) end,
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', case when v_limits.rpd is not null
                         then public.google_ai_ms_until(v_quota.day_reset_at, v_now) end)
    || v_kept;
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_budget jsonb;
  v_requests_today integer;
  v_tokens_today bigint;
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    if not found then
      return jsonb_build_object('ok', false, 'status', 'token_invalid');
    end if;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    if v_token.revoked_at is not null or v_client.revoked_at is not null then
      return jsonb_build_object('ok', false, 'status', 'token_revoked');
    elsif v_token.expires_at <= v_now then
      return jsonb_build_object('ok', false, 'status', 'token_expired');
    end if;
    v_models := v_token.models;
    v_requests_today := case when v_client.day_bucket = v_day then v_client.requests_today else 0 end;
    v_tokens_today := case when v_client.day_bucket = v_day then v_client.tokens_today else 0 end;
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
    v_budget := jsonb_build_object(
      'token_requests_left', public.google_ai_budget_left(v_token.max_requests, v_token.requests_used),
      'token_tokens_left', public.google_ai_budget_left(v_token.max_tokens, v_token.tokens_used),
      'token_expires_at', v_token.expires_at,
      'daily_requests_left', public.google_ai_budget_left(v_client.daily_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_client.daily_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_client.daily_max_requests is not null or v_client.daily_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end);
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_requests_today := case when v_caller_budget.day_bucket = v_day then v_caller_budget.requests_today else 0 end;
    v_tokens_today := case when v_caller_budget.day_bucket = v_day then v_caller_budget.tokens_today else 0 end;
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
    v_budget := jsonb_build_object('token_requests_left', null, 'token_tokens_left', null, 'token_expires_at', null,
      'daily_requests_left', public.google_ai_budget_left(v_caller_budget.daily_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_caller_budget.daily_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_caller_budget.daily_max_requests is not null
                                   or v_caller_budget.daily_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end);
  end if;

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    'budget', v_budget,
    'models', coalesce((
      select jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('cooldowns', public.google_ai_model_cooldowns(l.model, v_now, p_token_hash is null),
                            'kept', public.google_ai_quota_kept(l.model, public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class, v_owner_caller))
                       order by l.model)
      from public.google_ai_model_limits l
      where l.is_active and (v_models is null or l.model = any (v_models))), '[]'),
    'withdrawn', coalesce((
      select jsonb_agg(jsonb_build_object(
               'model', l.model,
               'withdrawn_at', l.withdrawn_at,
               'withdrawn_message', l.withdrawn_message,
               'successor', l.successor,
               'shutdown_date', l.shutdown_date)
             order by l.model)
      from public.google_ai_model_limits l
      where l.withdrawn_at is not null and (v_models is null or l.model = any (v_models))), '[]'));
end
$$;

-- Access: only the functions that call them (security definer) and the triggers run these.

REVOKE ALL ON FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_derived_shares(p_model text, p_class text) FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_derived_shares(p_model text, p_class text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_model_derives_shares() FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_model_derives_shares() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_class_kept_changed() FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_class_kept_changed() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_class_derives_shares() FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_class_derives_shares() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_share_edited() FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_share_edited() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_quota_kept(p_model text, p_rpm integer, p_rpd integer, p_class text, p_caller text) FROM anon, authenticated, service_role, eve_gateway;

REVOKE ALL ON FUNCTION public.google_ai_quota_kept(p_model text, p_rpm integer, p_rpd integer, p_class text, p_caller text) FROM PUBLIC;

-- The default numbers for people (the seed writes the same on a fresh project): only while the
-- class's percents were never set, so an operator's change or removal is never undone.
update public.google_ai_priority_classes set kept_rpm_percent = 20, kept_rpd_percent = 10
where name = 'interactive' and kept_changed_at is null;
