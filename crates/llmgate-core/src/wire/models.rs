//! `GET /v1/models`.

use serde::{Deserialize, Serialize};

/// The model list (`object: "list"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelObject>,
}

/// One model (`object: "model"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelObject {
    /// The name clients send as `model`.
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Who owns it (llmgate answers with the provider, as LiteLLM answers `openai`).
    pub owned_by: String,
}

impl ModelList {
    /// A list of model names.
    pub fn new(ids: impl IntoIterator<Item = (String, String)>, created: u64) -> Self {
        ModelList {
            object: "list".to_owned(),
            data: ids
                .into_iter()
                .map(|(id, owned_by)| ModelObject {
                    id,
                    object: "model".to_owned(),
                    created,
                    owned_by,
                })
                .collect(),
        }
    }
}
