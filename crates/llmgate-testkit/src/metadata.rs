//! The GCE/GKE/Cloud Run metadata server's token endpoint, as it answers workloads with an
//! attached service account (GKE's workload identity included).
//!
//! | request | answer |
//! |---|---|
//! | `GET /computeMetadata/v1/instance/service-accounts/default/token[?scopes=..]` with `Metadata-Flavor: Google` | `{"access_token": "ya29.metadata-<n>", "expires_in": <lifetime>, "token_type": "Bearer"}`, `Metadata-Flavor: Google` |
//! | the same without the header | 403, text: `Missing Metadata-Flavor:Google header.` |
//! | any other path or method | 404, text |
//!
//! Issued tokens go into the [`AccessTokens`] the Vertex mock checks, as the token endpoint's
//! do. Point the gateway at it with `GCE_METADATA_HOST` = [`MockProvider::metadata_host`].

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use crate::google::AccessTokens;
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

/// The path of the default service account's token.
pub(crate) const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

impl MockProvider {
    /// Starts a mock metadata server on `127.0.0.1:0` issuing `tokens` (see
    /// [`crate::metadata`](self)).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_gce_metadata(tokens: AccessTokens) -> Self {
        Self::start_dialect(Arc::new(Metadata { tokens }))
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock metadata server, returning the bind error.
    pub async fn try_start_gce_metadata(tokens: AccessTokens) -> io::Result<Self> {
        Self::start_dialect(Arc::new(Metadata { tokens })).await
    }

    /// `127.0.0.1:PORT`: the value `GCE_METADATA_HOST` takes.
    #[must_use]
    pub fn metadata_host(&self) -> String {
        self.addr().to_string()
    }
}

struct Metadata {
    tokens: AccessTokens,
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    Reply::Full {
        status,
        headers,
        body: Bytes::from_static(body.as_bytes()),
    }
}

impl Dialect for Metadata {
    fn default_models(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_stream(&self, _req: &Recorded) -> bool {
        false
    }

    fn respond(&self, req: &Recorded, _content: Option<&str>, ctx: &Ctx) -> Reply {
        if req.method != Method::GET || req.path != TOKEN_PATH {
            return text(StatusCode::NOT_FOUND, "Not Found");
        }
        if req.header("metadata-flavor") != Some("Google") {
            return text(
                StatusCode::FORBIDDEN,
                "Your client does not have permission to get URL from this server. Missing Metadata-Flavor:Google header.",
            );
        }
        let token = self.tokens.issue("ya29.metadata-", ctx.seq);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("metadata-flavor", HeaderValue::from_static("Google"));
        let body = json!({
            "access_token": token,
            "expires_in": self.tokens.lifetime().as_secs(),
            "token_type": "Bearer",
        });
        Reply::Full {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }
}
