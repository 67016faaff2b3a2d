-- The Edge Functions' own role: it may call the gateway's RPCs and nothing else (grants in
-- 99_access.sql). Roles belong to the cluster, not to a schema: created once, never dropped.
-- On Supabase the operator gives it a password and login once (docs/deployment.md):
--   alter role eve_gateway with login password '<a long random password>';
do $$
begin
  create role eve_gateway nologin;
exception
  when duplicate_object then null;
end
$$;
