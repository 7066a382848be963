//! The spend log on both backends: a batch stored and charged in one transaction, a retried
//! batch charging nothing twice, `disable_spend_logs`, and the spend endpoints' queries.
//!
//! Each PostgreSQL test gets a schema of its own (through `search_path`), so totals over the
//! whole log are not disturbed by other tests on the shared database; it prints a line and
//! returns when PostgreSQL is not there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{new_key, record, TestDb};
use llmgate_auth::KeyStore;
use llmgate_metering::SpendSink;
use llmgate_store::{LogCursor, LogFilter, SpendRange, Store};

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
    assert_eq!(stored_logs(&store).await, 1_234);
}

/// How many spend logs the store holds (up to 10,000).
async fn stored_logs(store: &Store) -> usize {
    let filter = LogFilter {
        limit: 10_000,
        ..LogFilter::default()
    };
    store.spend_logs(&filter).await.unwrap().len()
}

/// A batch of many statements (SQLite inserts 8 rows a statement, PostgreSQL 500) retried
/// with an overlap that crosses statements, and one new id named in two of them: each record
/// is stored and charged once.
async fn a_retried_large_batch_charges_once(store: Store) {
    let key = new_key(&store).await;
    let rec = |i: usize| record(&format!("many-{i}"), Some(&key), "gpt-a", Some(0.5), 0);
    let first: Vec<_> = (0..700).map(rec).collect();
    store.write_spend(&first, true).await.unwrap();
    // The last 90 again (they cross statement boundaries on SQLite), 610 new, and new id 1000
    // named twice, in two statements on SQLite; the last statement on both is all new.
    let mut next: Vec<_> = (610..1_310).map(rec).collect();
    next.insert(5, rec(1_000));
    next.insert(300, rec(1_000));
    let charged = store.write_spend(&next, true).await.unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].cost, 610.0 * 0.5);
    assert_eq!(store.get(&key).await.unwrap().unwrap().spend, 1_310.0 * 0.5);
    assert_eq!(stored_logs(&store).await, 1_310);
}

/// A retried batch whose new records come first and whose last statements hold only stored
/// ids (on SQLite, the last two of 8 rows each): the records that went in are still told
/// apart, though the last statements inserted nothing.
async fn a_retried_batch_ending_in_stored_ids_charges_once(store: Store) {
    let key = new_key(&store).await;
    let rec = |i: usize| record(&format!("tail-{i}"), Some(&key), "gpt-a", Some(0.5), 0);
    let first: Vec<_> = (0..40).map(rec).collect();
    store.write_spend(&first, true).await.unwrap();
    let next: Vec<_> = (100..120).chain(0..16).map(rec).collect();
    let charged = store.write_spend(&next, true).await.unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].cost, 20.0 * 0.5);
    assert_eq!(store.get(&key).await.unwrap().unwrap().spend, 60.0 * 0.5);
    assert_eq!(stored_logs(&store).await, 60);
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

on_both!(
    stores_charges_and_answers,
    a_retried_batch_charges_once,
    without_logs_keys_are_still_charged,
    a_deleted_keys_records_are_kept,
    a_large_batch_is_written_whole,
    a_retried_large_batch_charges_once,
    a_retried_batch_ending_in_stored_ids_charges_once,
    the_request_log_is_filtered_and_paged,
);
