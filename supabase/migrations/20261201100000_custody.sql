-- Custody of stored secrets, against an attacker who holds a client role or a copy of the data.
--
-- 1. One owner of encryption: private.seal_secret / private.open_secret (Supabase Vault's
--    create_secret / decrypted_secrets is the model). Every other function hands them an opaque
--    keyring (jsonb: version, current, previous) and never touches a passphrase itself.
-- 2. Each ciphertext is bound to its row: the sealed plaintext starts with the row's binding
--    (table, owner, service, credential key), and open_secret refuses a ciphertext whose binding
--    is not the row's, so a ciphertext copied into another row does not open. Rows sealed before
--    this migration carry no binding; they still open until `npm run rotate-key` re-seals them
--    (docs/security.md).
-- 3. No client role writes ciphertext, key versions, last four, validation results, audit rows
--    or share-token hashes: those writes go through the definer functions below, which only the
--    server (service_role) may call, with the user id it verified.
-- 4. Sequences are not writable by anon or authenticated.

-- The binding of each encrypted row: what the sealed plaintext must name to open in that row.
-- Immutable, so each table keeps it as a stored generated column (rotation reads it from there).
create function private.credential_binding(p_user_id uuid, p_service text, p_credential_key text)
returns text
language sql
immutable
set search_path = ''
as $$
  select 'user_credentials/' || p_user_id::text || '/' || p_service || '/' || p_credential_key;
$$;

create function private.shared_key_binding(p_id uuid, p_owner_id uuid, p_provider text, p_account_name text)
returns text
language sql
immutable
set search_path = ''
as $$
  select 'shared_keys/' || p_id::text || '/' || p_owner_id::text || '/' || p_provider || '/' || p_account_name;
$$;

create function private.owner_name_binding(p_owner_name text, p_provider text)
returns text
language sql
immutable
set search_path = ''
as $$
  select 'owner_name_keys/' || p_owner_name || '/' || p_provider;
$$;

alter table public.user_credentials
  add column secret_binding text not null
  generated always as (private.credential_binding(user_id, service, credential_key)) stored;
alter table public.shared_keys
  add column secret_binding text not null
  generated always as (private.shared_key_binding(id, owner_id, provider, account_name)) stored;
alter table public.owner_name_keys
  add column secret_binding text not null
  generated always as (private.owner_name_binding(owner_name, provider)) stored;

-- Seals one value for the row named by p_binding with the keyring's current passphrase.
-- Not definer: it reads no table; only the definer functions and the rotation script call it.
create function private.seal_secret(p_value text, p_binding text, p_keyring jsonb)
returns bytea
language sql
volatile
set search_path = ''
as $$
  select extensions.pgp_sym_encrypt(
    'byok-sealed-v1' || chr(10) || p_binding || chr(10) || p_value,
    p_keyring ->> 'current',
    'cipher-algo=aes256'
  );
$$;

-- Opens one ciphertext for the row named by p_binding: the passphrase is the keyring's current
-- one when the row carries the keyring's version, else the previous one. Null when it does not
-- open: wrong passphrase, corrupt data, or sealed for another row. Never raises, so one bad row
-- neither fails another user's lookup nor stops a rotation.
create function private.open_secret(p_ciphertext bytea, p_binding text, p_row_version integer, p_keyring jsonb)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_passphrase text := case
    when p_row_version = (p_keyring ->> 'version')::integer then p_keyring ->> 'current'
    else p_keyring ->> 'previous'
  end;
  v_marker constant text := 'byok-sealed-v1' || chr(10);
  v_head text := v_marker || p_binding || chr(10);
  v_plain text;
begin
  if p_ciphertext is null or v_passphrase is null or p_binding is null then
    return null;
  end if;
  begin
    v_plain := extensions.pgp_sym_decrypt(p_ciphertext, v_passphrase);
  exception when others then
    return null;
  end;
  if starts_with(v_plain, v_head) then
    return substr(v_plain, char_length(v_head) + 1);
  end if;
  if starts_with(v_plain, v_marker) then
    return null; -- sealed for another row
  end if;
  return v_plain; -- sealed before bindings existed; rotate-key re-seals it
end;
$$;

revoke all on function private.credential_binding(uuid, text, text) from public, anon, authenticated;
revoke all on function private.shared_key_binding(uuid, uuid, text, text) from public, anon, authenticated;
revoke all on function private.owner_name_binding(text, text) from public, anon, authenticated;
revoke all on function private.seal_secret(text, text, jsonb) from public, anon, authenticated;
revoke all on function private.open_secret(bytea, text, integer, jsonb) from public, anon, authenticated;

-- Client roles: read what the panel shows, delete their own rows, nothing else.
revoke insert, update on table public.user_credentials from anon, authenticated;
revoke insert, update on table public.shared_keys from anon, authenticated;
grant update (display_name, model, is_public, allowed_user_ids, daily_limit, per_user_daily_limit, updated_at)
  on table public.shared_keys to authenticated;
