//! Stored responses (table `llmgate_responses`): the Responses API's conversations, for
//! `previous_response_id` and `GET`/`DELETE /v1/responses/{id}` (see `docs/responses.md`).

pub(crate) const SAVE: &str =
    "INSERT INTO llmgate_responses (id, owner, created_at, input, response) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, \
    created_at = excluded.created_at, input = excluded.input, response = excluded.response";
pub(crate) const LOAD: &str =
    "SELECT created_at, input, response FROM llmgate_responses WHERE id = $1 AND owner = $2";
pub(crate) const DELETE: &str = "DELETE FROM llmgate_responses WHERE id = $1 AND owner = $2";

/// A `serde_json` failure as the store's error.
pub(crate) fn bad_json(e: serde_json::Error) -> llmgate_responses::StoreError {
    llmgate_responses::StoreError::Backend(format!("a stored response that does not parse: {e}"))
}

/// A driver failure as the store's error.
pub(crate) fn backend(e: sqlx::Error) -> llmgate_responses::StoreError {
    llmgate_responses::StoreError::Backend(e.to_string())
}

/// The response methods, written once for both backends.
macro_rules! responses_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn save_response(
                &self,
                r: &llmgate_responses::StoredResponse,
            ) -> Result<(), llmgate_responses::StoreError> {
                use $crate::responses::{backend, bad_json};
                let input = serde_json::to_string(&r.input).map_err(bad_json)?;
                let response = serde_json::to_string(&r.response).map_err(bad_json)?;
                sqlx::query($crate::responses::SAVE)
                    .bind(&r.id)
                    .bind(&r.owner)
                    .bind(r.created_at)
                    .bind(input)
                    .bind(response)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            pub(crate) async fn load_response(
                &self,
                owner: &str,
                id: &str,
            ) -> Result<Option<llmgate_responses::StoredResponse>, llmgate_responses::StoreError>
            {
                use $crate::responses::{backend, bad_json};
                let row: Option<(i64, String, String)> = sqlx::query_as($crate::responses::LOAD)
                    .bind(id)
                    .bind(owner)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                let Some((created_at, input, response)) = row else {
                    return Ok(None);
                };
                Ok(Some(llmgate_responses::StoredResponse {
                    id: id.to_owned(),
                    owner: owner.to_owned(),
                    created_at,
                    input: serde_json::from_str(&input).map_err(bad_json)?,
                    response: serde_json::from_str(&response).map_err(bad_json)?,
                }))
            }

            pub(crate) async fn delete_response(
                &self,
                owner: &str,
                id: &str,
            ) -> Result<bool, llmgate_responses::StoreError> {
                let done = sqlx::query($crate::responses::DELETE)
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::responses::backend)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use responses_impl;

/// The Responses API's stored responses, in table `llmgate_responses`.
#[async_trait::async_trait]
impl llmgate_responses::ResponseStore for crate::Store {
    async fn save(
        &self,
        record: &llmgate_responses::StoredResponse,
    ) -> Result<(), llmgate_responses::StoreError> {
        self.save_response(record).await
    }

    async fn load(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<llmgate_responses::StoredResponse>, llmgate_responses::StoreError> {
        self.load_response(owner, id).await
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, llmgate_responses::StoreError> {
        self.delete_response(owner, id).await
    }
}
