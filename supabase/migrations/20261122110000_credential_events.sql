-- The audit trail of provider credentials: who set, deleted, validated or used a key, and who
-- was refused. Never a secret: only ids, the service, the kind of event and a small detail.

create table public.credential_events (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  actor_id uuid references auth.users (id) on delete set null,
  service text not null,
  event text not null
    check (event in ('set', 'delete', 'validate', 'use_share', 'use_shared_key', 'use_owner_name', 'denied')),
  via text,
  detail jsonb not null default '{}'::jsonb
);

comment on table public.credential_events is
  'Audit trail of credential events. owner_id is whose key it is; actor_id who acted. Holds no secrets.';

create index credential_events_owner_created_idx on public.credential_events (owner_id, created_at desc);

alter table public.credential_events enable row level security;

revoke all on table public.credential_events from anon, authenticated;
grant select on table public.credential_events to authenticated;
grant insert (owner_id, actor_id, service, event, via, detail) on table public.credential_events to authenticated;
grant all on table public.credential_events to service_role;

create policy "credential_events: owners select events on their keys"
  on public.credential_events for select to authenticated
  using ((select auth.uid()) = owner_id);

-- A signed-in user records only their own actions on their own keys; uses through shares and
-- shared keys are recorded by the definer functions that grant them.
create policy "credential_events: users insert their own actions"
  on public.credential_events for insert to authenticated
  with check ((select auth.uid()) = owner_id and (select auth.uid()) = actor_id);
