-- A token check made for no request counts no refusal.
--
-- llm-invoke keeps a valid token's check per worker and, once it is older than its TTL, answers the
-- next requests from it while one look-up refreshes it in the background (the reservation checks the
-- token again in its own transaction, so a revocation still takes effect there). That look-up is made
-- for no request: if it finds the token refused, the request it was refreshed for was refused by its
-- reservation (an attempt row), and google_ai_credential_refusals counts only requests refused before
-- any attempt row. So p_refusals => 0 now counts nothing; any other value counts as before (1 at least).
-- Signature and result as in 20261122000500_request_life_cycle.sql (grants kept by create or replace).

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

  if p_refusals is distinct from 0 then
    insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
    values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
    on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
      refusals = r.refusals + excluded.refusals,
      last_seen = pg_catalog.clock_timestamp();
  end if;
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$$;
