-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a raise of a followed limit applies to what is already booked: the counter row's schedules
--   (the spread's GCRA and the token buckets) are carried to the new limit when it is applied
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_until_rescaled(p_until timestamp with time zone, p_now timestamp with time zone, p_before integer, p_after integer)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when p_until operator(pg_catalog.>) p_now and p_before operator(pg_catalog.>) 0
                   and p_after operator(pg_catalog.>) 0 and p_before operator(pg_catalog.<>) p_after
              then p_now operator(pg_catalog.+) ((p_until operator(pg_catalog.-) p_now)
                   operator(pg_catalog.*) (p_before::double precision operator(pg_catalog./) p_after))
              else p_until end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_note_stated(p_att public.google_ai_attempts, p_stated integer[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_until_rescaled(p_until timestamp with time zone, p_now timestamp with time zone, p_before integer, p_after integer) from public, anon, authenticated, service_role;
