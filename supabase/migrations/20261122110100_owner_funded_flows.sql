-- Owner-funded execution of shared flows. A flow's owner may publish it with a share
-- token; collaborators holding the token run it on the owner's keys only when the owner turned on
-- use_owner_keys. The token itself is never stored: only its SHA-256.

create table public.flows (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  definition jsonb not null default '{}'::jsonb,
  live_id text unique check (live_id ~ '^[A-Za-z0-9_-]{8,64}$'),
  share_token_hash bytea unique,
  use_owner_keys boolean not null default false,
  per_minute_limit integer not null default 10 check (per_minute_limit between 1 and 10000),
  daily_limit integer not null default 100 check (daily_limit between 1 and 1000000),
  daily_execution_count integer not null default 0 check (daily_execution_count >= 0),
  daily_execution_reset timestamptz not null default now(),
  published_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.flows is
  'Flows and their sharing settings. share_token_hash is the SHA-256 of the share token; the token is shown once.';
comment on column public.flows.daily_execution_reset is 'When daily_execution_count next starts again from zero.';

alter table public.flows enable row level security;

revoke all on table public.flows from anon, authenticated;
grant select (id, owner_id, name, definition, live_id, use_owner_keys, per_minute_limit, daily_limit,
              daily_execution_count, daily_execution_reset, published_at, created_at, updated_at)
  on table public.flows to authenticated;
grant insert (owner_id, name, definition, use_owner_keys, per_minute_limit, daily_limit)
  on table public.flows to authenticated;
grant update (name, definition, use_owner_keys, per_minute_limit, daily_limit, live_id, share_token_hash,
              published_at, updated_at)
  on table public.flows to authenticated;
grant delete on table public.flows to authenticated;
grant all on table public.flows to service_role;

create policy "flows: owners select their flows"
  on public.flows for select to authenticated
  using ((select auth.uid()) = owner_id);

create policy "flows: owners insert their flows"
  on public.flows for insert to authenticated
  with check ((select auth.uid()) = owner_id);

create policy "flows: owners update their flows"
  on public.flows for update to authenticated
  using ((select auth.uid()) = owner_id)
  with check ((select auth.uid()) = owner_id);

create policy "flows: owners delete their flows"
  on public.flows for delete to authenticated
  using ((select auth.uid()) = owner_id);

create table public.flow_execution_log (
  id bigint generated always as identity primary key,
  flow_id uuid not null references public.flows (id) on delete cascade,
  share_token_hash bytea not null,
  run_id uuid not null,
  actor_id uuid references auth.users (id) on delete set null,
  executed_at timestamptz not null default now(),
  unique (flow_id, run_id)
);

comment on table public.flow_execution_log is
  'One row per distinct run of a shared flow; parallel nodes of one run share its run_id and its row.';

create index flow_execution_log_token_time_idx on public.flow_execution_log (share_token_hash, executed_at);

alter table public.flow_execution_log enable row level security;

revoke all on table public.flow_execution_log from anon, authenticated;
grant select (id, flow_id, run_id, actor_id, executed_at) on table public.flow_execution_log to authenticated;
grant all on table public.flow_execution_log to service_role;

create policy "flow_execution_log: flow owners select runs"
  on public.flow_execution_log for select to authenticated
  using (exists (
    select 1 from public.flows as f where f.id = flow_id and f.owner_id = (select auth.uid())
  ));

-- The owner-funded flows' key resolver: the owner's decrypted credentials for one service, only
-- while the flow's use_owner_keys is true; otherwise null. For servers that call the RPC directly,
-- as the original owner-funded design's Next.js route does; `execute` gets the consent from
-- check_and_log_run on every call and the key from its vault. Security definer: it decrypts another
-- user's key.
create function private.get_owner_keys_for_execution(
  p_share_token text,
  p_service text,
  p_passphrase text,
  p_key_version integer,
  p_previous_passphrase text
)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_object_agg(
    c.credential_key,
    case
      when c.key_version = p_key_version then extensions.pgp_sym_decrypt(c.ciphertext, p_passphrase)
      else extensions.pgp_sym_decrypt(c.ciphertext, p_previous_passphrase)
    end
  )
  from public.flows as f
  join public.user_credentials as c on c.user_id = f.owner_id and c.service = p_service
  where f.share_token_hash = extensions.digest(p_share_token, 'sha256')
    and f.use_owner_keys;
$$;

revoke all on function private.get_owner_keys_for_execution(text, text, text, integer, text)
  from public, anon, authenticated;
grant execute on function private.get_owner_keys_for_execution(text, text, text, integer, text) to service_role;

-- The owner-funded flows' rate limiter, atomic: the flow row is locked, so concurrent calls for one
-- flow are decided one at a time and the limits are exact. A run_id already logged is the same run
-- and is not counted again. A collaborator is refused (and nothing is counted) unless the owner
-- enabled use_owner_keys: the database decides, never the client, on every call. p_now lets tests
-- move the clock. Security definer because callers must not read or write the log and counters.
create function private.check_and_log_run(
  p_share_token text,
  p_run_id uuid,
  p_actor_id uuid,
  p_now timestamptz default null
)
returns table (
  outcome text,
  flow_id uuid,
  owner_id uuid,
  use_owner_keys boolean,
  retry_after_seconds integer,
  remaining_minute integer,
  remaining_day integer
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, now());
  v_hash bytea := extensions.digest(p_share_token, 'sha256');
  v_flow public.flows%rowtype;
  v_runs integer;
  v_oldest timestamptz;
begin
  -- The run log is a rate limiter's memory, not a ledger: losing the last few milliseconds of it
  -- in a server crash only lets a few more runs through, so do not wait for the WAL flush.
  perform set_config('synchronous_commit', 'off', true);
  select * into v_flow from public.flows as f where f.share_token_hash = v_hash for update;
  if not found then
    return query select 'invalid_token'::text, null::uuid, null::uuid, null::boolean, null::integer,
      null::integer, null::integer;
    return;
  end if;

  if p_actor_id is distinct from v_flow.owner_id and not v_flow.use_owner_keys then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_flow.owner_id, p_actor_id, 'flow', 'denied', v_flow.id::text,
            jsonb_build_object('reason', 'owner_keys_not_enabled'));
    return query select 'owner_keys_not_enabled'::text, v_flow.id, v_flow.owner_id, false, null::integer,
      null::integer, null::integer;
    return;
  end if;

  if v_flow.daily_execution_reset <= v_now then
    v_flow.daily_execution_count := 0;
    v_flow.daily_execution_reset := (date_trunc('day', v_now at time zone 'utc') + interval '1 day') at time zone 'utc';
    update public.flows as f
       set daily_execution_count = 0, daily_execution_reset = v_flow.daily_execution_reset
     where f.id = v_flow.id;
  end if;

  -- Only whether the window is full matters, so the scan stops at the limit.
  select count(*)::integer, min(w.executed_at) into v_runs, v_oldest
    from (select l.executed_at
            from public.flow_execution_log as l
           where l.share_token_hash = v_hash and l.executed_at > v_now - interval '1 minute'
           order by l.executed_at
           limit v_flow.per_minute_limit) as w;

  if exists (select 1 from public.flow_execution_log as l where l.flow_id = v_flow.id and l.run_id = p_run_id) then
    return query select 'ok'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys, null::integer,
      greatest(v_flow.per_minute_limit - v_runs, 0), greatest(v_flow.daily_limit - v_flow.daily_execution_count, 0);
    return;
  end if;

  if v_runs >= v_flow.per_minute_limit then
    return query select 'rate_limited'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
      greatest(1, ceil(extract(epoch from (v_oldest + interval '1 minute' - v_now)))::integer), 0,
      greatest(v_flow.daily_limit - v_flow.daily_execution_count, 0);
    return;
  end if;

  if v_flow.daily_execution_count >= v_flow.daily_limit then
    return query select 'daily_quota_exceeded'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
      greatest(1, ceil(extract(epoch from (v_flow.daily_execution_reset - v_now)))::integer),
      greatest(v_flow.per_minute_limit - v_runs, 0), 0;
    return;
  end if;

  insert into public.flow_execution_log (flow_id, share_token_hash, run_id, actor_id, executed_at)
  values (v_flow.id, v_hash, p_run_id, p_actor_id, v_now);
  update public.flows as f set daily_execution_count = f.daily_execution_count + 1 where f.id = v_flow.id;
  if p_actor_id is distinct from v_flow.owner_id then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_flow.owner_id, p_actor_id, 'flow', 'use_share', v_flow.id::text, jsonb_build_object('run_id', p_run_id));
  end if;

  return query select 'ok'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys, null::integer,
    v_flow.per_minute_limit - v_runs - 1, v_flow.daily_limit - v_flow.daily_execution_count - 1;
end;
$$;

revoke all on function private.check_and_log_run(text, uuid, uuid, timestamptz) from public, anon, authenticated;
grant execute on function private.check_and_log_run(text, uuid, uuid, timestamptz) to service_role;

-- The public "load a live flow" call: live_id plus the share token give the flow's name,
-- definition and use_owner_keys, nothing else. Security definer because the caller is not the owner.
create function private.load_live_flow(p_live_id text, p_share_token text)
returns table (id uuid, name text, definition jsonb, use_owner_keys boolean, per_minute_limit integer,
               daily_limit integer)
language sql
stable
security definer
set search_path = ''
as $$
  select f.id, f.name, f.definition, f.use_owner_keys, f.per_minute_limit, f.daily_limit
  from public.flows as f
  where f.live_id = p_live_id
    and f.share_token_hash = extensions.digest(p_share_token, 'sha256');
$$;

revoke all on function private.load_live_flow(text, text) from public, anon, authenticated;
grant execute on function private.load_live_flow(text, text) to service_role;
