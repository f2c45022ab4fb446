-- Bounds on spending other people's keys.
--
-- Shared keys count what the owner pays for: every upstream call a request makes (a batch of
-- embeddings in 500 chunks is 500 uses), reserved before the calls and refused whole when it
-- would pass a limit.
--
-- Owner-funded runs of shared flows are bounded: a run id belongs to the collaborator who opened
-- it, lives at most run_max_age_seconds, and carries at most run_call_limit upstream calls;
-- parallel nodes of one run still count as one run against the per-minute and daily limits. The
-- owner may fix the provider and the model, and cap max_tokens, on the flow.

alter table public.flows
  add column run_max_age_seconds integer not null default 3600 check (run_max_age_seconds between 1 and 86400),
  add column run_call_limit integer not null default 50 check (run_call_limit between 1 and 10000),
  add column allowed_provider text
    check (allowed_provider in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  add column allowed_model text check (char_length(allowed_model) between 1 and 200),
  add column max_tokens_limit integer check (max_tokens_limit between 1 and 1000000);

comment on column public.flows.run_call_limit is 'Upstream calls one run id may make on the owner''s keys.';

grant select (run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit)
  on table public.flows to authenticated;
grant insert (run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit)
  on table public.flows to authenticated;
grant update (run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit)
  on table public.flows to authenticated;

alter table public.flow_execution_log
  add column upstream_calls integer not null default 1 check (upstream_calls >= 0);

grant select (upstream_calls) on table public.flow_execution_log to authenticated;

drop function private.check_and_log_run(text, uuid, uuid, timestamptz);

-- The owner-funded flows' rate limiter, atomic (the flow row is locked, so concurrent calls for one
-- flow are decided one at a time). Each call is one upstream call of run p_run_id. A new run id is
-- counted against the per-minute and daily limits; a known one must belong to p_actor_id, be
-- younger than the flow's run_max_age_seconds and have calls left under run_call_limit. The flow's
-- fixed provider, model and max_tokens cap are checked before anything is counted. Security definer
-- because callers must not read or write the log and counters.
create function private.check_and_log_run(
  p_share_token text,
  p_run_id uuid,
  p_actor_id uuid,
  p_provider text,
  p_model text,
  p_max_tokens integer,
  p_now timestamptz default null
)
returns table (
  outcome text,
  flow_id uuid,
  owner_id uuid,
  use_owner_keys boolean,
  retry_after_seconds integer,
  remaining_minute integer,
  remaining_day integer,
  max_tokens_limit integer
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
  v_run public.flow_execution_log%rowtype;
  v_runs integer;
  v_oldest timestamptz;
begin
  -- The run log is a rate limiter's memory, not a ledger: losing the last few milliseconds of it
  -- in a server crash only lets a few more runs through, so do not wait for the WAL flush.
  perform set_config('synchronous_commit', 'off', true);
  select * into v_flow from public.flows as f where f.share_token_hash = v_hash for update;
  if not found then
    return query select 'invalid_token'::text, null::uuid, null::uuid, null::boolean, null::integer,
      null::integer, null::integer, null::integer;
    return;
  end if;

  if p_actor_id is distinct from v_flow.owner_id and not v_flow.use_owner_keys then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_flow.owner_id, p_actor_id, 'flow', 'denied', v_flow.id::text,
            jsonb_build_object('reason', 'owner_keys_not_enabled'));
    return query select 'owner_keys_not_enabled'::text, v_flow.id, v_flow.owner_id, false, null::integer,
      null::integer, null::integer, null::integer;
    return;
  end if;

  if (v_flow.allowed_provider is not null and p_provider is distinct from v_flow.allowed_provider)
     or (v_flow.allowed_model is not null and p_model is distinct from v_flow.allowed_model)
     or (v_flow.max_tokens_limit is not null and p_max_tokens > v_flow.max_tokens_limit) then
    return query select 'flow_settings'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys, null::integer,
      null::integer, null::integer, v_flow.max_tokens_limit;
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

  select * into v_run from public.flow_execution_log as l where l.flow_id = v_flow.id and l.run_id = p_run_id;
  if found then
    if v_run.actor_id is distinct from p_actor_id then
      return query select 'run_not_yours'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
        null::integer, null::integer, null::integer, null::integer;
      return;
    end if;
    if v_run.executed_at <= v_now - make_interval(secs => v_flow.run_max_age_seconds)
       or v_run.upstream_calls >= v_flow.run_call_limit then
      return query select 'run_exhausted'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
        null::integer, null::integer, null::integer, null::integer;
      return;
    end if;
    update public.flow_execution_log as l set upstream_calls = l.upstream_calls + 1 where l.id = v_run.id;
    return query select 'ok'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys, null::integer,
      greatest(v_flow.per_minute_limit - v_runs, 0), greatest(v_flow.daily_limit - v_flow.daily_execution_count, 0),
      v_flow.max_tokens_limit;
    return;
  end if;

  if v_runs >= v_flow.per_minute_limit then
    return query select 'rate_limited'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
      greatest(1, ceil(extract(epoch from (v_oldest + interval '1 minute' - v_now)))::integer), 0,
      greatest(v_flow.daily_limit - v_flow.daily_execution_count, 0), null::integer;
    return;
  end if;

  if v_flow.daily_execution_count >= v_flow.daily_limit then
    return query select 'daily_quota_exceeded'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys,
      greatest(1, ceil(extract(epoch from (v_flow.daily_execution_reset - v_now)))::integer),
      greatest(v_flow.per_minute_limit - v_runs, 0), 0, null::integer;
    return;
  end if;

  insert into public.flow_execution_log (flow_id, share_token_hash, run_id, actor_id, executed_at, upstream_calls)
  values (v_flow.id, v_hash, p_run_id, p_actor_id, v_now, 1);
  update public.flows as f set daily_execution_count = f.daily_execution_count + 1 where f.id = v_flow.id;
  if p_actor_id is distinct from v_flow.owner_id then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_flow.owner_id, p_actor_id, 'flow', 'use_share', v_flow.id::text, jsonb_build_object('run_id', p_run_id));
  end if;

  return query select 'ok'::text, v_flow.id, v_flow.owner_id, v_flow.use_owner_keys, null::integer,
    v_flow.per_minute_limit - v_runs - 1, v_flow.daily_limit - v_flow.daily_execution_count - 1,
    v_flow.max_tokens_limit;
