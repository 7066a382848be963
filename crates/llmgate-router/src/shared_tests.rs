//! Deployment limits shared between instances: two tables (two gateway instances) on one
//! [`SharedUsage`] store send a deployment no more than its limits together.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use llmgate_core::{DeploymentSpec, ErrorContract};

use crate::tests::{d, served_by, stub};
use crate::{ModelTable, Router, Settle, SharedError, SharedUsage, TakeFuture, Taken};

/// A store in memory, shared by the tables of a test: counts each deployment's requests
/// (against `rpm`, never reset: the tests run inside one minute) and records settlements.
#[derive(Debug, Default)]
struct Store {
    taken: Mutex<HashMap<String, u64>>,
    settled: Mutex<Vec<(String, Settle)>>,
    down: AtomicBool,
}

impl SharedUsage for Store {
    fn take(&self, d: &DeploymentSpec, _day: u64) -> TakeFuture {
        let answer = if self.down.load(SeqCst) {
            Err(SharedError("down".into()))
        } else {
            let mut taken = self.taken.lock().unwrap();
            let n = taken.entry(d.id.to_string()).or_default();
            if d.rpm.is_some_and(|rpm| *n >= rpm) {
                Ok(Taken::Denied {
                    limit: "rpm",
                    retry_after: None,
                })
            } else {
                *n += 1;
                Ok(Taken::Admitted { at: 7 })
            }
        };
        Box::pin(async move { answer })
    }

    fn settle(&self, d: &DeploymentSpec, settle: Settle) {
        self.settled
            .lock()
            .unwrap()
            .push((d.id.to_string(), settle));
    }

    fn backend(&self) -> &'static str {
        "test"
    }
}

fn limited(id: &str, group: &str, rpm: Option<u64>, tpm: Option<u64>) -> DeploymentSpec {
    let mut spec = d(id, group);
    spec.rpm = rpm;
    spec.tpm = tpm;
    spec
}

fn instance(store: &Arc<Store>, ds: &[DeploymentSpec]) -> Arc<ModelTable> {
    let table = ModelTable::new(ds.iter().cloned().map(Arc::new), [])
        .with_shared_usage(store.clone() as Arc<dyn SharedUsage>);
    Arc::new(table)
}

#[tokio::test]
async fn two_instances_send_a_deployment_its_rpm_together() {
    let store = Arc::new(Store::default());
    let ds = [limited("a", "g", Some(5), None)];
    let none = |_: &str| None;
    let mut instances = [
        Router::new(stub(none), instance(&store, &ds)),
        Router::new(stub(none), instance(&store, &ds)),
    ];
    let mut served = 0;
    let mut refused = 0;
    for i in 0..10 {
        match served_by(&mut instances[i % 2], "g").await {
            Ok(_) => served += 1,
            Err(e) => {
                assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS, "{e:?}");
                assert!(
                    e.message().contains("across the instances"),
                    "{}",
                    e.message()
                );
                refused += 1;
            }
        }
    }
    // Alone, each instance would have sent 5 (its own rpm): 10 in all.
    assert_eq!((served, refused), (5, 5));
}

#[tokio::test]
async fn a_deployment_full_elsewhere_is_skipped_for_another() {
    let store = Arc::new(Store::default());
    // Equal weights (else simple-shuffle weighs by rpm and `a` is rarely picked).
    let ds = [
        limited("a", "g", Some(1), None),
        limited("b", "g", Some(1000), None),
    ]
    .map(|mut d| {
        d.weight = Some(1.0);
        d
    });
    let other = instance(&store, &ds);
    let mut other = Router::new(stub(|_| None), other);
    // The other instance uses up `a` (and some of `b`).
    while store.taken.lock().unwrap().get("a").copied().unwrap_or(0) < 1 {
        served_by(&mut other, "g").await.unwrap();
    }
    let here = instance(&store, &ds);
    let mut router = Router::new(stub(|_| None), here.clone());
    for _ in 0..20 {
        assert_eq!(served_by(&mut router, "g").await.unwrap(), "b");
    }
    // The refusal undid this instance's own take of `a`: its local rpm still has room.
    let (_, a) = here.all().into_iter().find(|(s, _)| &*s.id == "a").unwrap();
    assert!(a
        .usage
        .take_request(Some(1), None, here.clock.now_us(), 0)
        .is_ok());
}

#[tokio::test]
async fn a_store_that_is_away_leaves_routing_on_local_counts() {
    let store = Arc::new(Store::default());
    store.down.store(true, SeqCst);
    let ds = [limited("a", "g", Some(3), None)];
    let table = instance(&store, &ds);
    let mut router = Router::new(stub(|_| None), table.clone());
    for _ in 0..3 {
        assert_eq!(served_by(&mut router, "g").await.unwrap(), "a");
    }
    let e = served_by(&mut router, "g").await.unwrap_err();
    assert_eq!(
        e.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the local rpm holds"
    );
    assert_eq!(table.shared_errors(), 3);
}

#[tokio::test]
async fn a_tpm_reservation_is_settled_when_the_attempt_ends() {
    let store = Arc::new(Store::default());
    let ds = [
        limited("ok", "g", None, Some(1000)),
        limited("bad", "h", None, Some(1000)),
        limited("plain", "p", Some(100), None),
    ];
    let table = instance(&store, &ds);
    let fail = |id: &str| (id == "bad").then(|| llmgate_core::ApiError::internal("upstream broke"));
    let mut router = Router::new(stub(fail), table);
    served_by(&mut router, "g").await.unwrap();
    served_by(&mut router, "h").await.unwrap_err();
    served_by(&mut router, "p").await.unwrap();
    let settled = store.settled.lock().unwrap().clone();
    // No usage reached the router here (no provider wrote any), so both give back their
    // reservation; a deployment without tpm reserved nothing.
    assert_eq!(
        settled,
        vec![
            ("ok".to_owned(), Settle { at: 7, tokens: 0 }),
            ("bad".to_owned(), Settle { at: 7, tokens: 0 }),
        ]
    );
}