revoke insert, update, delete on table public.credential_events from anon, authenticated;
drop policy "credential_events: users insert their own actions" on public.credential_events;
revoke update on table public.flows from anon, authenticated;
grant update (name, definition, use_owner_keys, per_minute_limit, daily_limit, updated_at)
  on table public.flows to authenticated;

revoke all on all sequences in schema public from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;

-- Stores (or replaces) one credential of p_user_id and audits it, sealed for its row. A new value
-- clears the previous validation result. Definer: clients may not write ciphertext.
create function private.store_credential(
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
  )
  insert into public.credential_events (owner_id, actor_id, service, event, detail)
  select p_user_id, p_user_id, s.service, 'set', jsonb_build_object('credential_key', s.credential_key)
    from stored as s;
$$;

-- Deletes credentials of p_user_id and audits each; returns how many rows went. Definer: the
-- audit trail is not client-writable.
create function private.delete_credentials(p_user_id uuid, p_service text, p_credential_keys text[])
returns integer
language sql
volatile
security definer
set search_path = ''
as $$
  with removed as (
    delete from public.user_credentials as c
     where c.user_id = p_user_id and c.service = p_service and c.credential_key = any (p_credential_keys)
     returning c.service, c.credential_key
  ), logged as (
    insert into public.credential_events (owner_id, actor_id, service, event, detail)
    select p_user_id, p_user_id, r.service, 'delete', jsonb_build_object('credential_key', r.credential_key)
      from removed as r
  )
  select count(*)::integer from removed;
$$;

