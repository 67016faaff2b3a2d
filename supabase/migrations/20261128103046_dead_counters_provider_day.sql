-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Housekeeping deletes a dead counter once its provider's day has turned, in the provider
--   row's day_zone, not Pacific's; the day columns' comments say the provider's day
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_minute timestamptz := public.google_ai_minute_window(p_now);
begin
  -- While this transaction lives, no key can be activated or added (SHARE blocks writes to the keys
  -- table, not reads): a reservation that sees a newly active group afterwards also sees its counter
  -- row gone and creates a fresh one, instead of booking on a row deleted under it. NOWAIT: an
  -- operator editing keys right now wins, and this step waits for the next run.
  begin
    lock table public.google_ai_api_keys in share mode nowait;
  exception when lock_not_available then
    return jsonb_build_object('skipped', 'google_ai_api_keys is being written; retried next run');
  end;
  return public.google_ai_delete_batched('public.google_ai_usage_counters'::regclass, 'id',
    -- A counter's day is over when its provider's day has turned (the day_zone of the provider of its
    -- model, or of its pool's models: limit_pool), not Pacific's; a name no row holds any more: Pacific's.
    format('s.quota_group is not null and s.minute_bucket < $1
            and s.day_bucket < public.google_ai_day_in(%L::timestamptz, coalesce(
              (select p.day_zone from public.google_ai_model_limits m
               join public.google_ai_providers p on p.name = m.provider
               where s.model in (m.model, m.limit_pool) limit 1), %L))
            and not exists (select 1 from public.google_ai_api_keys k
                            where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = s.quota_group)',
           p_now, public.google_ai_pacific_zone()),
    v_minute, p_settings.batch_size, p_settings.max_batches, p_deadline);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_model_limits."rpd" is 'Requests per day of the provider (its row''s day_zone) per quota group (null: no limit).';
comment on column public.google_ai_usage_counters."rpd_used" is 'Requests booked in day_bucket (the provider''s day, in its row''s day_zone), carried across minute rollovers.';
comment on column public.google_ai_usage_counters."rpd_next_used" is 'Requests admitted within the day guard before midnight, counted for the provider''s next day too.';
comment on column public.google_ai_usage_counters."rpd_prev_used" is 'Requests of the provider''s previous day, plus those admitted within the day guard after midnight.';
