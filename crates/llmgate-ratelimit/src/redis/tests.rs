use super::*;

/// A Redis on 127.0.0.1:6379, or `None` (and a line saying so) when there is none.
async fn local() -> Option<RedisStore> {
    let up = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !up {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("redis"),
            "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: no Redis on 127.0.0.1:6379");
        return None;
    }
    RedisStore::new(RedisConfig::new("redis://127.0.0.1:6379")).ok()
}

fn prefix(test: &str) -> String {
    format!("llmgate-test:rl:{test}:{:x}:", fastrand::u64(..))
}

#[tokio::test]
async fn passes_the_store_suite() {
    let Some(store) = local().await else { return };
    crate::suite::run(Arc::new(store), &prefix("suite")).await;
}

#[tokio::test]
async fn a_closed_port_is_an_error_and_fails_fast_afterwards() {
    // Port 1 on loopback: nothing listens there.
    let store = RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap();
    let c = [Check {
        key: "x".into(),
        limit: 1,
        kind: Kind::Parallel,
    }];
    assert!(store.acquire(&c).await.is_err());
    let started = std::time::Instant::now();
    assert!(store.acquire(&c).await.is_err());
    assert!(started.elapsed() < Duration::from_millis(50), "backs off");
}

/// Three layers, each with its own store and connection (three gateway instances), one
/// key with `rpm_limit` 7 and `tpm_limit` 1000: a concurrent burst admits exactly 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_admit_exactly_the_limit_together() {
    use http::{Request, Response};
    use llmgate_core::{body, BoxBody, Principal, VirtualKey};
    use tower::{service_fn, Layer, Service, ServiceExt};

    if local().await.is_none() {
        return;
    }
    let p = prefix("three");
    let instances: Vec<_> = (0..3)
        .map(|_| {
            let mut cfg = RedisConfig::new("redis://127.0.0.1:6379");
            cfg.prefix.clone_from(&p);
            let layer = crate::RateLimitLayer::new(Arc::new(RedisStore::new(cfg).unwrap()));
            let inner = service_fn(|_r: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(body::full("ok")))
            });
            layer.layer(inner)
        })
        .collect();
    let key = Principal::Key(Arc::new(VirtualKey {
        token: "shared-key".into(),
        rpm_limit: Some(7),
        ..VirtualKey::default()
    }));
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let mut svc = instances[i % 3].clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut req = Request::new(());
                req.extensions_mut().insert(key);
                let res: Response<BoxBody> = svc.ready().await.unwrap().call(req).await.unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 23);
}

#[test]
fn a_malformed_url_is_refused_up_front() {
    assert!(RedisStore::new(RedisConfig::new("not a url")).is_err());
}

fn one_slot(key: &str) -> [Check; 1] {
    [Check {
        key: key.into(),
        limit: 1,
        kind: Kind::Parallel,
    }]
}

fn store(prefix: &str, lease: Duration) -> RedisStore {
    let mut cfg = RedisConfig::new("redis://127.0.0.1:6379");
    cfg.prefix = prefix.into();
    cfg.parallel_lease = lease;
    RedisStore::new(cfg).unwrap()
}

/// An instance that dies holding a slot (it never releases it, nobody renews it): the slot
/// frees itself when its lease ends, and the instance that finds it expired counts it.
#[tokio::test]
async fn a_slot_nobody_renews_frees_itself_when_its_lease_ends() {
    if local().await.is_none() {
        return;
    }
    let p = prefix("orphan");
    let lease = Duration::from_millis(1200);
    let dead = store(&p, lease);
    assert_eq!(dead.acquire(&one_slot("k")).await.unwrap().denied, None);
    drop(dead);
    let other = store(&p, lease);
    assert_eq!(other.acquire(&one_slot("k")).await.unwrap().denied, Some(0));
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(other.acquire(&one_slot("k")).await.unwrap().denied, None);
    assert_eq!(other.counters().slots_reclaimed, 1);
}

