//! The ids of responses stored upstream: which deployment made them, inside the id the
//! client sees, so a follow-up (`previous_response_id`, `GET`/`DELETE /v1/responses/{id}`,
//! `/input_items`) reaches the same deployment and credential.
//!
//! `resp_` + base64url (no padding) of `llmgate;deployment:{deployment id};response_id:{the
//! upstream's id}`. LiteLLM's ids, `resp_` + base64 of
//! `litellm:custom_llm_provider:{provider};model_id:{deployment id};response_id:{id}`, are
//! read too: a deployment keeping the `model_info.id` it had under LiteLLM continues
//! LiteLLM's conversations. The gateway's own stored responses (`resp_` + 32 hex digits) never
//! decode as either.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

const OURS: &str = "llmgate;deployment:";
const LITELLM: &str = "litellm:custom_llm_provider:";
const MODEL_ID: &str = ";model_id:";
const RESPONSE_ID: &str = ";response_id:";

/// A response stored upstream: the deployment that holds it and the upstream's own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub(crate) deployment: String,
    pub(crate) response: String,
}

/// The id the client sees for the upstream's response `upstream` made by `deployment`.
pub(crate) fn encode(deployment: &str, upstream: &str) -> String {
    let plain = format!("{OURS}{deployment}{RESPONSE_ID}{upstream}");
    format!("resp_{}", URL_SAFE_NO_PAD.encode(plain))
}

/// The deployment and upstream id in a client's id, when it is one of ours (or LiteLLM's).
pub(crate) fn decode(id: &str) -> Option<Pinned> {
    let b64 = id.strip_prefix("resp_")?;
    let bytes = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(b64).ok())?;
    let plain = String::from_utf8(bytes).ok()?;
    let (deployment, response) = if let Some(rest) = plain.strip_prefix(OURS) {
        rest.rsplit_once(RESPONSE_ID)?
    } else {
        let rest = plain.strip_prefix(LITELLM)?;
        let (_, rest) = rest.split_once(MODEL_ID)?;
        rest.rsplit_once(RESPONSE_ID)?
    };
    (!deployment.is_empty() && !response.is_empty()).then(|| Pinned {
        deployment: deployment.to_owned(),
        response: response.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_litellm_ids() {
        let id = encode("gpt-4o;eu:1", "resp_abc123");
        assert!(id.starts_with("resp_") && !id.contains('='), "{id}");
        assert_eq!(
            decode(&id),
            Some(Pinned {
                deployment: "gpt-4o;eu:1".into(),
                response: "resp_abc123".into()
            })
        );
        let litellm = format!(
            "resp_{}",
            STANDARD
                .encode("litellm:custom_llm_provider:openai;model_id:dep-7;response_id:resp_x9")
        );
        assert_eq!(
            decode(&litellm),
            Some(Pinned {
                deployment: "dep-7".into(),
                response: "resp_x9".into()
            })
        );
        // The gateway's own ids, and anything else, are not pinned.
        assert_eq!(decode(&crate::object::new_id("resp")), None);
        assert_eq!(decode("resp_"), None);
        assert_eq!(decode("chatcmpl-1"), None);
    }
}
