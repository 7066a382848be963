-- One row per metered request (llmgate_metering::SpendRecord), written in batches by the spend
-- writer; the same transaction charges each row's cost to its key. Times are Unix
-- milliseconds (UTC); tags are JSON text. cost NULL means unknown (no price for the model, or
-- no usage reported), not free.
CREATE TABLE llmgate_spend_logs (
    request_id         TEXT    NOT NULL PRIMARY KEY,
    key_token          TEXT,
    key_alias          TEXT,
    team_id            TEXT,
    user_id            TEXT,
    requested_model    TEXT    NOT NULL,
    model_group        TEXT,
    deployment         TEXT,
    provider           TEXT,
    upstream_model     TEXT,
    endpoint           TEXT    NOT NULL,
    prompt_tokens      BIGINT  NOT NULL DEFAULT 0,
    completion_tokens  BIGINT  NOT NULL DEFAULT 0,
    total_tokens       BIGINT  NOT NULL DEFAULT 0,
    cached_tokens      BIGINT  NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens   BIGINT  NOT NULL DEFAULT 0,
    cost               DOUBLE PRECISION,
    status             INTEGER NOT NULL,
    stream             BOOLEAN NOT NULL DEFAULT FALSE,
    cache_hit          BOOLEAN NOT NULL DEFAULT FALSE,
    attempts           INTEGER NOT NULL DEFAULT 0,
    fallbacks          INTEGER NOT NULL DEFAULT 0,
    start_time         BIGINT  NOT NULL,
    end_time           BIGINT  NOT NULL,
    latency_ms         BIGINT  NOT NULL,
    ttft_ms            BIGINT,
    tags               TEXT    NOT NULL DEFAULT '[]'
);

CREATE INDEX llmgate_spend_logs_start_time ON llmgate_spend_logs (start_time);
CREATE INDEX llmgate_spend_logs_key_token ON llmgate_spend_logs (key_token, start_time);