/// A request in flight longer than the lease keeps its slot: the keeper renews it.
#[tokio::test]
async fn a_slot_in_flight_is_renewed_past_its_lease() {
    if local().await.is_none() {
        return;
    }
    let p = prefix("renew");
    let lease = Duration::from_millis(1200);
    let holder = store(&p, lease);
    let held = holder.acquire(&one_slot("k")).await.unwrap();
    assert_eq!(held.denied, None);
    let other = store(&p, lease);
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        other.acquire(&one_slot("k")).await.unwrap().denied,
        Some(0),
        "still held after two leases"
    );
    holder.finish(Settle {
        lease: held.lease,
        release: vec!["k".into()],
        ..Settle::default()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(other.acquire(&one_slot("k")).await.unwrap().denied, None);
}

/// Tries `acquire` until Redis answers (the store fails fast for a second after a fault).
async fn acquire_when_up(store: &RedisStore, checks: &[Check]) -> Verdict {
    let started = std::time::Instant::now();
    loop {
        match store.acquire(checks).await {
            Ok(v) => return v,
            Err(e) if started.elapsed() > Duration::from_secs(5) => panic!("{e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A request still running while Redis is away from its instance for longer than the lease
/// loses its slot (another instance takes it); once Redis is back, the holder's renewals,
/// which do reach Redis (its other slot outlives two leases), never add the lost slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_request_loses_its_slot_past_the_lease_and_renewal_adds_none() {
    if local().await.is_none() {
        return;
    }
    let proxy = llmgate_testkit::FaultProxy::start(([127, 0, 0, 1], 6379).into())
        .await
        .unwrap();
    let p = prefix("lost");
    let lease = Duration::from_millis(1200);
    let mut cfg = RedisConfig::new(format!("redis://{}", proxy.addr()));
    cfg.prefix.clone_from(&p);
    cfg.parallel_lease = lease;
    let holder = RedisStore::new(cfg).unwrap();
    let other = store(&p, lease);
    assert_eq!(holder.acquire(&one_slot("k")).await.unwrap().denied, None);
    assert_eq!(other.acquire(&one_slot("k")).await.unwrap().denied, Some(0));

    // Redis away from the holder (its request still running) past the lease (not so long
    // that the whole counter expires: the instance that finds the slot expired counts it).
    proxy.cut();
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    let taken = other.acquire(&one_slot("k")).await.unwrap();
    assert_eq!(taken.denied, None, "the slot ended with its lease");
    assert_eq!(other.counters().slots_reclaimed, 1);
    other.finish(Settle {
        lease: taken.lease,
        release: vec!["k".into()],
        ..Settle::default()
    });

    // Redis back: the holder renews what it holds, "k" included.
    proxy.restore();
    let witness = acquire_when_up(&holder, &one_slot("j")).await;
    assert_eq!(witness.denied, None);
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        other.acquire(&one_slot("j")).await.unwrap().denied,
        Some(0),
        "the holder's renewals reach Redis"
    );
    assert_eq!(
        other.acquire(&one_slot("k")).await.unwrap().denied,
        None,
        "a renewal added the lost slot back"
    );
}

/// Settlements Redis missed are queued up to 100,000; past that one is given up on (counted
/// lost) and the queue stays full. No runtime: `finish` queues each one for the keeper.
#[test]
fn a_full_retry_queue_gives_up_on_a_settlement() {
    let store = RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap();
    let settle = |lease| Settle {
        lease,
        release: vec!["k".into()],
        ..Settle::default()
    };
    for lease in 0..100_000 {
        store.finish(settle(lease));
    }
    assert_eq!(store.unsettled(), 100_000);
    assert_eq!(store.lost_settlements(), 0);
    store.finish(settle(100_000));
    assert_eq!(store.unsettled(), 100_000, "the queue holds no more");
    assert_eq!(store.lost_settlements(), 1);
    assert_eq!(store.counters().settlements_lost, 1);
    assert_eq!(store.counters().settlements_failed, 100_001);
}
