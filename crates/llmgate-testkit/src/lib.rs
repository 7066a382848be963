//! In-process mock LLM providers for llmgate's integration tests and examples (dev-only).
//!
//! A [`MockProvider`] listens on `127.0.0.1:<ephemeral port>` in a spawned tokio task, so any
//! number of tests run in parallel without fixed ports. It speaks a provider's wire format
//! with its own JSON values, independent of the gateway's types, so it checks the gateway
//! against the wire and not against itself.
//!
//! - **Dialects.** [`MockProvider::start`] speaks OpenAI's API: `POST /chat/completions`,
//!   `POST /completions`, `POST /embeddings` and `GET /models` (also `GET /models/{id}`),
//!   each with and without the `/v1` prefix. Streams are server-sent events ending with
//!   `data: [DONE]`, with the usage chunk when the request sets
//!   `stream_options.include_usage`. Other dialects will sit beside it.
//!   [`MockProvider::start_tool_caller`] is the same API whose chat completions call the
//!   request's function tools as a model would (`openai/tools.rs`).
//!   [`MockProvider::start_vertex`] speaks Vertex AI's (Gemini's and Anthropic's models) and
//!   [`MockProvider::start_google_token`] Google's OAuth token endpoint, which checks the
//!   JWTs a test service account ([`service_account_json`]) signs;
//!   [`MockProvider::start_gce_metadata`] the metadata server's token endpoint (workload
//!   identity); [`MockProvider::start_watsonx`] IBM watsonx.ai's chat API and
//!   [`MockProvider::start_ibm_iam`] IBM Cloud IAM's token endpoint;
//!   [`MockProvider::start_sagemaker`] SageMaker's runtime with a TGI container
//!   ([`sagemaker`]); [`MockProvider::start_replicate`] Replicate's predictions API
//!   ([`replicate`]).
//! - **Behaviours.** Each request is answered with a [`Behaviour`]: the next one queued with
//!   [`MockProvider::push`], else the default ([`MockProvider::set_default`], initially
//!   [`Behaviour::Ok`]). Behaviours cover custom replies, error statuses with headers,
//!   delays, paced streams, connections cut mid-stream, invalid bodies, and streams held
//!   at a [`Gate`] until the test releases them.
//! - **Recording.** Every request is kept as a [`Recorded`] (method, path and query,
//!   headers, body bytes, parsed JSON): [`MockProvider::requests`],
//!   [`MockProvider::last_request`], [`MockProvider::request_count`].
//!
//! - **Faults.** [`FaultProxy`] sits in front of Redis, PostgreSQL or a provider and cuts, stalls
//!   and restores it on the test's word; [`ErringRedis`] is a Redis that is up and answers every
//!   command with an error.
//!
//! Default answers are deterministic: chat replies `"mock reply to: <last user message>"`,
//! with the request's model echoed and tokens counted as whitespace-separated words.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use llmgate_testkit::{Behaviour, MockProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockProvider::start().await;
//! // The first request gets a 429 with Retry-After; later ones the default reply.
//! mock.push(Behaviour::error(429, "Rate limit reached for gpt-4o").with_header("retry-after", "1"));
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}"#;
//! let request = || {
//!     http::Request::post(format!("{}/chat/completions", mock.v1_url()))
//!         .header("authorization", "Bearer sk-test")
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from(body)))
//! };
//!
//! let limited = client.request(request()?).await?;
//! assert_eq!(limited.status(), 429);
//! assert_eq!(limited.headers()["retry-after"], "1");
//!
//! let ok = client.request(request()?).await?;
//! assert_eq!(ok.status(), 200);
//! let json: serde_json::Value = serde_json::from_slice(&ok.into_body().collect().await?.to_bytes())?;
//! assert_eq!(json["object"], "chat.completion");
//! assert_eq!(json["model"], "gpt-4o");
//! assert_eq!(json["choices"][0]["message"]["content"], "mock reply to: hello");
//!
//! assert_eq!(mock.request_count(), 2);
//! let last = mock.last_request().ok_or("no request recorded")?;
//! assert_eq!(last.path, "/v1/chat/completions");
//! assert_eq!(last.bearer_token(), Some("sk-test"));
//! assert_eq!(last.json["messages"][0]["content"], "hello");
//! # Ok(())
//! # }
//! ```

mod anthropic;
pub mod bedrock;
mod behaviour;
mod gemini;
mod google;
mod metadata;
mod ollama;
mod openai;
mod proxy;
mod redis;
pub mod replicate;
pub mod sagemaker;
mod server;
mod vertex;
mod watsonx;

pub use behaviour::{Behaviour, Gate};
pub use google::{
    authorized_user_json, service_account_json, AccessTokens, TEST_CLIENT_EMAIL, TEST_KEY_ID,
    TEST_PRIVATE_KEY_PEM, TEST_USER_CLIENT_ID, TEST_USER_CLIENT_SECRET, TEST_USER_REFRESH_TOKEN,
};
pub use proxy::{FaultProxy, Mode as FaultMode};
pub use redis::ErringRedis;
pub use server::{MockProvider, Recorded};
