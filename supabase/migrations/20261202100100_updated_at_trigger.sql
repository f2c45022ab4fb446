-- updated_at is stamped in one place: the trigger private.set_updated_at, on every table that has
-- the column, instead of each statement setting it to now() by hand. It overwrites whatever an
-- update sets, so no role (a client with an update grant on the column included) can choose it.
--
-- Some tables' rows are also changed by the server as bookkeeping, which is not an update of the
-- row: rotate-key re-sealing a ciphertext (ciphertext, key_version), a key check, a use, the
-- on/off switch (user_credentials), the owner-funded run counters (flows). Their trigger fires
-- only for an update of the other columns (`before update of`); tests/integration/schemaRules_test.ts
-- holds the bookkeeping columns and fails when a column is in neither list.

create function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

revoke all on function private.set_updated_at() from public, anon, authenticated;

-- With a before-update row trigger, Postgres recomputes a row's stored generated columns on every
-- update (the trigger may change any column), so whoever updates a sealed table now executes its
-- binding function: a signed-in owner editing a shared key's settings, and service_role. The
-- bindings only join their arguments into a string; the schema stays closed to client roles.
grant execute on function private.shared_key_binding(uuid, uuid, text, text) to authenticated, service_role;
grant execute on function private.credential_binding(uuid, text, text) to service_role;
grant execute on function private.owner_name_binding(text, text) to service_role;

create trigger set_updated_at before update on public.usage_daily
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.conversations
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.conversation_runs
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.llm_configs
  for each row execute function private.set_updated_at();

create trigger set_updated_at
  before update of id, user_id, service, credential_key, last_four, created_at, updated_at
  on public.user_credentials
  for each row execute function private.set_updated_at();

create trigger set_updated_at
  before update of id, account_name, display_name, provider, model, last_four, owner_id, is_public,
                   allowed_user_ids, daily_limit, per_user_daily_limit, created_at, updated_at
  on public.shared_keys
  for each row execute function private.set_updated_at();

create trigger set_updated_at
  before update of owner_name, provider, last_four, updated_by, updated_at
  on public.owner_name_keys
  for each row execute function private.set_updated_at();

create trigger set_updated_at
  before update of id, owner_id, name, definition, live_id, share_token_hash, use_owner_keys,
                   per_minute_limit, daily_limit, published_at, created_at, updated_at,
                   run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit
  on public.flows
  for each row execute function private.set_updated_at();

-- The functions that wrote updated_at by hand, as before without it (replacing keeps their grants).

-- As in 20261122100000_usage_daily.sql.
create or replace function private.record_usage(p_rows jsonb)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.usage_daily as u
    (user_id, day, service, key_source, request_count, prompt_tokens, completion_tokens, total_tokens)
  select r.user_id, r.day, r.service, r.key_source, r.requests, r.prompt_tokens,
         r.completion_tokens, r.total_tokens
  from jsonb_to_recordset(p_rows) as r(
    user_id uuid, day date, service text, key_source text, requests bigint,
    prompt_tokens bigint, completion_tokens bigint, total_tokens bigint
  )
  where exists (select 1 from auth.users as a where a.id = r.user_id)
  on conflict (user_id, day, service, key_source) do update
    set request_count = u.request_count + excluded.request_count,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        total_tokens = u.total_tokens + excluded.total_tokens;

  update public.user_credentials as c
    set last_used_at = now()
  from (
    select distinct r.user_id, r.service
    from jsonb_to_recordset(p_rows) as r(user_id uuid, service text, key_source text)
    where r.key_source = 'user'
  ) as used
  where c.user_id = used.user_id and c.service = used.service and c.credential_key = 'api_key';
$$;

-- As in 20261201120000_validation_outcomes.sql.
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
          key_version = excluded.key_version, last_validated_at = null, validation_status = null
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

-- As in 20261201100000_custody.sql.
create or replace function private.replace_shared_key_secret(
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
         last_four = right(p_value, 4), key_version = (p_keyring ->> 'version')::integer
   where k.account_name = p_account_name and k.owner_id = p_owner_id
  returning *;
$$;

-- As in 20261201100000_custody.sql.
create or replace function private.store_owner_name_key(
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
    updated_by = excluded.updated_by;
$$;

-- As in 20261202000100_revoke_unpublishes.sql.
create or replace function private.set_flow_share(p_owner_id uuid, p_flow_id uuid, p_action text, p_share_token text, p_live_id text)
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
      when 'revoke_token' then null
      else f.published_at end
  where f.id = p_flow_id and f.owner_id = p_owner_id
    and p_action in ('publish', 'rotate_token', 'revoke_token', 'unpublish')
    and (p_action <> 'rotate_token' or f.published_at is not null)
  returning *;
$$;
