-- Token limits on team shared keys: what the owner pays for is tokens as well as upstream calls.
--
-- The owner may set a daily token limit for the key and a per-user daily token limit (null: no
-- limit). Tokens are known only after the answer, so the server adds each answer's provider-
-- reported tokens to the caller's usage row (private.add_shared_key_tokens) and
-- private.use_shared_key refuses a call once the tokens already used today have reached a limit:
-- the last admitted call (and any call still in flight) may pass it by its own size.
-- Client roles read the counters and never write them.

alter table public.shared_keys
  add column daily_token_limit integer
    check (daily_token_limit between 1 and 1000000000),
  add column per_user_daily_token_limit integer
    check (per_user_daily_token_limit between 1 and 1000000000);

comment on column public.shared_keys.daily_token_limit is
  'Provider-reported tokens all users together may spend per UTC day; null: no limit.';
comment on column public.shared_keys.per_user_daily_token_limit is
  'Provider-reported tokens each user may spend per UTC day; null: no limit.';

grant select (daily_token_limit, per_user_daily_token_limit) on table public.shared_keys to authenticated;
grant update (daily_token_limit, per_user_daily_token_limit) on table public.shared_keys to authenticated;

alter table public.shared_key_usage
  add column tokens bigint not null default 0 check (tokens >= 0);

comment on column public.shared_key_usage.tokens is
  'Provider-reported tokens (prompt plus completion) of the answers, added by the server after each answer.';

-- Creates a shared key owned by p_owner_id, sealed for its row (see 20261201100000), now with
-- its token limits. Definer: clients may not write ciphertext.
drop function private.create_shared_key(uuid, text, text, text, text, text, boolean, uuid[], integer, integer, jsonb);

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
  p_daily_token_limit integer,
  p_per_user_daily_token_limit integer,
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
     is_public, allowed_user_ids, daily_limit, per_user_daily_limit, daily_token_limit,
     per_user_daily_token_limit)
  select n.id, p_account_name, p_display_name, p_provider, p_model,
         private.seal_secret(p_value, private.shared_key_binding(n.id, p_owner_id, p_provider, p_account_name), p_keyring),
         right(p_value, 4), (p_keyring ->> 'version')::integer, p_owner_id,
         p_is_public, p_allowed_user_ids, p_daily_limit, p_per_user_daily_limit, p_daily_token_limit,
         p_per_user_daily_token_limit
    from new_key as n
  returning *;
$$;

revoke all on function private.create_shared_key(uuid, text, text, text, text, text, boolean, uuid[], integer, integer, integer, integer, jsonb)
  from public, anon, authenticated;
grant execute on function private.create_shared_key(uuid, text, text, text, text, text, boolean, uuid[], integer, integer, integer, integer, jsonb)
  to service_role;

drop function private.use_shared_key(text, uuid, text, jsonb, integer, timestamptz);

