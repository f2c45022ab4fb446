-- Token usage per user, per UTC day, per provider and per key source, written by the proxy.
-- The proxy batches increments in memory and flushes them off the request path, so a request
-- never waits for this table.

create table public.usage_daily (
  user_id uuid not null references auth.users (id) on delete cascade,
  day date not null,
  service text not null
    check (service in ('openai', 'gemini', 'anthropic', 'manus', 'perplexity', 'openrouter', 'custom')),
  key_source text not null check (key_source in ('user', 'owner', 'shared')),
  request_count bigint not null default 0 check (request_count >= 0),
  prompt_tokens bigint not null default 0 check (prompt_tokens >= 0),
  completion_tokens bigint not null default 0 check (completion_tokens >= 0),
  total_tokens bigint not null default 0 check (total_tokens >= 0),
  updated_at timestamptz not null default now(),
  primary key (user_id, day, service, key_source)
);

comment on table public.usage_daily is
  'Requests and tokens per (user, UTC day, service, key source). Owners read their rows; only the server writes.';

alter table public.usage_daily enable row level security;

-- Signed-in users may read their own counters and nothing else; writes go through
-- private.record_usage only.
revoke all on table public.usage_daily from anon, authenticated;
grant select on table public.usage_daily to authenticated;
grant all on table public.usage_daily to service_role;

create policy "usage_daily: owners select their rows"
  on public.usage_daily for select to authenticated
  using ((select auth.uid()) = user_id);

-- One round trip per flush: adds every batched increment and marks the user keys as used.
-- Security definer because the counters must not be writable by the users they describe; only
-- the server (which verified each request's JWT) calls it.
create function private.record_usage(p_rows jsonb)
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
        total_tokens = u.total_tokens + excluded.total_tokens,
        updated_at = now();

  update public.user_credentials as c
    set last_used_at = now()
  from (
    select distinct r.user_id, r.service
    from jsonb_to_recordset(p_rows) as r(user_id uuid, service text, key_source text)
    where r.key_source = 'user'
  ) as used
  where c.user_id = used.user_id and c.service = used.service and c.credential_key = 'api_key';
$$;

revoke all on function private.record_usage(jsonb) from public, anon, authenticated;
grant execute on function private.record_usage(jsonb) to service_role;
