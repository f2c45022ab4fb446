-- Setting a shared key's token limits is an edit of the key, so it stamps updated_at like its
-- other settings: the token-limit columns join the trigger's `update of` list
-- (20261202100100_updated_at_trigger.sql).
drop trigger set_updated_at on public.shared_keys;

create trigger set_updated_at
  before update of id, account_name, display_name, provider, model, last_four, owner_id, is_public,
                   allowed_user_ids, daily_limit, per_user_daily_limit, daily_token_limit,
                   per_user_daily_token_limit, created_at, updated_at
  on public.shared_keys
  for each row execute function private.set_updated_at();
