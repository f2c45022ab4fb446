-- The table's comment named the document the design came from; it says what the table is.

comment on table public.owner_name_keys is
  'Keys stored under an owner name for the owner-name key mode (llm-config): anyone naming the owner name uses the key, so the functions refuse the mode unless ALLOW_OWNER_NAME_SHARING=true. Only the server touches this table.';
