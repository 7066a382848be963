-- Virtual keys (llmgate_auth::KeyStore). Times are Unix seconds; lists, maps and metadata are
-- JSON text, so SQLite and PostgreSQL share one schema shape.
CREATE TABLE llmgate_keys (
    token                 TEXT    NOT NULL PRIMARY KEY,
    key_name              TEXT    NOT NULL,
    key_alias             TEXT    UNIQUE,
    models                TEXT    NOT NULL DEFAULT '[]',
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget            DOUBLE PRECISION,
    budget_duration       BIGINT,
    budget_reset_at       BIGINT,
    expires               BIGINT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    model_rpm_limit       TEXT    NOT NULL DEFAULT '{}',
    model_tpm_limit       TEXT    NOT NULL DEFAULT '{}',
    model_max_budget      TEXT    NOT NULL DEFAULT '{}',
    metadata              TEXT    NOT NULL DEFAULT 'null',
    team_id               TEXT,
    user_id               TEXT,
    tags                  TEXT    NOT NULL DEFAULT '[]',
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);

CREATE INDEX llmgate_keys_user_id ON llmgate_keys (user_id);
CREATE INDEX llmgate_keys_team_id ON llmgate_keys (team_id);
CREATE INDEX llmgate_keys_created_at ON llmgate_keys (created_at);

-- A key's spend per model group, in the current budget period. Charged with
-- `spend = spend + $1`, so concurrent charges add up exactly.
CREATE TABLE llmgate_key_model_spend (
    token TEXT NOT NULL,
    model TEXT NOT NULL,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (token, model)
);
