-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The queue's place reads the model and caller from their records (two assignments less) and
--   looks for a held ticket only when the request names one; the candidates read a group's cooldown by its
--   key
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone)
 RETURNS TABLE(quota_group text, priority integer, cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric, key_id uuid, key_alias text, env_var_name text, full_by text, day_zone text)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_variable
declare
  v_held public.google_ai_queue;
  v_ahead integer;
  v_due_ahead integer;
  v_head_limit text;   -- the limit a due ticket ahead waits for head first (google_ai_queue_turns)
  v_free_now integer;
  v_spread_bound boolean;
  v_kept_bound boolean;
begin
  rank := p_class.rank;
  class := p_class.name;
  may_book := true;
  if p_model.model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = p_caller.name and q.model = p_model.model and q.lease_until >= p_now;
    if v_held.ticket_id is not null then
      select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
        into ticket, rank, class, since;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      turn := least(v_held.turn,
        public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, ticket, v_held.turn));
    end if;
  end if;
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  select count(*), count(*) filter (where q.expected_at <= p_now),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model.model, p_model.rpm, p_model.rpd, p_exclude_key_ids, p_now, v_ahead + 1,
    rank, class, p_caller.name) t;
  -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks. (No turn,
  -- none today anywhere or every window kept from it by shares: the booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead < v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = p_model.model) u on u.share_id = s.id
               where s.model = p_model.model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = p_caller.name)
                 and coalesce((public.google_ai_ring_at(p_now,
                       public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                       u.ring_low, u.ring, u.window_requests, null)).sum_requests, 0) < s.reserved_rpm));
  if not may_book then
    blocked_by := coalesce(v_head_limit, case when p_model.rpm is not null then 'rpm' else 'tpm' end);
    cause := case when v_head_limit is not null or v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread'
                  when v_kept_bound then 'share_kept' else 'window_full' end;
  end if;
end
$function$
;
