//! docs/cost-tracking.md, "No price, no guess": a model without a price is warned about once,
//! however many of its requests are priced, naming `model_info` as the fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use llmgate_core::{DeploymentSpec, ProviderKind};
use llmgate_metering::{ModelPrice, PriceTable};

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The warnings `run` logs, one line each.
fn warnings(run: impl FnOnce()) -> Vec<String> {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .filter(|l| l.contains("no price for this model"))
        .map(str::to_owned)
        .collect()
}

fn dep(id: &str, model: &str) -> Arc<DeploymentSpec> {
    Arc::new(DeploymentSpec::new(
        id,
        "group",
        ProviderKind::OpenAi,
        model,
    ))
}

fn table() -> PriceTable {
    let price = ModelPrice {
        input_cost_per_token: Some(1e-6),
        output_cost_per_token: Some(2e-6),
        ..ModelPrice::default()
    };
    PriceTable::from_entries([("priced-model".to_owned(), price)])
}

/// Deployments known when the table is built (the gateway's model list).
#[test]
fn a_known_unpriced_model_is_warned_about_once() {
    let (a, b, priced) = (
        dep("a-0", "private-a"),
        dep("b-0", "private-b"),
        dep("p-0", "priced-model"),
    );
    let t = table().with_deployments([a.clone(), b.clone(), priced.clone()]);
    let logged = warnings(|| {
        for _ in 0..5 {
            assert!(t.price(&a).is_none());
            assert!(t.price(&b).is_none());
            assert!(t.price(&priced).is_some());
        }
    });
    assert_eq!(logged.len(), 2, "{logged:#?}");
    assert!(logged[0].contains("openai/private-a"), "{logged:#?}");
    assert!(logged[1].contains("openai/private-b"), "{logged:#?}");
    assert!(
        logged.iter().all(|l| l.contains("model_info")),
        "{logged:#?}"
    );
}

/// Deployments the table was not built with (added later): once per model.
#[test]
fn an_unpriced_model_added_later_is_warned_about_once_per_model() {
    let t = table().with_deployments([]);
    let logged = warnings(|| {
        for i in 0..5 {
            assert!(t.price(&dep(&format!("a-{i}"), "private-a")).is_none());
            assert!(t.price(&dep("p-0", "priced-model")).is_some());
        }
        assert!(t.price(&dep("b-0", "private-b")).is_none());
    });
    assert_eq!(logged.len(), 2, "{logged:#?}");
    assert!(logged[0].contains("openai/private-a"), "{logged:#?}");
    assert!(logged[1].contains("openai/private-b"), "{logged:#?}");
}

/// Two deployments of one unpriced model in the model list, and a third added later: one
/// warning for the model, not one per deployment.
#[test]
fn deployments_of_one_unpriced_model_share_its_warning() {
    let (a, b) = (dep("a-0", "private-a"), dep("a-1", "private-a"));
    let t = table().with_deployments([a.clone(), b.clone()]);
    let logged = warnings(|| {
        assert!(t.price(&a).is_none());
        assert!(t.price(&b).is_none());
        assert!(t.price(&dep("a-2", "private-a")).is_none());
    });
    assert_eq!(logged.len(), 1, "{logged:#?}");
}
