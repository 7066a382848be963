-- How each request ended, and whether its tokens are the gateway's estimate (issue 12: streams
-- the client drops, and upstreams that report no usage, are charged by an estimate).
-- Additive: rows written before keep NULL (their outcome is read from their status) and FALSE.
-- SQLite has no ADD COLUMN IF NOT EXISTS; sqlx's migration table runs it once per database.
ALTER TABLE llmgate_spend_logs ADD COLUMN outcome TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
