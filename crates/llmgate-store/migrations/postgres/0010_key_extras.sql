-- LiteLLM's other key settings (aliases, soft_budget, key_type, allowed_routes,
-- enforced_params, permissions, guardrails, config) as one JSON object: llmgate_core::KeyExtras.
ALTER TABLE llmgate_keys ADD COLUMN extras TEXT NOT NULL DEFAULT '{}';
