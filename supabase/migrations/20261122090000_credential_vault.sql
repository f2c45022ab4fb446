-- The per-user credential vault.
-- Provider keys are encrypted with pgp_sym_encrypt (AES-256). The passphrase is a function
-- secret that reaches SQL only as a bind parameter; it is never stored here.

create extension if not exists pgcrypto with schema extensions;

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to service_role;

create table public.user_credentials (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  service text not null
    check (service in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  credential_key text not null default 'api_key'
    check (credential_key in ('api_key', 'base_url')),
  ciphertext bytea not null,
  last_four text not null check (char_length(last_four) <= 4),
  key_version integer not null default 1 check (key_version > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_validated_at timestamptz,
  validation_status text check (validation_status in ('valid', 'invalid', 'unreachable')),
  last_used_at timestamptz,
  unique (user_id, service, credential_key)
);

comment on table public.user_credentials is
  'One encrypted provider credential per (user, service, credential key). The ciphertext column is never readable by anon or authenticated.';

alter table public.user_credentials enable row level security;

-- Supabase grants every new public table to anon and authenticated; take that back and grant
-- column by column so the ciphertext is write-only for signed-in users.
revoke all on table public.user_credentials from anon, authenticated;
grant select (id, user_id, service, credential_key, last_four, key_version, created_at,
              updated_at, last_validated_at, validation_status, last_used_at)
  on table public.user_credentials to authenticated;
grant insert (user_id, service, credential_key, ciphertext, last_four, key_version)
  on table public.user_credentials to authenticated;
grant update (ciphertext, last_four, key_version, updated_at, last_validated_at, validation_status)
  on table public.user_credentials to authenticated;
grant delete on table public.user_credentials to authenticated;
grant all on table public.user_credentials to service_role;

create policy "user_credentials: owners select their rows"
  on public.user_credentials for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "user_credentials: owners insert their rows"
  on public.user_credentials for insert to authenticated
  with check ((select auth.uid()) = user_id);

create policy "user_credentials: owners update their rows"
  on public.user_credentials for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "user_credentials: owners delete their rows"
  on public.user_credentials for delete to authenticated
  using ((select auth.uid()) = user_id);

-- The proxy's hot path: one round trip returns whether the user exists and their decrypted
-- values for one service. Security definer because signed-in users must never read ciphertext;
-- only the server (which has verified the JWT and holds the passphrase) may call it.
-- Rows written before a key rotation carry the older key_version and use the previous passphrase.
create function private.credentials_for(
  p_user_id uuid,
  p_service text,
  p_passphrase text,
  p_key_version integer,
  p_previous_passphrase text
)
returns table (user_exists boolean, credential_key text, secret text)
language sql
stable
security definer
set search_path = ''
as $$
  select
    u.id is not null,
    c.credential_key,
    case
      when c.key_version = p_key_version then extensions.pgp_sym_decrypt(c.ciphertext, p_passphrase)
      else extensions.pgp_sym_decrypt(c.ciphertext, p_previous_passphrase)
    end
  from (select 1) as one
  left join auth.users as u on u.id = p_user_id
  left join public.user_credentials as c on c.user_id = u.id and c.service = p_service;
$$;

revoke all on function private.credentials_for(uuid, text, text, integer, text) from public, anon, authenticated;
grant execute on function private.credentials_for(uuid, text, text, integer, text) to service_role;
