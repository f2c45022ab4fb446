-- private.get_owner_keys_for_execution was never on the path of a run: `execute` admits each call
-- with check_and_log_run, which reads the owner's consent (use_owner_keys) in the same locked
-- statement that counts the run, and then takes the owner's key from the vault like any other
-- lookup (the turned-off check, the short cache). A second decrypting entry point that checks the
-- consent on its own was only more surface, so it goes (docs/sharing.md).

drop function private.get_owner_keys_for_execution(text, text, jsonb);
