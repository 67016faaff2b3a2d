-- Priority classes: the order in which waiting requests are admitted (the admission queue,
-- 20261122035000_fair_queue.sql) and owners of reserved shares (20261122030000_reserved_shares.sql).
-- A credential allows its class and the lower ones: service callers the highest, a Kaggle client the
-- class on its row.

create table if not exists public.google_ai_priority_classes (
  name        text primary key constraint google_ai_priority_classes_name_check check (name ~ '^[a-z][a-z0-9_]{0,31}$'),
  -- Lower is served first.
  rank        smallint not null unique,
  description text
);
insert into public.google_ai_priority_classes (name, rank, description) values
  ('interactive', 0, 'A person waits for the answer (the bot). Default for service-key callers.'),
  ('batch', 10, 'Many calls, nobody waiting on each (Kaggle parsers). Default for Kaggle clients.')
on conflict (name) do nothing;
comment on table public.google_ai_priority_classes is
  'Admission order between waiting requests: lower rank first. A credential allows its class and the lower ones.';

alter table public.google_ai_clients add column if not exists priority_class text not null default 'batch'
  references public.google_ai_priority_classes (name);
comment on column public.google_ai_clients.priority_class is
  'The highest class this client''s requests are queued in (a request may ask for a lower one).';

alter table public.google_ai_attempts add column if not exists priority_class text;
comment on column public.google_ai_attempts.priority_class is 'The class the request was queued and admitted in.';

create or replace function public.google_ai_class_rank(p_class text)
returns smallint language sql stable set search_path = ''
as $$ select c.rank from public.google_ai_priority_classes c where c.name = p_class $$;

-- Access (as in the access file): the rows are the operator's; the rank function is the admission's.
alter table public.google_ai_priority_classes enable row level security;
revoke all on table public.google_ai_priority_classes from anon, authenticated, service_role;
grant select, insert, update on public.google_ai_priority_classes to service_role;
revoke all on function public.google_ai_class_rank(text) from public, anon, authenticated, service_role;
