-- Teams (and, as they come, the other things LiteLLM's admin API manages beside keys):
-- llmgate_auth::RecordStore. `doc` holds the settings as JSON text; spend and the next budget
-- reset are columns, changed only atomically (`spend = spend + $1`, a conditional reset), so
-- concurrent charges from any number of instances add up exactly.
CREATE TABLE llmgate_records (
    kind            TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    doc             TEXT   NOT NULL,
    spend           DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE INDEX llmgate_records_created_at ON llmgate_records (kind, created_at);
