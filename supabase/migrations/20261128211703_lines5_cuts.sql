-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: round two of issue 79's cuts in 05-38
set check_function_bodies = off;

drop view if exists "public"."google_ai_caller_budgets_today";

drop trigger if exists "google_ai_key_check_clears_limit_zero" on "public"."google_ai_key_health";

drop function if exists "public"."google_ai_buckets_settled"(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone);

drop function if exists "public"."google_ai_budget_of"(p_row public.google_ai_clients);

drop function if exists "public"."google_ai_derive_class_shares"(p_model text, p_class text);

drop function if exists "public"."google_ai_key_check_clears_limit_zero"();

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_budget_of"(p_row public.google_ai_caller_budgets);

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row anyelement)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

create or replace view "public"."google_ai_caller_budgets_today" as  SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_start((public.google_ai_pacific_day(now()) + 1)) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b.*), public.google_ai_pacific_day(now())) u(period, max_requests, max_tokens, max_usd, bucket, requests, tokens, spent_usd, monthly_max_usd, month_bucket, spent_month_usd));

CREATE OR REPLACE FUNCTION public.google_ai_derives_shares()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer DEFAULT NULL::integer, p_reason text DEFAULT NULL::text, p_message text DEFAULT NULL::text, p_models jsonb DEFAULT '[]'::jsonb, p_disable boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_key public.google_ai_api_keys;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_message text := public.google_ai_sanitize_error(p_message);
  v_listed integer;
  v_upserted integer := 0;
  v_removed integer := 0;
  v_disabled boolean := false;
  v_disabled_reason text;
begin
  if p_status is null or p_status not in ('ok', 'invalid', 'missing_secret', 'error') then
    raise exception 'p_status must be ok, invalid, missing_secret or error' using errcode = '22023';
  end if;
  if p_models is null or jsonb_typeof(p_models) <> 'array' then
    raise exception 'p_models must be a JSON array' using errcode = '22023';
  end if;

  select * into v_key from public.google_ai_api_keys k where k.id = p_key_id for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'unknown_key');
  end if;
  v_listed := case when p_status = 'ok' then jsonb_array_length(p_models) end;

  insert into public.google_ai_key_health as h (api_key_id, key_alias,
    status, checked_at, http_status, reason, message, models_listed)
  values (p_key_id, v_key.key_alias, p_status, v_now, p_http_status, left(p_reason, 200), v_message, v_listed)
  on conflict (api_key_id) do update set
    key_alias = excluded.key_alias, status = excluded.status, checked_at = excluded.checked_at,
    http_status = excluded.http_status, reason = excluded.reason, message = excluded.message,
    models_listed = excluded.models_listed;

  if p_status = 'ok' then
    -- An 'ok' check ends the limit_zero rests of the key's quota group: the project may have been given quota
    -- for the model since (the next request tries the provider once more, and a new limit: 0 rests again).
    -- Locked in model order first, as finalize writes a spend cap's rows: no deadlock between them.
    delete from public.google_ai_cooldowns c
    where c.ctid in (select l.ctid from public.google_ai_cooldowns l
                     where l.quota_group = public.google_ai_quota_group(v_key.project_id, v_key.id)
                       and l.cause = 'limit_zero'
                     order by l.model
                     for update of l);
    insert into public.google_ai_model_catalogue as c (api_key_id, model, key_alias, quota_group, display_name, version,
      input_token_limit, output_token_limit, supported_methods, first_seen_at, refreshed_at)
    select distinct on (m.model) p_key_id, m.model, v_key.key_alias,
           public.google_ai_quota_group(v_key.project_id, v_key.id),
           left(m.display_name, 200), left(m.version, 100), m.input_token_limit, m.output_token_limit,
           coalesce(m.supported_methods, '{}'), v_now, v_now
    from jsonb_to_recordset(p_models) as m(model text, display_name text, version text,
           input_token_limit integer, output_token_limit integer, supported_methods text[])
    where m.model is not null and m.model <> ''
    on conflict (api_key_id, model) do update set
      key_alias = excluded.key_alias, quota_group = excluded.quota_group, display_name = excluded.display_name,
      version = excluded.version, input_token_limit = excluded.input_token_limit,
      output_token_limit = excluded.output_token_limit, supported_methods = excluded.supported_methods,
      refreshed_at = excluded.refreshed_at;
    get diagnostics v_upserted = row_count;
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id and c.refreshed_at < v_now;
    get diagnostics v_removed = row_count;
  elsif p_status = 'invalid' then
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id;
    get diagnostics v_removed = row_count;
    if p_disable and v_key.is_active then
      v_disabled_reason := left(format('maintenance: %s rejected the key (its model list: HTTP %s%s): %s',
        (select p.display_name from public.google_ai_providers p where p.name = v_key.serves_provider),
        coalesce(p_http_status::text, '?'), coalesce(' ' || p_reason, ''), v_message), 500);
      update public.google_ai_api_keys k set
        is_active = false, disabled_reason = v_disabled_reason, disabled_at = v_now, updated_at = v_now
      where k.id = p_key_id;
      v_disabled := true;
    end if;
  end if;

  return jsonb_build_object('ok', true, 'key_alias', v_key.key_alias, 'status', p_status, 'disabled', v_disabled,
    'disabled_reason', v_disabled_reason, 'models', v_upserted, 'removed', v_removed, 'checked_at', v_now);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -1 else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  v_window_us numeric;
  -- The tokens a bucket gets back: what was booked less what was used.
  v_input_back integer;
  v_output_back integer;
