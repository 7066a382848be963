//! Run with: cargo run -p example-embedded-serve [-- path/to/config.yaml]
//!
//! The llmgate gateway as a library in a plain tokio program: read a LiteLLM `config.yaml`,
//! build the [`Gateway`], serve it with [`llmgate::serve`] (HTTP/1.1 and h2 on hyper) on
//! `127.0.0.1:4000` (set `PORT` to change it), and on Ctrl-C stop accepting and let in-flight
//! requests, streams included, finish (for up to [`llmgate::SHUTDOWN_GRACE`]).
//!
//! Without an argument it serves `examples/quickstart.yaml`, whose model answers with
//! LiteLLM's `mock_response`, so no provider or API key is needed:
//!
//! ```text
//! curl localhost:4000/v1/chat/completions -H 'Authorization: Bearer sk-demo' \
//!      -d '{"model":"demo","messages":[{"role":"user","content":"hi"}]}'
//! ```
//!
//! Logs go to stderr through `tracing-subscriber`; `RUST_LOG=debug` shows more.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use llmgate::Gateway;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// `examples/quickstart.yaml`, wherever `cargo run` is started from.
fn default_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../quickstart.yaml")
}

/// Reads the config (with the `.env` beside it and the process environment) and builds the
/// gateway. Every config problem is reported at once.
fn load(path: &Path) -> Result<Gateway, Fatal> {
    let loaded = llmgate::load_config(path)
        .map_err(|problems| format!("{}:\n{problems}", path.display()))?;
    for notice in &loaded.notices {
        tracing::warn!("{notice}");
    }
    Ok(Gateway::new(loaded.config)?)
}

/// Serves `gateway` on `listener` until `shutdown` resolves, then drains in-flight requests.
async fn run(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tracing::info!(
        addr = %listener.local_addr()?,
        models = ?gateway.models(),
        "llmgate listening"
    );
    llmgate::serve(listener, gateway, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first Ctrl-C.
async fn ctrl_c() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C: no new connections; finishing in-flight requests"),
        Err(e) => {
            // Without a signal handler, serve until killed rather than stop right away.
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config = std::env::args_os()
        .nth(1)
        .map_or_else(default_config, PathBuf::from);
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>()?,
        Err(_) => 4000,
    };
    let gateway = load(&config)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    run(listener, gateway, ctrl_c()).await?;
    Ok(())
}

/// An error `main` prints as its message: returning a plain `Box<dyn Error>` from `main`
/// prints its `Debug` form, which for a list of config problems is one escaped line.
struct Fatal(Box<dyn Error>);

impl fmt::Debug for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<E: Into<Box<dyn Error>>> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::{SystemTime, UNIX_EPOCH};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use llmgate_testkit::MockProvider;
    use serde_json::{json, Value};
    use tokio::sync::oneshot;

    use super::*;

    /// A config file in a fresh directory of its own (so no stray `.env` is read beside it).
    fn write_config(yaml: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "example-embedded-serve-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    #[tokio::test]
    async fn serves_a_config_file_over_tcp_and_stops_gracefully() {
        let mock = MockProvider::start().await;
        let path = write_config(&format!(
            "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {}\n      api_key: sk-upstream\ngeneral_settings:\n  master_key: sk-test\n",
            mock.v1_url()
        ));
        let gateway = load(&path).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::remove_dir_all(dir).unwrap();
        }

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, gateway, async {
            let _ = stopped.await;
        }));

        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
        let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("authorization", "Bearer sk-test")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let res = client.request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "mock reply to: hi");

        // The provider got the deployment's key, never the client's.
        let upstream = mock.last_request().unwrap();
        assert_eq!(upstream.path, "/v1/chat/completions");
        assert_eq!(upstream.bearer_token(), Some("sk-upstream"));

        drop(client);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn the_default_config_is_the_quickstart() {
        let gateway = load(&default_config()).unwrap();
        assert_eq!(gateway.models().len(), 1);
        assert_eq!(gateway.models()[0].0, "demo");
    }
}