-- Takes p_calls upstream calls' worth of a shared key, atomically (see 20261201100100), and also
-- refuses them once the tokens used today have reached the key's or the caller's token limit
-- (outcome token_limit_exceeded). Returns the key's id, which the server names when it adds the
-- answer's tokens. Security definer because the caller is not the key's owner and must never read
-- the ciphertext or the counters directly.
create function private.use_shared_key(
  p_account_name text,
  p_user_id uuid,
  p_service text,
  p_keyring jsonb,
  p_calls integer default 1,
  p_now timestamptz default null
)
returns table (
  outcome text,
  secret text,
  model text,
  remaining_user integer,
  remaining_total integer,
  shared_key_id uuid
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The output column shared_key_id must not shadow the table's column of that name.
#variable_conflict use_column
declare
  v_day date := (coalesce(p_now, now()) at time zone 'utc')::date;
  v_calls integer := greatest(coalesce(p_calls, 1), 1);
  v_key public.shared_keys%rowtype;
  v_total integer;
  v_mine integer;
  v_total_tokens bigint;
  v_my_tokens bigint;
  v_secret text;
begin
  select * into v_key from public.shared_keys as k
   where k.account_name = p_account_name and k.provider = p_service
   for update;
  if not found then
    return query select 'not_found'::text, null::text, null::text, null::integer, null::integer, null::uuid;
    return;
  end if;

  if not (v_key.is_public or p_user_id = v_key.owner_id or p_user_id = any (v_key.allowed_user_ids)) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'not_on_allow_list'));
    return query select 'not_found'::text, null::text, null::text, null::integer, null::integer, null::uuid;
    return;
  end if;

  select coalesce(sum(u.requests), 0)::integer,
         coalesce(sum(u.requests) filter (where u.user_id = p_user_id), 0)::integer,
         coalesce(sum(u.tokens), 0)::bigint,
         coalesce(sum(u.tokens) filter (where u.user_id = p_user_id), 0)::bigint
    into v_total, v_mine, v_total_tokens, v_my_tokens
    from public.shared_key_usage as u
   where u.shared_key_id = v_key.id and u.day = v_day;

  if (v_key.daily_limit is not null and v_total + v_calls > v_key.daily_limit)
     or (v_key.per_user_daily_limit is not null and v_mine + v_calls > v_key.per_user_daily_limit) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'limit_exceeded', 'calls', v_calls));
    return query select 'limit_exceeded'::text, null::text, null::text,
      case when v_key.per_user_daily_limit is null then null else greatest(v_key.per_user_daily_limit - v_mine, 0) end,
      case when v_key.daily_limit is null then null else greatest(v_key.daily_limit - v_total, 0) end,
      null::uuid;
    return;
  end if;

  -- Tokens are known only after an answer: a call is refused once those already used reached a limit.
  if (v_key.daily_token_limit is not null and v_total_tokens >= v_key.daily_token_limit)
     or (v_key.per_user_daily_token_limit is not null and v_my_tokens >= v_key.per_user_daily_token_limit) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'token_limit_exceeded', 'calls', v_calls));
    return query select 'token_limit_exceeded'::text, null::text, null::text, null::integer, null::integer,
      null::uuid;
    return;
  end if;

  v_secret := private.open_secret(v_key.ciphertext, v_key.secret_binding, v_key.key_version, p_keyring);
  if v_secret is null then
    return query select 'unavailable'::text, null::text, null::text, null::integer, null::integer, null::uuid;
    return;
  end if;

  insert into public.shared_key_usage as u (shared_key_id, user_id, day, requests)
  values (v_key.id, p_user_id, v_day, v_calls)
  on conflict (shared_key_id, day, user_id) do update set requests = u.requests + v_calls;

  insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
  values (v_key.owner_id, p_user_id, v_key.provider, 'use_shared_key', v_key.account_name,
          jsonb_build_object('calls', v_calls));

  return query select
    'ok'::text,
    v_secret,
    v_key.model,
    case when v_key.per_user_daily_limit is null then null else v_key.per_user_daily_limit - v_mine - v_calls end,
    case when v_key.daily_limit is null then null else v_key.daily_limit - v_total - v_calls end,
    v_key.id;
end;
$$;

revoke all on function private.use_shared_key(text, uuid, text, jsonb, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function private.use_shared_key(text, uuid, text, jsonb, integer, timestamptz)
  to service_role;

-- Adds answers' tokens to the shared-key usage rows, one round trip per flush of the server's
-- usage recorder: rows of p_rows are [{shared_key_id, user_id, day, tokens}], summed per row
-- first. Rows of a key or a user deleted since are skipped; a non-integer count raises (the
-- recorder then writes the rows one by one and drops only that one). Locks are taken in one
-- order: the keys' rows first (for key share, by id), as private.use_shared_key takes its key's
-- row before its usage row, then the usage rows by key, user and day, so neither this function
-- run twice nor beside use_shared_key can deadlock. Security definer: the counters are not
-- writable by the users they describe.
create function private.add_shared_key_tokens(p_rows jsonb)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform 1 from public.shared_keys as k
   where k.id in (select r.shared_key_id from jsonb_to_recordset(p_rows) as r(shared_key_id uuid))
   order by k.id
   for key share;

  insert into public.shared_key_usage as u (shared_key_id, user_id, day, tokens)
  select r.shared_key_id, r.user_id, r.day, least(sum(r.tokens), 9007199254740991)
    from jsonb_to_recordset(p_rows) as r(shared_key_id uuid, user_id uuid, day date, tokens bigint)
   where r.tokens > 0
     and exists (select 1 from public.shared_keys as k where k.id = r.shared_key_id)
     and exists (select 1 from auth.users as a where a.id = r.user_id)
   group by r.shared_key_id, r.user_id, r.day
   order by r.shared_key_id, r.user_id, r.day
  on conflict (shared_key_id, day, user_id) do update
    set tokens = least(u.tokens + excluded.tokens, 9007199254740991);
end;
$$;

revoke all on function private.add_shared_key_tokens(jsonb) from public, anon, authenticated;
grant execute on function private.add_shared_key_tokens(jsonb) to service_role;
