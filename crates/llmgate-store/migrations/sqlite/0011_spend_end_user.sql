-- The request's end user (its `user` field, LiteLLM's customer), for /global/spend/end_users
-- and /spend/logs' `end_user`. NULL for rows written before and requests that name none.
ALTER TABLE llmgate_spend_logs ADD COLUMN end_user TEXT;
