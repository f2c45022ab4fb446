-- Turning a key off without deleting it (the is_active flag of per-project BYOK provider keys). A
-- key that is off stays stored and sealed but is never used: the server's lookups (the vault in
-- vault/keyReader.ts, the owner-funded path in sharing/flowRuns.ts) drop it and answer
-- <PROVIDER>_NOT_CONFIGURED saying it is turned off. The decrypting functions are not redefined
-- here; the lookups filter on this column.

alter table public.user_credentials
  add column is_active boolean not null default true;

comment on column public.user_credentials.is_active is
  'False when the owner turned the key off: it is kept but never used until turned on again.';

-- The panel reads the switch; only the server flips it (below), as it writes every other column.
grant select (is_active) on table public.user_credentials to authenticated;

-- The audit trail records the switch too.
alter table public.credential_events drop constraint credential_events_event_check;
alter table public.credential_events add constraint credential_events_event_check
  check (event in ('set', 'delete', 'validate', 'use_share', 'use_shared_key', 'use_owner_name', 'denied',
                   'disable', 'enable'));

-- Turns p_user_id's api_key for p_service off or on and audits it; returns the rows changed (0
-- when there is no key). Definer: client roles write no credential rows and no audit rows.
create function private.set_credential_active(p_user_id uuid, p_service text, p_active boolean)
returns integer
language sql
volatile
security definer
set search_path = ''
as $$
  with changed as (
    update public.user_credentials as c
       set is_active = p_active
     where c.user_id = p_user_id and c.service = p_service and c.credential_key = 'api_key'
     returning c.service
  ), logged as (
    insert into public.credential_events (owner_id, actor_id, service, event, detail)
    select p_user_id, p_user_id, k.service, case when p_active then 'enable' else 'disable' end, '{}'::jsonb
      from changed as k
  )
  select count(*)::integer from changed;
$$;

revoke all on function private.set_credential_active(uuid, text, boolean) from public, anon, authenticated;
grant execute on function private.set_credential_active(uuid, text, boolean) to service_role;
