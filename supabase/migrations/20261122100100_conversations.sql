-- Conversations, their messages, and the runs that stream assistant replies over SSE.
-- Everything is written as the signed-in user (the functions use asUser), so row level security
-- is the access control: a user only ever sees, changes or deletes their own rows.

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  title text not null default '' check (char_length(title) <= 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.conversations is 'A user''s chat conversations (conversation-run, conversation-manager).';

create index conversations_user_updated_idx on public.conversations (user_id, updated_at desc);

create table public.conversation_runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  provider text not null,
  model text not null check (char_length(model) <= 200),
  status text not null default 'running' check (status in ('running', 'done', 'cancelled', 'error')),
  -- Set by conversation-cancel from any request or isolate; the streaming run polls it.
  cancel_requested boolean not null default false,
  output text not null default '',
  error_code text,
  prompt_tokens integer,
  completion_tokens integer,
  total_tokens integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);

comment on table public.conversation_runs is
  'One streamed assistant reply. A cancelled or failed run keeps its partial output.';

create index conversation_runs_conversation_idx on public.conversation_runs (conversation_id);
create index conversation_runs_user_idx on public.conversation_runs (user_id);

create table public.conversation_messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  run_id uuid references public.conversation_runs (id) on delete set null,
  role text not null check (role in ('system', 'user', 'assistant')),
  content text not null,
  created_at timestamptz not null default clock_timestamp()
);

comment on table public.conversation_messages is 'The messages of a conversation, in created_at order.';

create index conversation_messages_conversation_idx
  on public.conversation_messages (conversation_id, created_at);

alter table public.conversations enable row level security;
alter table public.conversation_runs enable row level security;
alter table public.conversation_messages enable row level security;

-- Supabase grants new public tables to anon and authenticated; take that back and grant only
-- what signed-in users need. anon gets nothing.
revoke all on table public.conversations, public.conversation_runs, public.conversation_messages
  from public, anon, authenticated;

grant select, delete on table public.conversations to authenticated;
grant insert (id, user_id, title) on table public.conversations to authenticated;
grant update (title, updated_at) on table public.conversations to authenticated;

grant select on table public.conversation_messages to authenticated;
grant insert (conversation_id, user_id, run_id, role, content) on table public.conversation_messages
  to authenticated;

-- A run's status and output are the user's own record of their own stream; cancel_requested is
-- the flag conversation-cancel sets.
grant select on table public.conversation_runs to authenticated;
grant insert (id, user_id, conversation_id, provider, model) on table public.conversation_runs
  to authenticated;
grant update (status, cancel_requested, output, error_code, prompt_tokens, completion_tokens,
              total_tokens, updated_at, finished_at)
  on table public.conversation_runs to authenticated;

grant all on table public.conversations, public.conversation_runs, public.conversation_messages
  to service_role;

create policy "conversations: owners select"
  on public.conversations for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "conversations: owners insert"
  on public.conversations for insert to authenticated
  with check ((select auth.uid()) = user_id);
create policy "conversations: owners update"
  on public.conversations for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
create policy "conversations: owners delete"
  on public.conversations for delete to authenticated
  using ((select auth.uid()) = user_id);

-- Messages and runs also require the conversation to be the user's, so nobody can attach rows
-- to someone else's conversation by guessing its id.
create policy "conversation_messages: owners select"
  on public.conversation_messages for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "conversation_messages: owners insert"
  on public.conversation_messages for insert to authenticated
  with check (
    (select auth.uid()) = user_id
    and exists (
      select 1 from public.conversations c
      where c.id = conversation_id and c.user_id = (select auth.uid())
    )
  );

create policy "conversation_runs: owners select"
  on public.conversation_runs for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "conversation_runs: owners insert"
  on public.conversation_runs for insert to authenticated
  with check (
    (select auth.uid()) = user_id
    and exists (
      select 1 from public.conversations c
      where c.id = conversation_id and c.user_id = (select auth.uid())
    )
  );
create policy "conversation_runs: owners update"
  on public.conversation_runs for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
