-- Credentials that can never be admitted cost almost nothing and leave no per-request row.
--
-- llm-invoke checks a scoped token by its hash before it reads the request body
-- (google_ai_check_token, one indexed look-up), and keeps the answer in a short per-worker cache. A
-- token that is unknown, revoked or expired is refused there: no attempt row is written for it, only
-- one aggregate row per minute, reason and token (all unknown tokens share one row per minute, so a
-- caller inventing tokens cannot grow the table by more than a row a minute). The reservation still
-- validates the token in its own transaction, so a revocation takes effect at once there.

create table if not exists public.google_ai_credential_refusals (
  minute      timestamptz not null,
  reason      text not null check (reason in ('token_invalid', 'token_expired', 'token_revoked')),
  -- The refused token's row; null for unknown tokens (nothing to name, and never the token itself).
  token_id    uuid references public.google_ai_tokens (id) on delete cascade,
  client_id   uuid references public.google_ai_clients (id) on delete cascade,
  refusals    integer not null default 0 check (refusals >= 0),
  first_seen  timestamptz not null default now(),
  last_seen   timestamptz not null default now()
);
create unique index if not exists google_ai_credential_refusals_key
  on public.google_ai_credential_refusals (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid));

comment on table public.google_ai_credential_refusals is
  'Requests refused before any attempt row because their token can never be admitted: how many, per minute, reason and token (unknown tokens together). Trimmed after a day.';

alter table public.google_ai_credential_refusals enable row level security;
revoke all on table public.google_ai_credential_refusals from anon, authenticated, service_role;
grant select on public.google_ai_credential_refusals to service_role;

-- A client's scope caps output tokens too: budgets count input tokens (as Google's TPM does), so
-- without a cap one request could ask for a million output tokens. Requests above it are refused,
-- requests without maxOutputTokens are sent with it.
alter table public.google_ai_clients add column if not exists max_output_tokens integer not null default 8192;
do $$
begin
  alter table public.google_ai_clients add constraint google_ai_clients_max_output_tokens_check
    check (max_output_tokens between 1 and 1000000);
exception
  when duplicate_object then null;
end
$$;
comment on column public.google_ai_clients.max_output_tokens is
  'Most output tokens one request of this client may ask for; the gateway sends it when a request names none.';

-- Checks a token by its SHA-256 hex. Returns {status: 'ok', token_id, client, models, expires_at,
-- max_output_tokens} or
-- {status: <refusal>} after counting p_refusals refused requests (the one being checked plus those the
-- caller's cache refused since its last check) in the minute's aggregate row.
create or replace function public.google_ai_check_token(p_token_hash text, p_refusals integer default 1)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  if not found then
    v_reason := 'token_invalid';
  else
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    if v_token.revoked_at is not null or v_client.revoked_at is not null then
      v_reason := 'token_revoked';
    elsif v_token.expires_at <= pg_catalog.clock_timestamp() then
      v_reason := 'token_expired';
    end if;
  end if;

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', v_token.models, 'expires_at', v_token.expires_at, 'max_output_tokens', v_client.max_output_tokens);
  end if;

  insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
  values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
  on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
    refusals = r.refusals + excluded.refusals,
    last_seen = pg_catalog.clock_timestamp();
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$$;

revoke all on function public.google_ai_check_token(text, integer) from public, anon, authenticated;
grant execute on function public.google_ai_check_token(text, integer) to service_role;
