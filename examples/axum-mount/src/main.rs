//! Run with: cargo run -p example-axum-mount
//!
//! Your own axum app, with the llmgate gateway mounted for the OpenAI paths (`/v1/*`).
//! Your routes stay yours; `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and
//! `/v1/models` go through the whole gateway stack (master key, model routing, providers,
//! errors in OpenAI's shape).
//!
//! The gateway is built from an inline LiteLLM config whose model answers with LiteLLM's
//! `mock_response`, so the example runs without any provider or API key. It listens on
//! `127.0.0.1:3000` (set `PORT` to change it):
//!
//! ```text
//! curl localhost:3000/hello
//! curl localhost:3000/v1/chat/completions -H 'Authorization: Bearer sk-demo' \
//!      -d '{"model":"demo","messages":[{"role":"user","content":"hi"}]}'
//! ```

use std::error::Error;
use std::net::Ipv4Addr;
use std::path::Path;

use axum::routing::get;
use axum::Router;
use llmgate::Gateway;

/// The gateway's LiteLLM config. Use `llmgate::load_config(path)` to read a `config.yaml`
/// instead.
const CONFIG: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      mock_response: "Hello from llmgate, mounted in your axum app!"
general_settings:
  master_key: sk-demo
"#;

/// Builds the gateway from [`CONFIG`], with `os.environ/...` references read from the
/// process environment.
fn gateway() -> Result<Gateway, Box<dyn Error>> {
    let loaded = llmgate::config::from_yaml(CONFIG, Path::new("."), &llmgate::config::ProcessEnv)?;
    for notice in &loaded.notices {
        eprintln!("{notice}");
    }
    Ok(Gateway::new(loaded.config)?)
}

/// Your app: your own routes, plus the gateway for everything under `/v1/`.
///
/// `route_service` hands the gateway the request untouched (full path included), so it sees
/// `/v1/chat/completions` exactly as a client sent it. The gateway answers its own errors
/// (401, 404, 405, ...) as OpenAI-shaped JSON, so the SDKs understand them.
fn app(gateway: &Gateway) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route_service("/v1/{*path}", gateway.service())
}

/// One of your own handlers.
async fn hello() -> &'static str {
    "Hello from your own axum route!\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>()?,
        Err(_) => 3000,
    };
    let gateway = gateway()?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    eprintln!(
        "listening on http://{}: your /hello, and llmgate on /v1/* (models: {:?})",
        listener.local_addr()?,
        gateway.models()
    );
    axum::serve(listener, app(&gateway))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::body::{to_bytes, Body};
    use axum::http::{header, Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::{app, gateway};

    fn chat(key: Option<&str>) -> Request<Body> {
        let body = json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]});
        let mut req =
            Request::post("/v1/chat/completions").header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        req.body(Body::from(body.to_string())).unwrap()
    }

    async fn json_body(res: axum::response::Response) -> Value {
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn your_own_route_still_works() {
        let app = app(&gateway().unwrap());
        let res = app
            .oneshot(Request::get("/hello").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"Hello from your own axum route!\n");
    }

    #[tokio::test]
    async fn chat_completion_goes_through_the_gateway() {
        let app = app(&gateway().unwrap());
        let res = app.oneshot(chat(Some("sk-demo"))).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().contains_key("x-llmgate-request-id"));
        let v = json_body(res).await;
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Hello from llmgate, mounted in your axum app!"
        );
    }

    #[tokio::test]
    async fn models_are_listed_under_v1() {
        let app = app(&gateway().unwrap());
        let req = Request::get("/v1/models")
            .header(header::AUTHORIZATION, "Bearer sk-demo")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json_body(res).await["data"][0]["id"], "demo");
    }

    #[tokio::test]
    async fn missing_master_key_is_an_openai_401() {
        let app = app(&gateway().unwrap());
        let res = app.oneshot(chat(None)).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let v = json_body(res).await;
        let e = &v["error"];
        assert_eq!(e["type"], "authentication_error");
        assert!(e["message"].is_string(), "{v}");
        assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    }

    #[tokio::test]
    async fn unknown_paths_outside_v1_are_axum_404s() {
        let app = app(&gateway().unwrap());
        let res = app
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
