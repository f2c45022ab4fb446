-- Team shared keys and LLM config modes (personal, shared, owner-name). A shared key serves other
-- users only through its owner's allow-list (or is_public) and within its limits, checked
-- atomically here. The owner-name mode has no access control by design; the functions refuse it
-- unless the deployment sets ALLOW_OWNER_NAME_SHARING=true.

create table public.shared_keys (
  id uuid primary key default gen_random_uuid(),
  account_name text not null unique check (account_name ~ '^[a-z0-9][a-z0-9_-]{2,99}$'),
  display_name text not null check (char_length(display_name) between 1 and 200),
  provider text not null
    check (provider in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  model text check (char_length(model) <= 200),
  ciphertext bytea not null,
  last_four text not null check (char_length(last_four) <= 4),
  key_version integer not null default 1 check (key_version > 0),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  is_public boolean not null default false,
  allowed_user_ids uuid[] not null default '{}',
  daily_limit integer check (daily_limit > 0),
  per_user_daily_limit integer check (per_user_daily_limit > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.shared_keys is
  'Provider keys an owner shares with an allow-list, within daily limits. Only the owner sees the row; nobody selects the ciphertext.';

alter table public.shared_keys enable row level security;

revoke all on table public.shared_keys from anon, authenticated;
grant select (id, account_name, display_name, provider, model, last_four, key_version, owner_id, is_public,
              allowed_user_ids, daily_limit, per_user_daily_limit, created_at, updated_at)
  on table public.shared_keys to authenticated;
grant insert (account_name, display_name, provider, model, ciphertext, last_four, key_version, owner_id,
              is_public, allowed_user_ids, daily_limit, per_user_daily_limit)
  on table public.shared_keys to authenticated;
grant update (display_name, model, ciphertext, last_four, key_version, is_public, allowed_user_ids,
              daily_limit, per_user_daily_limit, updated_at)
  on table public.shared_keys to authenticated;
grant delete on table public.shared_keys to authenticated;
grant all on table public.shared_keys to service_role;

create policy "shared_keys: owners select their keys"
  on public.shared_keys for select to authenticated
  using ((select auth.uid()) = owner_id);

create policy "shared_keys: owners insert their keys"
  on public.shared_keys for insert to authenticated
  with check ((select auth.uid()) = owner_id);

create policy "shared_keys: owners update their keys"
  on public.shared_keys for update to authenticated
  using ((select auth.uid()) = owner_id)
  with check ((select auth.uid()) = owner_id);

create policy "shared_keys: owners delete their keys"
  on public.shared_keys for delete to authenticated
  using ((select auth.uid()) = owner_id);

create table public.shared_key_usage (
  shared_key_id uuid not null references public.shared_keys (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  day date not null,
  requests integer not null default 0 check (requests >= 0),
  primary key (shared_key_id, day, user_id)
);

comment on table public.shared_key_usage is 'Requests per shared key, per user, per UTC day.';

alter table public.shared_key_usage enable row level security;

revoke all on table public.shared_key_usage from anon, authenticated;
grant select on table public.shared_key_usage to authenticated;
grant all on table public.shared_key_usage to service_role;

create policy "shared_key_usage: users and key owners select usage"
  on public.shared_key_usage for select to authenticated
  using (
    (select auth.uid()) = user_id
    or exists (select 1 from public.shared_keys as k
                where k.id = shared_key_id and k.owner_id = (select auth.uid()))
  );

create table public.owner_name_keys (
  owner_name text not null check (owner_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{1,99}$'),
  provider text not null
    check (provider in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  ciphertext bytea not null,
  last_four text not null check (char_length(last_four) <= 4),
  key_version integer not null default 1 check (key_version > 0),
  updated_by uuid references auth.users (id) on delete set null,
  updated_at timestamptz not null default now(),
  primary key (owner_name, provider)
);

comment on table public.owner_name_keys is
  'Seed 004 owner-name keys: anyone naming the owner name uses the key. Only the server touches this table.';

alter table public.owner_name_keys enable row level security;
revoke all on table public.owner_name_keys from anon, authenticated;
grant all on table public.owner_name_keys to service_role;

create table public.llm_configs (
  user_id uuid primary key default auth.uid() references auth.users (id) on delete cascade,
  use_shared_key boolean not null default false,
  shared_key_account_name text,
  use_owner_name boolean not null default false,
  key_owner_name text,
  provider text
    check (provider in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  model text check (char_length(model) <= 200),
  base_url text,
  region text,
  deployment text,
  extra_headers jsonb,
  response_format text not null default 'auto',
  daily_limit integer check (daily_limit > 0),
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (not (use_shared_key and use_owner_name)),
  check (not use_shared_key or shared_key_account_name is not null),
  check (not use_owner_name or (key_owner_name is not null and provider is not null))
);

comment on table public.llm_configs is
  'Each user''s LLM config mode: personal key, a team shared key, or (when the deployment allows it) an owner name.';

alter table public.llm_configs enable row level security;

revoke all on table public.llm_configs from anon, authenticated;
grant select, insert, update, delete on table public.llm_configs to authenticated;
grant all on table public.llm_configs to service_role;

create policy "llm_configs: users select their config"
  on public.llm_configs for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "llm_configs: users insert their config"
  on public.llm_configs for insert to authenticated
  with check ((select auth.uid()) = user_id);

create policy "llm_configs: users update their config"
  on public.llm_configs for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "llm_configs: users delete their config"
  on public.llm_configs for delete to authenticated
  using ((select auth.uid()) = user_id);

-- Takes one request's worth of a shared key, atomically: the key row is locked, the allow-list
-- and both daily limits are checked, the use is counted and audited, and the decrypted key is
-- returned, all in one round trip. Refusals are audited too. Security definer because the caller
-- is not the key's owner and must never read the ciphertext or the counters directly.
create function private.use_shared_key(
  p_account_name text,
  p_user_id uuid,
  p_service text,
  p_passphrase text,
  p_key_version integer,
  p_previous_passphrase text,
  p_now timestamptz default null
)
returns table (outcome text, secret text, model text, remaining_user integer, remaining_total integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_day date := (coalesce(p_now, now()) at time zone 'utc')::date;
  v_key public.shared_keys%rowtype;
  v_total integer;
  v_mine integer;
begin
  select * into v_key from public.shared_keys as k
   where k.account_name = p_account_name and k.provider = p_service
   for update;
  if not found then
    return query select 'not_found'::text, null::text, null::text, null::integer, null::integer;
    return;
  end if;

  if not (v_key.is_public or p_user_id = v_key.owner_id or p_user_id = any (v_key.allowed_user_ids)) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'not_on_allow_list'));
    return query select 'access_denied'::text, null::text, null::text, null::integer, null::integer;
    return;
  end if;

  select coalesce(sum(u.requests), 0)::integer,
         coalesce(sum(u.requests) filter (where u.user_id = p_user_id), 0)::integer
    into v_total, v_mine
    from public.shared_key_usage as u
   where u.shared_key_id = v_key.id and u.day = v_day;

  if (v_key.daily_limit is not null and v_total >= v_key.daily_limit)
     or (v_key.per_user_daily_limit is not null and v_mine >= v_key.per_user_daily_limit) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'limit_exceeded'));
    return query select 'limit_exceeded'::text, null::text, null::text, 0, 0;
    return;
  end if;

  insert into public.shared_key_usage as u (shared_key_id, user_id, day, requests)
  values (v_key.id, p_user_id, v_day, 1)
  on conflict (shared_key_id, day, user_id) do update set requests = u.requests + 1;

  insert into public.credential_events (owner_id, actor_id, service, event, via)
  values (v_key.owner_id, p_user_id, v_key.provider, 'use_shared_key', v_key.account_name);

  return query select
    'ok'::text,
    case
      when v_key.key_version = p_key_version then extensions.pgp_sym_decrypt(v_key.ciphertext, p_passphrase)
      else extensions.pgp_sym_decrypt(v_key.ciphertext, p_previous_passphrase)
    end,
    v_key.model,
    case when v_key.per_user_daily_limit is null then null else v_key.per_user_daily_limit - v_mine - 1 end,
    case when v_key.daily_limit is null then null else v_key.daily_limit - v_total - 1 end;
end;
$$;

revoke all on function private.use_shared_key(text, uuid, text, text, integer, text, timestamptz)
  from public, anon, authenticated;
grant execute on function private.use_shared_key(text, uuid, text, text, integer, text, timestamptz)
  to service_role;

-- The vault's lookup learns the caller's mode, still in one round trip: the personal values for
-- the service, plus the mode that governs this service. A shared key governs its own provider (or
-- every provider while its account is unknown: fail closed); owner-name mode governs the chosen
-- provider, and only when the deployment allows it (p_allow_owner_name) is the owner name's key
-- decrypted and returned.
drop function private.credentials_for(uuid, text, text, integer, text);

create function private.credentials_for(
  p_user_id uuid,
  p_service text,
  p_passphrase text,
  p_key_version integer,
  p_previous_passphrase text,
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
    case
      when c.key_version = p_key_version then extensions.pgp_sym_decrypt(c.ciphertext, p_passphrase)
      else extensions.pgp_sym_decrypt(c.ciphertext, p_previous_passphrase)
    end,
    caller.mode,
    caller.shared_key_account_name,
    caller.key_owner_name,
    (select case
              when o.key_version = p_key_version then extensions.pgp_sym_decrypt(o.ciphertext, p_passphrase)
              else extensions.pgp_sym_decrypt(o.ciphertext, p_previous_passphrase)
            end
       from public.owner_name_keys as o
      where caller.mode = 'owner_name' and p_allow_owner_name
        and o.owner_name = caller.key_owner_name and o.provider = p_service)
  from caller
  left join public.user_credentials as c on c.user_id = caller.user_id and c.service = p_service;
$$;

revoke all on function private.credentials_for(uuid, text, text, integer, text, boolean)
  from public, anon, authenticated;
grant execute on function private.credentials_for(uuid, text, text, integer, text, boolean) to service_role;

-- What a user may learn about a shared key before choosing it: whether it exists, whether they
-- are allowed, and its public description. Security definer because only the owner can read the
-- row; this reveals nothing else (not the owner, not the allow-list, not the key).
create function private.shared_key_access(p_account_name text, p_user_id uuid)
returns table (allowed boolean, display_name text, provider text, model text, per_user_daily_limit integer)
language sql
stable
security definer
set search_path = ''
as $$
  select k.is_public or k.owner_id = p_user_id or p_user_id = any (k.allowed_user_ids),
         k.display_name, k.provider, k.model, k.per_user_daily_limit
  from public.shared_keys as k
  where k.account_name = p_account_name;
$$;

revoke all on function private.shared_key_access(text, uuid) from public, anon, authenticated;
grant execute on function private.shared_key_access(text, uuid) to service_role;

-- The key modes' GET /me in one round trip: the caller's mode with the key's last four, today's
-- usage and the limit that applies. Security definer because it reads the shared key and owner-name
-- tables, which the caller cannot; it returns no secret and nothing about other users.
create function private.llm_config_summary(p_user_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', cfg.user_id,
    'use_shared_key', coalesce(cfg.use_shared_key, false),
    'shared_key_account_name', cfg.shared_key_account_name,
    'shared_key_display_name', sk.display_name,
    'use_owner_name', coalesce(cfg.use_owner_name, false),
    'key_owner_name', cfg.key_owner_name,
    'provider', coalesce(sk.provider, cfg.provider),
    'model', coalesce(cfg.model, sk.model),
    'base_url', cfg.base_url,
    'key_last_four', case
      when cfg.use_shared_key then null
      when cfg.use_owner_name then o.last_four
      else c.last_four
    end,
    'last_validated_at', case when cfg.use_shared_key or cfg.use_owner_name then null else c.last_validated_at end,
    'usage_today', case
      when cfg.use_shared_key then coalesce((
        select u.requests from public.shared_key_usage as u
         where u.shared_key_id = sk.id and u.user_id = cfg.user_id
           and u.day = (now() at time zone 'utc')::date), 0)
      else coalesce((
        select sum(d.request_count)::integer from public.usage_daily as d
         where d.user_id = cfg.user_id and d.service = cfg.provider
           and d.day = (now() at time zone 'utc')::date), 0)
    end,
    'daily_limit', case when cfg.use_shared_key then sk.per_user_daily_limit else cfg.daily_limit end,
    'is_active', cfg.is_active,
    'created_at', cfg.created_at,
    'updated_at', cfg.updated_at
  )
  from public.llm_configs as cfg
  left join public.shared_keys as sk on cfg.use_shared_key and sk.account_name = cfg.shared_key_account_name
  left join public.owner_name_keys as o
    on cfg.use_owner_name and o.owner_name = cfg.key_owner_name and o.provider = cfg.provider
  left join public.user_credentials as c
    on c.user_id = cfg.user_id and c.service = cfg.provider and c.credential_key = 'api_key'
  where cfg.user_id = p_user_id;
$$;

revoke all on function private.llm_config_summary(uuid) from public, anon, authenticated;
grant execute on function private.llm_config_summary(uuid) to service_role;