end;
$$;

revoke all on function private.check_and_log_run(text, uuid, uuid, text, text, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function private.check_and_log_run(text, uuid, uuid, text, text, integer, timestamptz)
  to service_role;

drop function private.use_shared_key(text, uuid, text, text, integer, text, timestamptz);

-- Takes p_calls upstream calls' worth of a shared key, atomically: the key row is locked, the
-- allow-list and both daily limits are checked against the calls about to be made, the uses are
-- counted and audited, and the key is opened (through open_secret), in one round trip. A request
-- that would pass a limit is refused whole. An unknown name and a name the caller may not use
-- give the same outcome, so account names cannot be enumerated; the refusal is still audited for
-- the owner. A key that does not open is not counted. Security definer because the caller is not
-- the key's owner and must never read the ciphertext or the counters directly.
create function private.use_shared_key(
  p_account_name text,
  p_user_id uuid,
  p_service text,
  p_keyring jsonb,
  p_calls integer default 1,
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
  v_calls integer := greatest(coalesce(p_calls, 1), 1);
  v_key public.shared_keys%rowtype;
  v_total integer;
  v_mine integer;
  v_secret text;
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
    return query select 'not_found'::text, null::text, null::text, null::integer, null::integer;
    return;
  end if;

  select coalesce(sum(u.requests), 0)::integer,
         coalesce(sum(u.requests) filter (where u.user_id = p_user_id), 0)::integer
    into v_total, v_mine
    from public.shared_key_usage as u
   where u.shared_key_id = v_key.id and u.day = v_day;

  if (v_key.daily_limit is not null and v_total + v_calls > v_key.daily_limit)
     or (v_key.per_user_daily_limit is not null and v_mine + v_calls > v_key.per_user_daily_limit) then
    insert into public.credential_events (owner_id, actor_id, service, event, via, detail)
    values (v_key.owner_id, p_user_id, v_key.provider, 'denied', v_key.account_name,
            jsonb_build_object('reason', 'limit_exceeded', 'calls', v_calls));
    return query select 'limit_exceeded'::text, null::text, null::text,
      case when v_key.per_user_daily_limit is null then null else greatest(v_key.per_user_daily_limit - v_mine, 0) end,
      case when v_key.daily_limit is null then null else greatest(v_key.daily_limit - v_total, 0) end;
    return;
  end if;

  v_secret := private.open_secret(v_key.ciphertext, v_key.secret_binding, v_key.key_version, p_keyring);
  if v_secret is null then
    return query select 'unavailable'::text, null::text, null::text, null::integer, null::integer;
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
    case when v_key.daily_limit is null then null else v_key.daily_limit - v_total - v_calls end;
end;
$$;

revoke all on function private.use_shared_key(text, uuid, text, jsonb, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function private.use_shared_key(text, uuid, text, jsonb, integer, timestamptz)
  to service_role;
