// The counter rows against the attempt rows they count (docs/architecture.md §2: a booking updates its
// quota group's counter row and writes its attempt row in one transaction). Per counter row of the
// models given: the minute's, the day's and the window's requests and the minute's tokens, beside the
// same sums over the attempt rows still holding their booking (not released, not refused).
import type { Sql } from "../../shared/db/migrate.ts";

export interface CounterAgainstRows {
  quota_group: string;
  model: string;
  counted: { minute: number; tokens: number; day: number; window: number };
  logged: { minute: number; tokens: number; day: number; window: number };
  /** Seconds between the group's first and last admission (the window compares all of them: < 60). */
  span_s: number;
}

/**
 * Each counter row of `models`. The window is compared with every booking of its group: a caller keeps
 * its run within a minute (span_s says it did).
 */
export async function countersAgainstRows(sql: Sql, models: string[]): Promise<CounterAgainstRows[]> {
  const rows = await sql<(Omit<CounterAgainstRows, "counted" | "logged"> & Record<string, number>)[]>`
    select c.quota_group, c.model, c.rpm_used, c.tpm_used, c.rpd_used, c.window_requests,
           coalesce(l.minute, 0)::int as log_minute, coalesce(l.tokens, 0)::int as log_tokens,
           coalesce(l.day, 0)::int as log_day, coalesce(l.total, 0)::int as log_window,
           coalesce(l.span_s, 0)::float8 as span_s
    from public.google_ai_usage_counters c
    left join lateral (
      select sum(a.requests) filter (where a.minute_bucket = c.minute_bucket) as minute,
             sum(coalesce(a.input_tokens, a.estimated_tokens)) filter (where a.minute_bucket = c.minute_bucket) as tokens,
             sum(a.requests) filter (where a.day_bucket = c.day_bucket) as day,
             sum(a.requests) as total,
             extract(epoch from max(a.admitted_at) - min(a.admitted_at)) as span_s
      from public.google_ai_attempts a
      where a.model = c.model and a.quota_group = c.quota_group and a.status not in ('released', 'refused')) l on true
    where c.model = any(${models}::text[])
    order by c.quota_group, c.model`;
  return rows.map((r) => ({
    quota_group: r.quota_group,
    model: r.model,
    counted: { minute: r.rpm_used!, tokens: r.tpm_used!, day: r.rpd_used!, window: r.window_requests! },
    logged: { minute: r.log_minute!, tokens: r.log_tokens!, day: r.log_day!, window: r.log_window! },
    span_s: r.span_s,
  }));
}
