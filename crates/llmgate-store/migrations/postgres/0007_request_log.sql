-- The request log (issue 16): why a failed request failed, in words (the upstream's error
-- message, credentials masked, at most 1 KiB), and, only with
-- general_settings.store_prompts_in_spend_logs, the request's messages and the answer as JSON
-- text (bounded, credentials masked). NULL otherwise and in rows written before. Additive and
-- idempotent.
ALTER TABLE llmgate_spend_logs ADD COLUMN IF NOT EXISTS error_message TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN IF NOT EXISTS messages TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN IF NOT EXISTS response TEXT;
