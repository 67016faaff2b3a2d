-- Google as it answers today: where the model life cycle, the cause of a Google 429 and the service
-- tier are recorded. Columns and values only; the behaviour that writes and reads them comes in the
-- files after this one. Applying it twice changes nothing; no owner's row is rewritten.

-- The model life cycle, as rows -----------------------------------------------------------------------
alter table public.google_ai_model_limits add column if not exists shutdown_date date;
alter table public.google_ai_model_limits add column if not exists successor text;
alter table public.google_ai_model_limits add column if not exists withdrawn_at timestamptz;
alter table public.google_ai_model_limits add column if not exists withdrawn_message text;
alter table public.google_ai_model_limits add column if not exists limits_source text;
alter table public.google_ai_model_limits add column if not exists supports_images boolean;

comment on column public.google_ai_model_limits.shutdown_date is
  'The day Google announced it stops serving this model (its deprecations page); null: none announced.';
comment on column public.google_ai_model_limits.successor is
  'The model Google names as this one''s replacement (a name or alias of another row, or a model no row serves yet).';
comment on column public.google_ai_model_limits.withdrawn_at is
  'When Google answered 404 NOT_FOUND for this model: requests pass over it without calling Google until '
  'the maintenance function finds it in models.list again or the operator clears it. Null: served.';
comment on column public.google_ai_model_limits.withdrawn_message is
  'Google''s (sanitized) message of the 404 that withdrew the model.';
comment on column public.google_ai_model_limits.limits_source is
  'Where this row''s RPM/TPM/RPD come from (a page and the day it was read, or the project''s own quota page).';
comment on column public.google_ai_model_limits.supports_images is
  'The model takes images as input. Null: not known (images are passed to Google, which decides).';

-- The cause of a Google 429, and the tier that served ----------------------------------------------
-- quota_cause: minute (a per-minute quota), day (a per-day quota), limit_zero (this project has no
-- quota at all for the model), spend_cap (the billing account's spend cap: every model of the
-- project), unknown (a 429 that names none of these).
alter table public.google_ai_attempts add column if not exists quota_cause text;
alter table public.google_ai_attempts add column if not exists service_tier text;
alter table public.google_ai_attempts add column if not exists served_tier text;
alter table public.google_ai_cooldowns add column if not exists cause text;
-- What the gateway added to the request's latency, and its time to the first byte, for the metrics.
alter table public.google_ai_attempts add column if not exists added_ms integer;
alter table public.google_ai_attempts add column if not exists first_byte_ms integer;

comment on column public.google_ai_attempts.quota_cause is
  'For a Google 429: minute, day, limit_zero, spend_cap or unknown, read from Google''s body.';
comment on column public.google_ai_attempts.service_tier is
  'The service tier the gateway asked Google for (flex, priority); null: standard.';
comment on column public.google_ai_attempts.served_tier is
  'The service tier Google says served the call (its x-gemini-service-tier header); null: not said.';
comment on column public.google_ai_attempts.added_ms is
  'Of a request''s final attempt: the time llm-invoke spent outside Google''s call and the wait for capacity (Server-Timing total less google and wait).';
comment on column public.google_ai_attempts.first_byte_ms is
  'Of a request''s final attempt: from the request''s arrival to the first byte of its answer (a stream''s first chunk).';
comment on column public.google_ai_cooldowns.cause is
  'Why the group rests: a Google 429''s quota_cause (a spend cap rests every model of the group: one row each).';

do $$
begin
  if not exists (select 1 from pg_catalog.pg_constraint where conname = 'google_ai_attempts_quota_cause_check') then
    alter table public.google_ai_attempts add constraint google_ai_attempts_quota_cause_check
      check (quota_cause in ('minute', 'day', 'limit_zero', 'spend_cap', 'unknown')) not valid;
    alter table public.google_ai_attempts validate constraint google_ai_attempts_quota_cause_check;
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint where conname = 'google_ai_cooldowns_cause_check') then
    alter table public.google_ai_cooldowns add constraint google_ai_cooldowns_cause_check
      check (cause in ('minute', 'day', 'limit_zero', 'spend_cap', 'unknown')) not valid;
    alter table public.google_ai_cooldowns validate constraint google_ai_cooldowns_cause_check;
  end if;
  -- 'withdrawn': Google answered 404 NOT_FOUND for the model; the reservation was given back.
  if not exists (select 1 from pg_catalog.pg_constraint c
                 where c.conrelid = 'public.google_ai_attempts'::regclass
                   and c.conname = 'google_ai_attempts_status_check'
                   and pg_catalog.pg_get_constraintdef(c.oid) like '%''withdrawn''%') then
    alter table public.google_ai_attempts drop constraint if exists google_ai_attempts_status_check;
    alter table public.google_ai_attempts add constraint google_ai_attempts_status_check check (status in
      ('reserved', 'refused', 'succeeded', 'google_error', 'network_error', 'timeout', 'released', 'abandoned', 'cut',
       'withdrawn'))
      not valid;
    alter table public.google_ai_attempts validate constraint google_ai_attempts_status_check;
  end if;
end
$$;
