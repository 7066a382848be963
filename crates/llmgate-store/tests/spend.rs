//! The spend log on both backends: a batch stored and charged in one transaction, a retried
//! batch charging nothing twice, `disable_spend_logs`, and the spend endpoints' queries.
//!
//! Each PostgreSQL test gets a schema of its own (through `search_path`), so totals over the
//! whole log are not disturbed by other tests on the shared database; it prints a line and
//! returns when PostgreSQL is not there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmgate_auth::{generate_secret, hash_key, KeyStore};
use llmgate_core::VirtualKey;
use llmgate_metering::{SpendRecord, SpendSink, Tokens};
use llmgate_store::{LogCursor, LogFilter, SpendRange, Store, StoreOptions};
use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL database the tests use: `LLMGATE_TEST_PG_URL`, else the machine's `test`.
fn pg_url() -> String {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique() -> String {
    hash_key(&generate_secret())[..16].to_string()
}

/// A database for one test: a SQLite file, or a PostgreSQL schema; removed when dropped.
enum TestDb {
    Sqlite(PathBuf),
    Postgres(String),
}

impl TestDb {
    async fn sqlite() -> (TestDb, Store) {
        let path = std::env::temp_dir().join(format!("llmgate-spend-{}.db", unique()));
        let store = Store::open_sqlite(&path, &StoreOptions::new())
            .await
            .unwrap();
        (TestDb::Sqlite(path), store)
    }

    async fn postgres() -> Option<(TestDb, Store)> {
        let pg_url = pg_url();
        let conn = tokio::time::timeout(Duration::from_secs(1), PgConnection::connect(&pg_url));
        let Ok(Ok(mut conn)) = conn.await else {
            eprintln!("PostgreSQL not reachable at {pg_url}: skipping");
            return None;
        };
        let schema = format!("spend_{}", unique());
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        let url = format!("{pg_url}?options=-c%20search_path%3D{schema}");
        let store = Store::open(&url, &StoreOptions::new()).await.unwrap();
        Some((TestDb::Postgres(schema), store))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            TestDb::Postgres(schema) => {
                let sql = format!("DROP SCHEMA {schema} CASCADE");
                // Drop runs outside the test's runtime: a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut c) = PgConnection::connect(&pg_url()).await {
                            let _ = c.execute(sql.as_str()).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// 2026-03-10T12:00:00Z plus `minutes`.
fn at(minutes: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_773_144_000 + minutes * 60)
}

fn record(id: &str, key: Option<&str>, group: &str, cost: Option<f64>, minute: u64) -> SpendRecord {
    SpendRecord {
        request_id: Arc::from(id),
        key_token: key.map(str::to_owned),
        key_alias: key.map(|_| "team-a".to_owned()),
        team_id: None,
        user_id: Some("u1".to_owned()),
        requested_model: group.to_owned(),
        model_group: Some(Arc::from(group)),
        deployment: Some(Arc::from(format!("{group}-0"))),
        provider: Some("openai".to_owned()),
        upstream_model: Some(Arc::from("gpt-x")),
        endpoint: "/v1/chat/completions",
        tokens: Tokens {
            prompt: 100,
            completion: 20,
            cache_read: 10,
            cache_creation: 0,
            reasoning: 5,
        },
        cost,
        status: 200,
        outcome: llmgate_metering::Outcome::Success,
        error_class: None,
        usage_estimated: false,
        stream: false,
        cache_hit: false,
        attempts: 1,
        fallbacks: 0,
        start_time: at(minute),
        end_time: at(minute) + Duration::from_millis(250),
        latency: Duration::from_millis(250),
        time_to_first_token: None,
        tags: vec!["prod".to_owned()],
        error_message: None,
        messages: None,
        response: None,
    }
}

async fn new_key(store: &Store) -> String {
    let token = hash_key(&generate_secret());
    store
        .insert(&VirtualKey {
            token: token.clone(),
            key_name: "sk-...test".into(),
            key_alias: Some(format!("alias-{}", &token[..8])),
            ..VirtualKey::default()
        })
        .await
        .unwrap();
    token
}

/// 2026-03-10 (UTC) as a range, and the day after.
fn day(n: i64) -> SpendRange {
    let start = 1_773_100_800_000 + n * 86_400_000;
    SpendRange {
        from_ms: Some(start),
        until_ms: Some(start + 86_400_000),
    }
}

async fn stores_charges_and_answers(store: Store) {
    let key = new_key(&store).await;
    let other = new_key(&store).await;
    let batch = vec![
        record("r1", Some(&key), "gpt-a", Some(0.25), 0),
        record("r2", Some(&key), "gpt-b", Some(0.5), 1),
        record("r3", Some(&other), "gpt-a", Some(0.125), 2),
        // Unknown cost: stored as unknown, charged nothing.
        record("r4", Some(&other), "gpt-c", None, 3),
        // The master key: stored, charged to nobody. The next day.
        record("r5", None, "gpt-a", Some(1.0), 24 * 60),
    ];
    let charged = store.write_spend(&batch, true).await.unwrap();
    assert_eq!(charged.len(), 2);
    assert_eq!(charged[0].token, key);
    assert_eq!(charged[0].cost, 0.75);

    let k = store.get(&key).await.unwrap().unwrap();
    assert_eq!(k.spend, 0.75);
    assert_eq!(k.model_spend.get("gpt-a"), Some(&0.25));
    assert_eq!(k.model_spend.get("gpt-b"), Some(&0.5));
    assert_eq!(store.get(&other).await.unwrap().unwrap().spend, 0.125);

    let all = |f: LogFilter| LogFilter { limit: 100, ..f };
    let logs = store.spend_logs(&all(LogFilter::default())).await.unwrap();
    assert_eq!(
        logs.iter()
            .map(|l| l.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r5", "r4", "r3", "r2", "r1"],
        "newest first"
    );
    let r4 = &logs[1];
    assert_eq!(r4.cost, None);
    assert_eq!(
        (r4.prompt_tokens, r4.completion_tokens, r4.total_tokens),
        (100, 20, 120)
    );
    assert_eq!((r4.cached_tokens, r4.reasoning_tokens), (10, 5));
    assert_eq!(r4.tags, ["prod"]);
    assert_eq!(r4.latency_ms, 250);
    assert_eq!(r4.end_time - r4.start_time, 250);
    assert_eq!(r4.model_group.as_deref(), Some("gpt-c"));

    let by_key = store
        .spend_logs(&all(LogFilter {
            key_token: Some(key.clone()),
            ..LogFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(by_key.len(), 2);
    let one = store
        .spend_logs(&all(LogFilter {
            request_id: Some("r3".into()),
            ..LogFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].key_token.as_deref(), Some(other.as_str()));
    let first_day = store
        .spend_logs(&all(LogFilter {
            range: day(0),
            ..LogFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(first_day.len(), 4);
    let limited = store
        .spend_logs(&LogFilter {
            limit: 2,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);

    let models = store
        .spend_by_model(SpendRange::default(), 10)
        .await
        .unwrap();
    let models: Vec<_> = models.iter().map(|m| (m.model.as_str(), m.spend)).collect();
    assert_eq!(models, [("gpt-a", 1.375), ("gpt-b", 0.5), ("gpt-c", 0.0)]);
    let models = store.spend_by_model(day(0), 1).await.unwrap();
    assert_eq!(models[0].model, "gpt-b");
    assert_eq!(models.len(), 1);

    let keys = store.spend_by_key(SpendRange::default(), 10).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].token, key);
    assert_eq!(keys[0].spend, 0.75);
    assert_eq!(
        keys[0].key_alias.as_deref(),
        Some(format!("alias-{}", &key[..8]).as_str()),
        "the key's alias as it is now"
    );
    assert_eq!(keys[1].spend, 0.125);

    assert_eq!(
        store.spend_total(SpendRange::default()).await.unwrap(),
        1.875
    );
    assert_eq!(store.spend_total(day(0)).await.unwrap(), 0.875);
    assert_eq!(store.spend_total(day(1)).await.unwrap(), 1.0);
    assert_eq!(store.spend_total(day(2)).await.unwrap(), 0.0);
}

async fn a_retried_batch_charges_once(store: Store) {
    let key = new_key(&store).await;
    let batch: Vec<_> = (0..3)
        .map(|i| record(&format!("retry-{i}"), Some(&key), "gpt-a", Some(0.5), i))
        .collect();
    SpendSink::write(&store, &batch).await.unwrap();
    // The writer retries after a commit whose answer it never saw.
    SpendSink::write(&store, &batch).await.unwrap();
    // A batch overlapping the last, and naming one new id twice.
    let mut next = batch[1..].to_vec();
    next.push(record("retry-3", Some(&key), "gpt-a", Some(0.5), 5));
    next.push(record("retry-3", Some(&key), "gpt-a", Some(0.5), 5));
    let charged = store.write_spend(&next, true).await.unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].cost, 0.5);

    assert_eq!(store.get(&key).await.unwrap().unwrap().spend, 2.0);
    let logs = store
        .spend_logs(&LogFilter {
            key_token: Some(key),
            limit: 100,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 4);
}

async fn without_logs_keys_are_still_charged(store: Store) {
    let key = new_key(&store).await;
    let batch = vec![
        record("nolog-1", Some(&key), "gpt-a", Some(0.25), 0),
        record("nolog-2", Some(&key), "gpt-a", Some(0.25), 1),
    ];
    store.write_spend(&batch, false).await.unwrap();
    let k = store.get(&key).await.unwrap().unwrap();
    assert_eq!(k.spend, 0.5);
    assert_eq!(k.model_spend.get("gpt-a"), Some(&0.5));
    let logs = store
        .spend_logs(&LogFilter {
            limit: 100,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert!(logs.is_empty());
}

async fn a_deleted_keys_records_are_kept(store: Store) {
    let key = new_key(&store).await;
    store.delete(std::slice::from_ref(&key)).await.unwrap();
    let charged = store
        .write_spend(&[record("gone-1", Some(&key), "gpt-a", Some(0.5), 0)], true)
        .await
        .unwrap();
    assert!(charged.is_empty());
    let keys = store.spend_by_key(SpendRange::default(), 10).await.unwrap();
    assert_eq!(
        keys[0].key_alias.as_deref(),
        Some("team-a"),
        "the alias logged"
    );
    assert!(store.get(&key).await.unwrap().is_none());
}

/// A batch larger than one `INSERT` statement holds.
async fn a_large_batch_is_written_whole(store: Store) {
    let key = new_key(&store).await;
    let batch: Vec<_> = (0..1_234)
        .map(|i| record(&format!("big-{i}"), Some(&key), "gpt-a", Some(0.0625), 0))
        .collect();
    store.write_spend(&batch, true).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().unwrap().spend,
        1_234.0 * 0.0625
    );
    let logs = store
        .spend_logs(&LogFilter {
            limit: 10_000,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 1_234);
}

/// The request log: failures with their error message, prompts and answers only when given,
/// and every filter `/spend/logs` offers, with paging by cursor.
async fn the_request_log_is_filtered_and_paged(store: Store) {
    let key = new_key(&store).await;
    let mut failed = record("f1", Some(&key), "gpt-a", Some(0.0), 5);
    failed.status = 500;
    failed.outcome = llmgate_metering::Outcome::Error;
    failed.error_class = Some(llmgate_core::FailureClass::Upstream5xx);
    failed.error_message = Some("upstream exploded".to_owned());
    failed.team_id = Some("team-1".to_owned());
    let mut kept = record("p1", None, "gpt-b", Some(0.5), 6);
    kept.messages = Some(r#"[{"role":"user","content":"hi"}]"#.to_owned());
    kept.response = Some(r#"{"choices":[]}"#.to_owned());
    let batch = vec![
        record("s1", Some(&key), "gpt-a", Some(0.25), 1),
        record("s2", Some(&key), "gpt-b", Some(0.25), 2),
        record("s3", None, "gpt-a", Some(0.25), 3),
        failed,
        kept,
    ];
    store.write_spend(&batch, true).await.unwrap();
    let ids = |f: LogFilter| {
        let store = store.clone();
        async move {
            let logs = store
                .spend_logs(&LogFilter { limit: 100, ..f })
                .await
                .unwrap();
            logs.into_iter().map(|l| l.request_id).collect::<Vec<_>>()
        }
    };
    let failures = store
        .spend_logs(&LogFilter {
            success: Some(false),
            limit: 10,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].request_id, "f1");
    assert_eq!(
        failures[0].error_message.as_deref(),
        Some("upstream exploded")
    );
    assert_eq!(failures[0].error_class.as_deref(), Some("upstream_5xx"));
    assert_eq!(failures[0].messages, None);
    let alias = format!("alias-{}", &key[..8]);
    // `record` names its key's alias `team-a`.
    assert_eq!(
        ids(LogFilter {
            key_alias: Some("team-a".into()),
            ..LogFilter::default()
        })
        .await,
        ["f1", "s2", "s1"]
    );
    assert!(ids(LogFilter {
        key_alias: Some(alias),
        ..LogFilter::default()
    })
    .await
    .is_empty());
    assert_eq!(
        ids(LogFilter {
            success: Some(true),
            ..LogFilter::default()
        })
        .await,
        ["p1", "s3", "s2", "s1"]
    );
    assert_eq!(
        ids(LogFilter {
            team_id: Some("team-1".into()),
            ..LogFilter::default()
        })
        .await,
        ["f1"]
    );
    assert_eq!(
        ids(LogFilter {
            user_id: Some("u1".into()),
            model: Some("gpt-b".into()),
            ..LogFilter::default()
        })
        .await,
        ["p1", "s2"]
    );
    let p1 = store
        .spend_logs(&LogFilter {
            request_id: Some("p1".into()),
            limit: 1,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p1[0].messages.as_deref(),
        Some(r#"[{"role":"user","content":"hi"}]"#)
    );
    assert_eq!(p1[0].response.as_deref(), Some(r#"{"choices":[]}"#));
    assert_eq!(p1[0].error_message, None);

    // Pages of two, newest first, each after the last row of the one before.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .spend_logs(&LogFilter {
                after: after.clone(),
                limit: 2,
                ..LogFilter::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = LogCursor::parse(&LogCursor::of(last));
        pages.push(
            page.iter()
                .map(|l| l.request_id.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(pages, [vec!["p1", "f1"], vec!["s3", "s2"], vec!["s1"]]);
}

/// `Store::activity`: sums, nearest-rank percentiles and top tables over the window only
/// (`docs/ui.md`, Overview).
async fn activity_sums_a_window_in_the_database(store: Store) {
    let key = new_key(&store).await;
    let rec = |id: &str, key: Option<&str>, group: &str, cost, minute, ms: u64| {
        let mut r = record(id, key, group, cost, minute);
        r.latency = Duration::from_millis(ms);
        r
    };
    let mut batch = vec![
        rec("a0", Some(&key), "gpt", Some(9.0), 0, 1), // before the window
        rec("a1", Some(&key), "gpt", Some(1.0), 5, 100),
        rec("a2", Some(&key), "gpt", Some(0.5), 7, 300),
        rec("a3", None, "gpt", None, 8, 200),
        rec("a4", None, "claude", Some(0.25), 25, 50),
        rec("a5", Some(&key), "gpt", Some(9.0), 61, 1), // after it
    ];
    batch[2].fallbacks = 1;
    batch[3].status = 429;
    batch[3].outcome = llmgate_metering::Outcome::UpstreamError;
    for i in 1..=20 {
        batch.push(rec(&format!("b{i}"), None, "claude", Some(0.0), 45, i));
    }
    store.write_spend(&batch, true).await.unwrap();
    let ms = |m: u64| i64::try_from(at(m).duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let q = llmgate_store::ActivityQuery {
        from_ms: ms(1),
        until_ms: ms(61),
        bucket_ms: 600_000,
        top: 5,
    };
    let a = store.activity(q).await.unwrap();
    assert_eq!(a.buckets.len(), 6);
    let b0 = &a.buckets[0];
    assert_eq!(
        (b0.start_ms, b0.requests, b0.errors, b0.fallbacks, b0.spend),
        (ms(1), 3, 1, 1, 1.5)
    );
    // Nearest rank of [100, 200, 300]: p50 the 2nd, p95 the 3rd.
    assert_eq!(
        (b0.latency_p50_ms, b0.latency_p95_ms),
        (Some(200), Some(300))
    );
    assert_eq!(
        (a.buckets[1].requests, a.buckets[1].latency_p50_ms),
        (0, None)
    );
    assert_eq!(
        (a.buckets[4].latency_p50_ms, a.buckets[4].latency_p95_ms),
        (Some(10), Some(19))
    );
    let t = &a.total;
    assert_eq!(
        (t.requests, t.errors, t.fallbacks, t.spend),
        (24, 1, 1, 1.75)
    );
    // 24 latencies (1..=20, 50, 100, 200, 300): the 12th and the 23rd.
    assert_eq!((t.latency_p50_ms, t.latency_p95_ms), (Some(12), Some(200)));
    let names = |v: &[llmgate_store::ActivityTop]| {
        v.iter()
            .map(|t| (t.name.clone(), t.requests, t.errors))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&a.top_models),
        [(Some("claude".into()), 21, 0), (Some("gpt".into()), 3, 1)]
    );
    assert_eq!(
        names(&a.top_keys),
        [(None, 22, 1), (Some(key.clone()), 2, 0)]
    );
    assert_eq!(a.top_keys[1].key_alias.as_deref(), Some("team-a"));
    assert_eq!(a.top_deployments[0].name.as_deref(), Some("claude-0"));
    // An empty window answers empty buckets.
    let q = llmgate_store::ActivityQuery {
        from_ms: ms(100),
        until_ms: ms(160),
        ..q
    };
    let empty = store.activity(q).await.unwrap();
    assert_eq!(
        (
            empty.buckets.len(),
            empty.total.requests,
            empty.top_models.len()
        ),
        (6, 0, 0)
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = super::TestDb::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_db, store)) = super::TestDb::postgres().await else { return };
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

on_both!(
    stores_charges_and_answers,
    a_retried_batch_charges_once,
    without_logs_keys_are_still_charged,
    a_deleted_keys_records_are_kept,
    a_large_batch_is_written_whole,
    the_request_log_is_filtered_and_paged,
    activity_sums_a_window_in_the_database,
);
