-- How each request ended, and whether its tokens are the gateway's estimate (issue 12: streams
-- the client drops, and upstreams that report no usage, are charged by an estimate).
-- Additive and idempotent: rows written before keep NULL (their outcome is read from their
-- status) and FALSE; running it again changes nothing.
ALTER TABLE llmgate_spend_logs ADD COLUMN IF NOT EXISTS outcome TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN IF NOT EXISTS usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
