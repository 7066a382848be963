//! The Azure OpenAI SDKs' paths: `/openai/deployments/{model}/chat/completions` (and
//! `/completions`, `/embeddings`), with `?api-version=` and the key in `api-key`. The model is
//! in the path and usually not in the body; the request is served as `/v1/...` for that model,
//! as LiteLLM's proxy does.

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Uri};

const PREFIX: &str = "/openai/deployments/";

/// The model an Azure-style path named, for a body that names none.
#[derive(Debug, Clone)]
pub(crate) struct ModelFromPath(String);

/// Serves an Azure-style path as OpenAI's: the URI becomes `/v1/<endpoint>` (the query kept)
/// and the path's model rides along in [`ModelFromPath`]. Other paths are left alone.
pub(crate) fn rewrite<B>(req: &mut Request<B>) -> bool {
    let Some(rest) = req.uri().path().strip_prefix(PREFIX) else {
        return false;
    };
    let Some((model, endpoint)) = rest.split_once('/') else {
        return false;
    };
    if model.is_empty() || !matches!(endpoint, "chat/completions" | "completions" | "embeddings") {
        return false;
    }
    let model = percent_decoded(model);
    let path_and_query = match req.uri().query() {
        Some(q) => format!("/v1/{endpoint}?{q}"),
        None => format!("/v1/{endpoint}"),
    };
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return false;
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(ModelFromPath(model));
    true
}

/// `%2F` and friends in a deployment name, decoded (by `percent-encoding`, the `url` crate's
/// own, already in the tree); invalid UTF-8 is replaced, not refused.
fn percent_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The body with the path's model in it, when the request came by an Azure-style path and its
/// body names no model (a body that names one keeps it).
pub(crate) fn with_model(parts: &Parts, body: Bytes) -> Bytes {
    let Some(ModelFromPath(model)) = parts.extensions.get::<ModelFromPath>() else {
        return body;
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(&body) else {
        return body;
    };
    if map.get("model").is_some_and(|m| !m.is_null()) {
        return body;
    }
    map.insert("model".to_owned(), serde_json::Value::String(model.clone()));
    serde_json::to_vec(&map).map_or(body, Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_azure_path_is_served_as_openais_for_its_model() {
        let mut req = Request::builder()
            .uri("/openai/deployments/gpt%2D4o/chat/completions?api-version=2024-10-21")
            .body(())
            .unwrap();
        assert!(rewrite(&mut req));
        assert_eq!(req.uri(), "/v1/chat/completions?api-version=2024-10-21");
        let (parts, ()) = req.into_parts();
        let body = with_model(&parts, Bytes::from_static(br#"{"messages":[]}"#));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["model"],
            "gpt-4o"
        );
        // A body's own model wins.
        let body = with_model(&parts, Bytes::from_static(br#"{"model":"x"}"#));
        assert_eq!(&body[..], br#"{"model":"x"}"#);

        for other in [
            "/openai/deployments/m/images",
            "/openai/deployments//embeddings",
            "/v1/chat/completions",
        ] {
            let mut req = Request::builder().uri(other).body(()).unwrap();
            assert!(!rewrite(&mut req), "{other}");
        }
    }
}
