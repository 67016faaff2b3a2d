-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: the metric totals the database kept under the former family names
--   (eve_gateway_google_calls_total, eve_gateway_google_429_total, eve_gateway_google_latency_seconds)
--   and labels (status="google_error", cause="google_cooldown") move under the new ones, added to any
--   total already there, so no counter starts again from zero. It runs after the migration from which
--   the metrics count under the new names only, so a fold between the two leaves nothing behind.
--   Applied twice, nothing changes.
with moved as (
  delete from public.google_ai_metric_totals t
  where t.family like 'eve\_gateway\_google\_%' or t.labels like '%status="google\_error"%'
     or t.labels like '%cause="google\_cooldown"%'
  returning t.*
)
insert into public.google_ai_metric_totals as t (family, suffix, labels, le, value)
select regexp_replace(m.family, '^eve_gateway_google_', 'eve_gateway_upstream_'), m.suffix,
       replace(replace(m.labels, 'status="google_error"', 'status="upstream_error"'),
         'cause="google_cooldown"', 'cause="upstream_cooldown"'),
       m.le, sum(m.value)
from moved m
group by 1, 2, 3, 4
on conflict (family, suffix, labels, le) do update set value = t.value + excluded.value;
