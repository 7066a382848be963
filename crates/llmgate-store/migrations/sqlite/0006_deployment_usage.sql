-- Requests sent to each deployment per UTC day (`day` is days since the Unix epoch), so a
-- provider's daily quota (`rpd`) survives restarts: each instance adds what it sent and reads
-- the day's totals back (llmgate_store::Store::sync_deployment_usage). Days older than a week
-- are deleted as the gateway goes.
CREATE TABLE IF NOT EXISTS llmgate_deployment_usage (
    deployment TEXT   NOT NULL,
    day        BIGINT NOT NULL,
    requests   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment, day)
);
