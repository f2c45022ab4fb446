-- Turning a key off without deleting it (seed 001's is_active). A key that is off stays stored
-- and encrypted but is never used: the server's lookups (the vault in credentialVault.ts, the
-- owner-funded path in flowRuns.ts) drop it and answer <PROVIDER>_NOT_CONFIGURED saying it is
-- turned off. The decrypting functions are not redefined here; the lookups filter on this column.

alter table public.user_credentials
  add column is_active boolean not null default true;

comment on column public.user_credentials.is_active is
  'False when the owner turned the key off: it is kept but never used until turned on again.';

-- The owner reads and flips the switch under the existing row level security policies.
grant select (is_active) on table public.user_credentials to authenticated;
grant update (is_active) on table public.user_credentials to authenticated;

-- The audit trail records the switch too.
alter table public.credential_events drop constraint credential_events_event_check;
alter table public.credential_events add constraint credential_events_event_check
  check (event in ('set', 'delete', 'validate', 'use_share', 'use_shared_key', 'use_owner_name', 'denied',
                   'disable', 'enable'));
