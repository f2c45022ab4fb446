-- What a key check can conclude, and when its conclusion stops holding.

-- A key whose account has no credit left is neither valid nor invalid: validate records
-- 'quota_exceeded', so the panel can say "add credit" rather than "replace the key".
alter table public.user_credentials
  drop constraint user_credentials_validation_status_check;

alter table public.user_credentials
  add constraint user_credentials_validation_status_check
  check (validation_status in ('valid', 'invalid', 'quota_exceeded', 'unreachable'));

-- Seals and upserts one value of p_user_id, as in 20261201100000_custody.sql, and when the value
-- is a base_url also clears the service's key check: "valid" was said of another endpoint, so
-- the status stays empty until a validate runs against the new one. Definer: ciphertext,
-- validation status and the audit trail are not client-writable. Replacing the function keeps
-- its grants.
create or replace function private.store_credential(
  p_user_id uuid,
  p_service text,
  p_credential_key text,
  p_value text,
  p_last_four text,
  p_keyring jsonb
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  with stored as (
    insert into public.user_credentials as c
      (user_id, service, credential_key, ciphertext, last_four, key_version)
    values (p_user_id, p_service, p_credential_key,
            private.seal_secret(p_value, private.credential_binding(p_user_id, p_service, p_credential_key), p_keyring),
            p_last_four, (p_keyring ->> 'version')::integer)
    on conflict (user_id, service, credential_key) do update
      set ciphertext = excluded.ciphertext, last_four = excluded.last_four,
          key_version = excluded.key_version, updated_at = now(),
          last_validated_at = null, validation_status = null
    returning c.service, c.credential_key
  ), endpoint_changed as (
    update public.user_credentials as k
       set last_validated_at = null, validation_status = null
     where k.user_id = p_user_id and k.service = p_service and k.credential_key = 'api_key'
       and p_credential_key = 'base_url'
  )
  insert into public.credential_events (owner_id, actor_id, service, event, detail)
  select p_user_id, p_user_id, s.service, 'set', jsonb_build_object('credential_key', s.credential_key)
    from stored as s;
$$;
