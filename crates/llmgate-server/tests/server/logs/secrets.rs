//! No secret on stderr even at TRACE, and none in the database (docs/keys.md, "Secrets";
//! docs/logging.md: the request span never records headers): the master key, a virtual key
//! (as `Authorization: Bearer` and as `x-api-key`), a provider's key its upstream echoes, and a
//! header that does not look like a key at all.

use std::path::Path;
use std::time::Duration;

use super::{
    spend_rows, start_logged, test_dir, write_config, Upstreams, MASTER, OTHER_KEY, UPSTREAM_KEY,
};
use crate::support::{connect, post, signal, wait_exit};
use serde_json::json;

/// A header value that no key-shaped mask would catch: only never logging headers keeps it out.
const PLAIN_HEADER: &str = "plainheadervalue-Zq81Lm";

/// One chat request for `model` with the credential header `name: value` and [`PLAIN_HEADER`].
async fn ask_with(
    addr: std::net::SocketAddr,
    name: &str,
    value: &str,
    model: &str,
    stream: bool,
) -> u16 {
    let request = http::Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header(name, value)
        .header("x-custom-note", PLAIN_HEADER)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            crate::support::chat(model, stream),
        )))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = crate::support::text(response).await;
    status
}

/// The bytes of the SQLite database beside the config (its WAL and shared memory too).
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["llmgate.db", "llmgate.db-wal", "llmgate.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    assert!(!all.is_empty(), "no database in {}", dir.display());
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_stderr_at_trace_or_the_database() {
    let up = Upstreams::start().await;
    let dir = test_dir("secrets-trace");
    let config = write_config(&dir, &up, "");
    let mut logged = start_logged(&config, &[], &[("RUST_LOG", "trace")]).await;
    let addr = logged.addr;
    let (status, key) = post(
        addr,
        "/key/generate",
        MASTER,
        &json!({"key_alias": "secret-test"}),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {secret}");
    for stream in [false, true] {
        assert_eq!(
            ask_with(addr, "authorization", &bearer, "good", stream).await,
            200
        );
        assert_eq!(
            ask_with(addr, "x-api-key", &secret, "good", stream).await,
            200
        );
    }
    assert_eq!(
        ask_with(addr, "authorization", &bearer, "bad", false).await,
        401
    );
    assert_eq!(
        ask_with(
            addr,
            "authorization",
            &format!("Bearer {MASTER}"),
            "good",
            false
        )
        .await,
        200
    );
    spend_rows(addr, "", 6).await;
    signal(&logged.gateway, "TERM");
    assert!(wait_exit(&mut logged.gateway, Duration::from_secs(20))
        .await
        .success());

    let stderr = logged.all();
    assert!(
        stderr.lines().count() > 100,
        "TRACE is on: {} lines",
        stderr.lines().count()
    );
    let database = database_bytes(&dir);
    for (what, value) in [
        ("the virtual key", secret.as_str()),
        ("the master key", MASTER),
        ("a provider's key", UPSTREAM_KEY),
        ("another key the upstream echoed", OTHER_KEY),
        ("the good deployment's key", "sk-good-key"),
        ("a plain header", PLAIN_HEADER),
    ] {
        assert!(!stderr.contains(value), "{what} on stderr at TRACE");
        if what != "a plain header" {
            assert!(!contains(&database, value), "{what} in the database");
        }
    }
}
