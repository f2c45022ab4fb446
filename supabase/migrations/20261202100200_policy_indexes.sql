-- An index for every column a row level security policy filters by, where no primary key, unique
-- constraint or index already leads with it: each policy adds `<column> = auth.uid()` to every
-- query a client role makes, and without an index that is a scan of the whole table.
-- tests/integration/schemaRules_test.ts fails when a policy reads a column no index leads with.

create index conversation_messages_user_idx on public.conversation_messages (user_id);
create index flows_owner_idx on public.flows (owner_id);
create index shared_keys_owner_idx on public.shared_keys (owner_id);
create index shared_key_usage_user_idx on public.shared_key_usage (user_id);
