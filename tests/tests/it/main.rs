//! Integration tests: the real gateway on 127.0.0.1:0 against in-process mock providers.
//! One test binary (faster to link than one per file).

mod access;
mod alerting;
mod attribution;
mod auth;
mod blame;
mod bounds;
mod cache;
mod chat;
mod compatible;
mod endpoints;
mod errors;
mod fallback;
mod fuzz_regressions;
mod golden;
mod health;
mod key_bounds;
mod keys;
mod messages;
mod metering;
mod ollama_sidecar;
mod proxy_budget;
mod quickstart;
mod ratelimit;
mod relay_faults;
mod reload;
mod responses;
mod routing;
mod serve_limits;
mod spend;
mod stream;
mod stream_spend;
mod teams;
mod ui;
mod vertex;
mod watsonx;