-- Records the outcome of the server's key check. Definer: validation status is not client-writable.
create function private.record_validation(p_user_id uuid, p_service text, p_status text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  with checked as (
    update public.user_credentials as c
       set last_validated_at = now(), validation_status = p_status
     where c.user_id = p_user_id and c.service = p_service and c.credential_key = 'api_key'
     returning c.service
  )
  insert into public.credential_events (owner_id, actor_id, service, event, detail)
  select p_user_id, p_user_id, k.service, 'validate', jsonb_build_object('result', p_status)
    from checked as k;
$$;

-- Creates a shared key owned by p_owner_id, sealed for its row. Definer: clients may not write
-- ciphertext. The id is drawn first because the binding names it.
create function private.create_shared_key(
  p_owner_id uuid,
  p_account_name text,
  p_display_name text,
  p_provider text,
  p_model text,
  p_value text,
  p_is_public boolean,
  p_allowed_user_ids uuid[],
  p_daily_limit integer,
  p_per_user_daily_limit integer,
  p_keyring jsonb
)
returns setof public.shared_keys
language sql
volatile
security definer
set search_path = ''
as $$
  with new_key as (select gen_random_uuid() as id)
  insert into public.shared_keys
    (id, account_name, display_name, provider, model, ciphertext, last_four, key_version, owner_id,
     is_public, allowed_user_ids, daily_limit, per_user_daily_limit)
  select n.id, p_account_name, p_display_name, p_provider, p_model,
         private.seal_secret(p_value, private.shared_key_binding(n.id, p_owner_id, p_provider, p_account_name), p_keyring),
         right(p_value, 4), (p_keyring ->> 'version')::integer, p_owner_id,
         p_is_public, p_allowed_user_ids, p_daily_limit, p_per_user_daily_limit
    from new_key as n
  returning *;
$$;

-- Replaces the key behind p_owner_id's shared key; no row when the caller does not own it.
create function private.replace_shared_key_secret(
  p_owner_id uuid,
  p_account_name text,
  p_value text,
  p_keyring jsonb
)
returns setof public.shared_keys
language sql
volatile
security definer
set search_path = ''
as $$
  update public.shared_keys as k
     set ciphertext = private.seal_secret(p_value, k.secret_binding, p_keyring),
         last_four = right(p_value, 4), key_version = (p_keyring ->> 'version')::integer,
         updated_at = now()
   where k.account_name = p_account_name and k.owner_id = p_owner_id
  returning *;
$$;

-- Stores the key under an owner name, sealed for its row. Only the server calls it.
create function private.store_owner_name_key(
  p_owner_name text,
  p_provider text,
  p_value text,
  p_updated_by uuid,
  p_keyring jsonb
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.owner_name_keys as o (owner_name, provider, ciphertext, last_four, key_version, updated_by)
  values (p_owner_name, p_provider,
          private.seal_secret(p_value, private.owner_name_binding(p_owner_name, p_provider), p_keyring),
          right(p_value, 4), (p_keyring ->> 'version')::integer, p_updated_by)
  on conflict (owner_name, provider) do update set
    ciphertext = excluded.ciphertext, last_four = excluded.last_four, key_version = excluded.key_version,
    updated_by = excluded.updated_by, updated_at = now();
$$;

-- Sets or clears a flow's share token hash and live id for its owner; no row when the caller does
-- not own the flow (or, for rotate, it is not published). Definer: a chosen, weak token hash
-- must not be client-writable. p_action: publish, rotate_token, revoke_token or unpublish.
create function private.set_flow_share(p_owner_id uuid, p_flow_id uuid, p_action text, p_share_token text, p_live_id text)
returns setof public.flows
language sql
volatile
security definer
set search_path = ''
as $$
  update public.flows as f set
    live_id = case p_action
      when 'publish' then coalesce(f.live_id, p_live_id)
      when 'unpublish' then null
      else f.live_id end,
    share_token_hash = case
      when p_action in ('publish', 'rotate_token') then extensions.digest(p_share_token, 'sha256')
      else null end,
    published_at = case p_action
      when 'publish' then coalesce(f.published_at, now())
      when 'unpublish' then null
      else f.published_at end,
    updated_at = now()
  where f.id = p_flow_id and f.owner_id = p_owner_id
    and p_action in ('publish', 'rotate_token', 'revoke_token', 'unpublish')
    and (p_action <> 'rotate_token' or f.published_at is not null)
  returning *;
$$;

revoke all on function private.store_credential(uuid, text, text, text, text, jsonb) from public, anon, authenticated;
revoke all on function private.delete_credentials(uuid, text, text[]) from public, anon, authenticated;
revoke all on function private.record_validation(uuid, text, text) from public, anon, authenticated;
revoke all on function private.create_shared_key(uuid, text, text, text, text, text, boolean, uuid[], integer, integer, jsonb)
  from public, anon, authenticated;
revoke all on function private.replace_shared_key_secret(uuid, text, text, jsonb) from public, anon, authenticated;
revoke all on function private.store_owner_name_key(text, text, text, uuid, jsonb) from public, anon, authenticated;
revoke all on function private.set_flow_share(uuid, uuid, text, text, text) from public, anon, authenticated;
grant execute on function private.store_credential(uuid, text, text, text, text, jsonb) to service_role;
grant execute on function private.delete_credentials(uuid, text, text[]) to service_role;
grant execute on function private.record_validation(uuid, text, text) to service_role;
grant execute on function private.create_shared_key(uuid, text, text, text, text, text, boolean, uuid[], integer, integer, jsonb)
  to service_role;
grant execute on function private.replace_shared_key_secret(uuid, text, text, jsonb) to service_role;
grant execute on function private.store_owner_name_key(text, text, text, uuid, jsonb) to service_role;
grant execute on function private.set_flow_share(uuid, uuid, text, text, text) to service_role;

-- The readers, now opening through open_secret with the keyring instead of each carrying its own
-- copy of the passphrase choice.

drop function private.credentials_for(uuid, text, text, integer, text, boolean);

-- The vault's lookup in one round trip: the caller's values for the service and the mode that
-- governs it (see 20261122110200). Definer: signed-in users never read ciphertext.
create function private.credentials_for(
  p_user_id uuid,
  p_service text,
  p_keyring jsonb,
  p_allow_owner_name boolean
)
returns table (
  user_exists boolean,
  credential_key text,
  secret text,
  mode text,
  shared_key_account_name text,
  key_owner_name text,
  owner_name_secret text
)
language sql
stable
security definer
set search_path = ''
as $$
  with caller as (
    select u.id as user_id,
           case
             when cfg.use_shared_key and coalesce(sk.provider, cfg.provider, p_service) = p_service then 'shared'
             when cfg.use_owner_name and cfg.provider = p_service then 'owner_name'
             else 'personal'
           end as mode,
           cfg.shared_key_account_name,
           cfg.key_owner_name
    from (select 1) as one
    left join auth.users as u on u.id = p_user_id
    left join public.llm_configs as cfg on cfg.user_id = u.id and cfg.is_active
    left join public.shared_keys as sk on sk.account_name = cfg.shared_key_account_name
  )
  select
    caller.user_id is not null,
    c.credential_key,
    private.open_secret(c.ciphertext, c.secret_binding, c.key_version, p_keyring),
    caller.mode,
    caller.shared_key_account_name,
    caller.key_owner_name,
    (select private.open_secret(o.ciphertext, o.secret_binding, o.key_version, p_keyring)
       from public.owner_name_keys as o
      where caller.mode = 'owner_name' and p_allow_owner_name
        and o.owner_name = caller.key_owner_name and o.provider = p_service)
  from caller
  left join public.user_credentials as c on c.user_id = caller.user_id and c.service = p_service;
$$;

revoke all on function private.credentials_for(uuid, text, jsonb, boolean) from public, anon, authenticated;
grant execute on function private.credentials_for(uuid, text, jsonb, boolean) to service_role;

drop function private.get_owner_keys_for_execution(text, text, text, integer, text);

-- The owner-funded flows' key resolver (see 20261122110100), opening through open_secret.
create function private.get_owner_keys_for_execution(p_share_token text, p_service text, p_keyring jsonb)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_object_agg(c.credential_key, private.open_secret(c.ciphertext, c.secret_binding, c.key_version, p_keyring))
  from public.flows as f
  join public.user_credentials as c on c.user_id = f.owner_id and c.service = p_service
  where f.share_token_hash = extensions.digest(p_share_token, 'sha256')
    and f.use_owner_keys;
$$;

revoke all on function private.get_owner_keys_for_execution(text, text, jsonb) from public, anon, authenticated;
grant execute on function private.get_owner_keys_for_execution(text, text, jsonb) to service_role;
