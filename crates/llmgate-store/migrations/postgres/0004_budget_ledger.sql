-- Each key's spend for its budget period as every instance sees it (llmgate_auth::BudgetLedger,
-- used when several instances share PostgreSQL without Redis): `spent` settled so far,
-- `reserved` by requests in flight. `id` names the key, the period and, for a per-model budget,
-- the model. Rows past `expires_at` (Unix seconds) are deleted as the gateway goes.
CREATE TABLE IF NOT EXISTS llmgate_budget_ledger (
    id         TEXT             NOT NULL PRIMARY KEY,
    spent      DOUBLE PRECISION NOT NULL DEFAULT 0,
    reserved   DOUBLE PRECISION NOT NULL DEFAULT 0,
    expires_at BIGINT           NOT NULL
);
CREATE INDEX IF NOT EXISTS llmgate_budget_ledger_expires ON llmgate_budget_ledger (expires_at);
