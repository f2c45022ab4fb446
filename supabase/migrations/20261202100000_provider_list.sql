-- One list of the providers in SQL: private.providers. Every column that names a provider
-- references it, instead of each carrying its own check (... in ('openai', ...)). A provider is
-- added with one insert here and one entry in supabase/functions/_shared/contract/providers.ts;
-- tests/unit/providerListSql_test.ts fails while the two differ, and when a column or a check
-- lists providers by hand again.
--
-- A table rather than a domain: a foreign key leaves each column's type alone, so nothing that
-- depends on the type (the sealed rows' generated secret_binding, the functions returning
-- setof public.shared_keys or public.flows) has to be dropped and made again.

create table private.providers (
  name text primary key check (name ~ '^[a-z][a-z0-9_-]{1,39}$')
);

comment on table private.providers is
  'The providers a key can be stored for; the same list as SERVICES in _shared/contract/providers.ts.';

insert into private.providers (name)
values ('openai'), ('gemini'), ('anthropic'), ('manus'), ('perplexity'), ('openrouter'), ('custom');

revoke all on table private.providers from public, anon, authenticated;
grant select on table private.providers to service_role;

alter table public.user_credentials
  drop constraint user_credentials_service_check,
  add constraint user_credentials_service_fkey foreign key (service) references private.providers (name);

alter table public.usage_daily
  drop constraint usage_daily_service_check,
  add constraint usage_daily_service_fkey foreign key (service) references private.providers (name);

alter table public.shared_keys
  drop constraint shared_keys_provider_check,
  add constraint shared_keys_provider_fkey foreign key (provider) references private.providers (name);

alter table public.owner_name_keys
  drop constraint owner_name_keys_provider_check,
  add constraint owner_name_keys_provider_fkey foreign key (provider) references private.providers (name);

alter table public.llm_configs
  drop constraint llm_configs_provider_check,
  add constraint llm_configs_provider_fkey foreign key (provider) references private.providers (name);

alter table public.flows
  drop constraint flows_allowed_provider_check,
  add constraint flows_allowed_provider_fkey
    foreign key (allowed_provider) references private.providers (name);

-- A run's provider had no check at all; conversation-run only ever stores one of the providers.
alter table public.conversation_runs
  add constraint conversation_runs_provider_fkey foreign key (provider) references private.providers (name);
