-- Usage at a glance, for the operator (SQL editor, supabase-py with the service key):
--   google_ai_usage_now           per quota group and model: this minute and this Pacific day against
--                                 the limits, and the cooldown in force
--   google_ai_cooldowns_active    cooldowns in force, with the keys they hold back
--   google_ai_usage_by_caller_24h the last 24 hours per caller: requests, outcomes, refusals by limit, tokens
--   google_ai_clients_overview    the Kaggle clients without their secrets
-- security_invoker: a view reads with its caller's rights (RLS and grants of the tables apply), and
-- none is readable by anon/authenticated (the access file). Their readers may execute the pure
-- functions they use (google_ai_quota_group, google_ai_effective_limit); the window arithmetic is
-- written out inline, identical to google_ai_minute_window / google_ai_pacific_day, because those
-- functions are not executable by service_role.

create or replace view public.google_ai_usage_now
with (security_invoker = true) as
with clock as (
  select now() as at,
         date_trunc('minute', now(), 'UTC') as minute,
         (now() at time zone 'America/Los_Angeles')::date as day
), serving as (
  -- which active keys may book on which active model, by quota group
  select public.google_ai_quota_group(k.project_id, k.id) as quota_group, l.model,
         count(*)::int as active_keys,
         array_agg(k.key_alias order by k.priority, k.key_alias) as key_aliases
  from public.google_ai_api_keys k
  join public.google_ai_model_limits l on l.is_active and (k.models is null or l.model = any (k.models))
  where k.is_active
  group by 1, 2
), pairs as (
  select s.quota_group, s.model from serving s
  union
  select c.quota_group, c.model from public.google_ai_usage_counters c where c.quota_group is not null
), usage as (
  select p.quota_group, p.model, clock.at, clock.minute, clock.day,
         coalesce(s.active_keys, 0) as active_keys,
         coalesce(s.key_aliases, '{}') as key_aliases,
         -- a row still in an older window means nothing used in this one (the RPC rolls it over)
         case when c.minute_bucket = clock.minute then c.rpm_used else 0 end as rpm_used,
         case when c.minute_bucket = clock.minute then c.tpm_used else 0 end as tpm_used,
         case when c.day_bucket = clock.day then c.rpd_used else 0 end as rpd_used,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm_limit,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm_limit,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd_limit,
         cd.cooldown_until, cd.reason as cooldown_reason
  from pairs p
  cross join clock
  left join serving s on s.quota_group = p.quota_group and s.model = p.model
  left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
  left join public.google_ai_model_limits l on l.model = p.model
  left join public.google_ai_cooldowns cd
    on cd.quota_group = p.quota_group and cd.model = p.model and cd.cooldown_until > clock.at
)
select u.quota_group, u.model, u.active_keys, u.key_aliases,
       u.minute as minute_window,
       u.rpm_used, u.rpm_limit, u.rpm_limit - u.rpm_used as rpm_left,
       u.tpm_used, u.tpm_limit, u.tpm_limit - u.tpm_used as tpm_left,
       u.day as pacific_day,
       u.rpd_used, u.rpd_limit, u.rpd_limit - u.rpd_used as rpd_left,
       u.cooldown_until, u.cooldown_reason,
       case when u.active_keys = 0 then 'no_active_key'
            when u.cooldown_until is not null then 'cooldown'
            when u.rpd_used >= u.rpd_limit then 'rpd'
            when u.rpm_used >= u.rpm_limit then 'rpm'
            when u.tpm_used >= u.tpm_limit then 'tpm'
            else 'open' end as state,
       u.minute + interval '1 minute' as minute_resets_at,
       ((u.day + 1)::timestamp at time zone 'America/Los_Angeles') as day_resets_at
from usage u;

comment on view public.google_ai_usage_now is
  'Per quota group and model: requests and input tokens used this minute, requests this Pacific day, against the '
  'limits after the safety margin; state is what would refuse a request now (open, rpm, tpm, rpd, cooldown, no_active_key).';

create or replace view public.google_ai_cooldowns_active
with (security_invoker = true) as
select cd.quota_group, cd.model, cd.cooldown_until,
       ceil(extract(epoch from (cd.cooldown_until - now())))::bigint as seconds_left,
       cd.reason, cd.quota_id, cd.updated_at,
       coalesce((select array_agg(k.key_alias order by k.key_alias) from public.google_ai_api_keys k
                 where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = cd.quota_group), '{}') as key_aliases
from public.google_ai_cooldowns cd
where cd.cooldown_until > now();

comment on view public.google_ai_cooldowns_active is 'Cooldowns in force: the quota group and model rest until cooldown_until.';

create or replace view public.google_ai_usage_by_caller_24h
with (security_invoker = true) as
select a.caller,
       count(distinct coalesce(a.request_id, a.reservation_id::text))::int as requests,
       count(*)::int as attempts,
       count(*) filter (where a.status = 'succeeded')::int as succeeded,
       count(*) filter (where a.status in ('google_error', 'network_error', 'timeout'))::int as failed,
       count(*) filter (where a.status = 'refused')::int as refused,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'rpm')::int as refused_rpm,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'tpm')::int as refused_tpm,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'rpd')::int as refused_rpd,
       count(*) filter (where a.status = 'refused' and a.limit_hit = 'cooldown')::int as refused_cooldown,
       count(*) filter (where a.status = 'refused' and a.limit_hit not in ('rpm', 'tpm', 'rpd', 'cooldown'))::int as refused_other,
       count(*) filter (where a.status = 'reserved')::int as in_flight,
       count(*) filter (where a.status = 'released')::int as released,
       count(*) filter (where a.status = 'abandoned')::int as abandoned,
       coalesce(sum(a.input_tokens) filter (where a.status = 'succeeded'), 0)::bigint as input_tokens,
       coalesce(sum(a.output_tokens) filter (where a.status = 'succeeded'), 0)::bigint as output_tokens,
       (coalesce(sum(a.input_tokens) filter (where a.status = 'succeeded'), 0)
        + coalesce(sum(a.output_tokens) filter (where a.status = 'succeeded'), 0))::bigint as total_tokens,
       array_agg(distinct a.model order by a.model) as models,
       min(a.created_at) as first_at,
       max(a.created_at) as last_at
from public.google_ai_attempts a
where a.created_at > now() - interval '24 hours'
group by a.caller;

comment on view public.google_ai_usage_by_caller_24h is
  'The last 24 hours per caller: logical requests, attempts by outcome, refusals by the limit that refused them, '
  'and the input/output tokens of successful calls.';

-- Clients without their secrets, for the CLI and the dashboard.
create or replace view public.google_ai_clients_overview
with (security_invoker = true) as
select c.id, c.name, c.models, c.max_token_ttl, c.token_max_requests, c.token_max_tokens,
       c.daily_max_requests, c.daily_max_tokens, c.mint_per_hour, c.created_at, c.revoked_at, c.revoked_reason,
       (select count(*) from public.google_ai_tokens t
        where t.client_id = c.id and t.revoked_at is null and t.expires_at > now()) as live_tokens,
       (select max(t.created_at) from public.google_ai_tokens t where t.client_id = c.id) as last_token_at
from public.google_ai_clients c;
