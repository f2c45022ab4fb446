-- A revoked share link leaves a flow nobody can open, so the flow is no longer published:
-- revoke_token clears published_at too (the live id stays, so publishing again gives a new token
-- at the same address). Otherwise as in 20261201100000_custody.sql.
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
      else f.published_at end,
    updated_at = now()
  where f.id = p_flow_id and f.owner_id = p_owner_id
    and p_action in ('publish', 'rotate_token', 'revoke_token', 'unpublish')
    and (p_action <> 'rotate_token' or f.published_at is not null)
  returning *;
$$;

revoke all on function private.set_flow_share(uuid, uuid, text, text, text) from public, anon, authenticated;
grant execute on function private.set_flow_share(uuid, uuid, text, text, text) to service_role;
