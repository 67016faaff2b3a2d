-- Budgets: what a scoped token may spend over its life, and a Kaggle client or a service caller per
-- Pacific day and month, in one shape (google_ai_budget) over the owners' own columns; a service
-- caller's budgets (google_ai_caller_budgets), which the booking checks under their lock
-- (google_ai_caller_budget_at, 50_booking.sql, where the request it takes is known).
set check_function_bodies = off;

CREATE TABLE public.google_ai_caller_budgets (
    caller text NOT NULL PRIMARY KEY,
    daily_max_requests integer,
    daily_max_tokens integer,
    day_bucket date,
    requests_today integer DEFAULT 0 NOT NULL,
    tokens_today bigint DEFAULT 0 NOT NULL,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    daily_max_usd numeric,
    month_bucket date,
    monthly_max_usd numeric,
    spent_month_usd numeric DEFAULT 0 NOT NULL,
    spent_today_usd numeric DEFAULT 0 NOT NULL,
    CONSTRAINT google_ai_caller_budgets_caller_check CHECK (((caller ~ '^[A-Za-z0-9._:@-]{1,80}$'::text) AND (caller !~*
      '^client:'::text))),
    CONSTRAINT google_ai_caller_budgets_requests_check CHECK ((daily_max_requests >= 0)),
    CONSTRAINT google_ai_caller_budgets_tokens_check CHECK ((daily_max_tokens >= 0))
);

COMMENT ON TABLE public.google_ai_caller_budgets IS
    'Requests and input tokens a service caller may book per Pacific day (null: no limit); requests_today and '
    'tokens_today are booked with each reservation. Refusal caller_budget until Pacific midnight.';

COMMENT ON COLUMN public.google_ai_caller_budgets.daily_max_usd IS
    'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: '
    'no limit), booked and settled as a client''s (google_ai_clients.daily_max_usd). Refusal caller_budget.';

-- A budget, whoever keeps it: a scoped token for its life (period life), a client or a service caller per
-- Pacific day and month (period day). Read from the owner's row by google_ai_budget_of, judged by
-- google_ai_budget_verdict, counted by google_ai_budget_counted; the owner's columns are not renamed.
CREATE TYPE public.google_ai_budget AS (
    period text,
    max_requests integer,
    max_tokens bigint,
    max_usd numeric,
    bucket date,
    requests integer,
    tokens bigint,
    spent_usd numeric,
    monthly_max_usd numeric,
    month_bucket date,
    spent_month_usd numeric
);

COMMENT ON TYPE public.google_ai_budget IS
    'A budget and its use: requests, tokens and money (US dollars) per period (life: a token''s; day: a Pacific '
    'day, bucket), money per Pacific month (month_bucket); null: no limit.';

-- A day's budget, as every budget reads: a service caller's (google_ai_caller_budgets) or a client's
-- (google_ai_clients), whose rows name its columns alike; a token's is the overload for its row (35).
-- (PL/pgSQL, as every helper here that returns a budget: PostgreSQL plans a SQL one on every call. The
-- linter checks its body as for a client's row; a caller budget's names the same columns.)
CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row anyelement) RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
-- @plpgsql_check_options: anyelementtype = public.google_ai_clients
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$$;

-- A request counts against a budget once, on its first attempt; a retry spends tokens only.
CREATE OR REPLACE FUNCTION public.google_ai_request_counts(p_attempt integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when coalesce(p_attempt, 1) operator(pg_catalog.=) 1 then 1 else 0 end $$;

-- A budget as of Pacific day p_day: a day's counts and spend are those of its bucket's day, none on
-- another day; the month's spend is its month's; a life's counts are always its own. The one place a
-- budget rolls over.
CREATE OR REPLACE FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date)
    RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_current boolean := p_budget.period = 'life' or p_budget.bucket = p_day;
  v_month date := pg_catalog.date_trunc('month', p_day)::date;
begin
  return row(p_budget.period, p_budget.max_requests, p_budget.max_tokens, p_budget.max_usd,
    case when p_budget.period = 'day' then p_day end, case when v_current then p_budget.requests else 0 end,
    case when v_current then p_budget.tokens else 0 end, case when v_current then p_budget.spent_usd else 0 end,
    p_budget.monthly_max_usd, v_month,
    case when p_budget.month_bucket = v_month then p_budget.spent_month_usd else 0 end)::public.google_ai_budget;
end
$$;

-- What is left of a budget on Pacific day p_day, never below 0 (null: no such limit): requests, tokens
-- and money of its period, money of its month.
CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date,
    OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, p_day);
begin
  requests := v_b.max_requests - least(v_b.max_requests, v_b.requests);
  tokens := v_b.max_tokens - least(v_b.max_tokens, v_b.tokens);
  usd := v_b.max_usd - least(v_b.max_usd, v_b.spent_usd);
  month_usd := v_b.monthly_max_usd - least(v_b.monthly_max_usd, v_b.spent_month_usd);
end
$$;

-- A budget's verdict on a call at p_at of p_requests requests and p_tokens tokens that may cost p_worst
-- (null: not known). cause: budget (a count over its limit: over, not "nothing left", so a retry or a
-- request of no tokens is still refused once the operator lowered the budget below the use), or
-- spend_budget (money, or a price not known); period: whose (life, day or month); reopens_at: the
-- period's end (a life never reopens, nor does an unknown price). All null: the budget lets it in.
CREATE OR REPLACE FUNCTION public.google_ai_budget_verdict(p_budget public.google_ai_budget,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text,
    OUT period text, OUT reopens_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, public.google_ai_pacific_day(p_at));
begin
  if v_b.requests + p_requests > v_b.max_requests or v_b.tokens + p_tokens > v_b.max_tokens then
    cause := 'budget';
  elsif v_b.max_usd is not null and (p_worst is null or p_worst + v_b.spent_usd > v_b.max_usd) then
    cause := 'spend_budget';
  elsif v_b.monthly_max_usd is not null
        and (p_worst is null or p_worst + v_b.spent_month_usd > v_b.monthly_max_usd) then
    cause := 'spend_budget';
    period := 'month';
    reopens_at := (v_b.month_bucket + interval '1 month') at time zone public.google_ai_pacific_zone();
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
end
$$;

-- A budget with a call counted in it on Pacific day p_day, by p_requests, p_tokens and p_usd, never
-- below 0: a booking (p_book) rolls the day and month over to p_day's (google_ai_budget_on) and counts
-- in them; the end of a call (finalize settles, release gives back) moves only a day and a month still
-- counted. A life always counts.
CREATE OR REPLACE FUNCTION public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date,
    p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_b public.google_ai_budget := case when p_book then public.google_ai_budget_on(p_budget, p_day) else p_budget end;
begin
  if p_book or p_budget.period = 'life' or p_budget.bucket = p_day then
    v_b.requests := greatest(0, v_b.requests + p_requests);
    v_b.tokens := greatest(0, v_b.tokens + p_tokens);
    v_b.spent_usd := greatest(0, v_b.spent_usd + p_usd);
  end if;
  if p_book or p_budget.month_bucket = pg_catalog.date_trunc('month', p_day)::date then
    v_b.spent_month_usd := greatest(0, v_b.spent_month_usd + p_usd);
  end if;
  return v_b;
end
$$;
