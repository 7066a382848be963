//! Helpers for the attribution tests (`it/attribution.rs`, `logs.rs`): the gateway writing
//! into a memory spend sink, model list entries, records once written, `/metrics` samples,
//! captured log lines.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use llmgate::metering::{MemorySink, SpendRecord};
use llmgate_tests::TestGateway;

/// The gateway on `yaml`, writing its spend records into a memory sink.
pub async fn start(yaml: &str) -> (TestGateway, llmgate::Gateway, MemorySink) {
    let loaded = llmgate_config::from_yaml(yaml, Path::new("."), &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let sink = MemorySink::new();
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(sink.clone()))
        .build()
        .unwrap();
    (TestGateway::serve(gateway.clone()).await, gateway, sink)
}

/// A `model_list` entry: group `name`, deployment id `<name>-0`, on `api_base`.
pub fn entry(name: &str, api_base: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-x\n      \
         api_base: {api_base}\n      api_key: sk-up\n    model_info:\n      id: {name}-0\n"
    )
}

/// The `n` records, once written (a request whose client went away ends when the gateway
/// notices).
pub async fn records(gw: &llmgate::Gateway, sink: &MemorySink, n: usize) -> Vec<SpendRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        gw.flush_spend().await;
        let r = sink.records();
        if r.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(r.len(), n, "{r:?}");
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn class(r: &SpendRecord) -> Option<&'static str> {
    r.error_class.map(|c| c.as_str())
}

/// The sum of the samples of `name` whose labels include every pair of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.split_once("} ")?;
            let pairs: Vec<&str> = set.split(',').collect();
            labels
                .iter()
                .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
                .then(|| value.trim().parse::<f64>().unwrap())
        })
        .sum()
}

/// A `Write` into a shared buffer, for captured log lines.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