begin
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model)
  for update;
  if not found then
    return;
  end if;
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(v_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  -- The token buckets (itpm, otpm: google_ai_schedule_place) get back what the admission booked (its answer,
  -- booked_output_tokens, and its input, the rest of estimated_tokens where the row books answers in its
  -- tokens) less what the call used, as Anthropic corrects its estimates at the end: the answer's input (its
  -- cache reads left out unless the row counts them) and output. Released: all of it. No count from the
  -- provider: the input stays, the answer goes back when the settled count (p_tokens) gave it back (a call
  -- refused before generating). A call that used more than it booked takes nothing more. What goes back
  -- moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was taken; no limit
  -- (after the margin, as the booking took it: google_ai_request_limits), or nothing back: as it was.
  if p_att.booked_output_tokens is not null then
    v_input_back := p_att.estimated_tokens - case when v_model.booked_output_tokens is not null
                                                  then p_att.booked_output_tokens else 0 end;
    v_output_back := p_att.booked_output_tokens;
    if not p_released and p_att.input_tokens is not null then
      v_input_back := v_input_back - (p_att.input_tokens
        - case when v_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end);
      v_output_back := v_output_back - coalesce(p_att.output_tokens, 0);
    elsif not p_released then
      v_input_back := 0;
      v_output_back := case when p_tokens < p_att.estimated_tokens then v_output_back else 0 end;
    end if;
    v_model.itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
    v_model.otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
    v_window_us := extract(epoch from v_at.minute) * 1000000;
    if v_model.itpm is not null and coalesce(v_input_back, 0) > 0 then
      v_row.input_until := v_row.input_until
        - floor(v_window_us * v_input_back / v_model.itpm) * interval '1 microsecond';
    end if;
    if v_model.otpm is not null and coalesce(v_output_back, 0) > 0 then
      v_row.output_until := v_row.output_until
        - floor(v_window_us * v_output_back / v_model.otpm) * interval '1 microsecond';
    end if;
  end if;

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_end
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_start
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
    ring = v_at.ring,
    window_requests = v_at.sum_requests, window_tokens = v_at.sum_tokens,
    input_until = v_row.input_until, output_until = v_row.output_until,
    share_use = case when p_released and c.share_use is not null then public.google_ai_share_use_counted(c.share_use,
                  null, array(select s.id from public.google_ai_quota_shares s
                              where s.model = p_att.model
                                and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
                  p_att.admitted_at, v_at.minute, v_requests, p_att.day_bucket, v_at.near_end, v_at.near_start)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_budget_of(p_row anyelement) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_of(p_row anyelement) to service_role;
revoke all on table public.google_ai_caller_budgets_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_caller_budgets_today to service_role;
alter view public.google_ai_caller_budgets_today set (security_invoker='true');
comment on view public.google_ai_caller_budgets_today is 'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';
