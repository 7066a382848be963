-- Why each failed request failed (issue 13: every failure is attributed): the class of its
-- error (`rate_limited`, `timeout`, `upstream_5xx`, `connect`, `no_deployment`,
-- `client_closed`, ...; llmgate_core::FailureClass). NULL for a success, and for rows written
-- before it was recorded. SQLite has no ADD COLUMN IF NOT EXISTS; the migration table runs it
-- once per database.
ALTER TABLE llmgate_spend_logs ADD COLUMN error_class TEXT;
