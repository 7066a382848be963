-- Responses kept for OpenAI's Responses API (`store: true`, the default): what
-- `previous_response_id` continues from and `GET`/`DELETE /v1/responses/{id}` answer. `owner`
-- is the calling key's scope (SHA-256 of its secret, a virtual key's token); `input` (the
-- conversation's input items) and `response` (the response object) are JSON text.
CREATE TABLE IF NOT EXISTS llmgate_responses (
    id         TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    input      TEXT   NOT NULL,
    response   TEXT   NOT NULL
);
