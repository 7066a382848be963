//! [`Alerting`] and its [`Dispatcher`]: events in, alerts out, never in a request's way.
//!
//! The dispatcher reads the events bus in its own task. Each event goes through [`Rules`]
//! (type filter, burst windows), then:
//! - **dedup**: an alert with the same type, event and subject as one queued within its TTL
//!   (`budget_alert_ttl` for budgets, else `llmgate_realert_interval`) is counted
//!   `deduplicated` and not sent; a recovery clears its outage's entry, so the next outage is
//!   told at once;
//! - **rate limit**: past `llmgate_max_alerts_per_minute` alerts in a minute, `dropped`;
//! - **queue**: a bounded queue ([`AlertingSettings::queue_capacity`]); full, `dropped`.
//!
//! A second loop sends each queued alert to each channel with retries ([`Poster`]), counting
//! `sent` or `failed`. A stalled receiver fills the queue, never the bus or a request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use llmgate_core::events::Subscription;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::send::Poster;
use crate::{Alert, AlertType, AlertingSettings, Channel, ChannelKind, Rules, SharedDedup};

/// What became of an alert on one channel (the `result` label of `llmgate_alerts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Delivered (2xx).
    Sent,
    /// Not delivered after every retry.
    Failed,
    /// Not sent: the same alert was sent within its TTL.
    Deduplicated,
    /// Not sent: over the rate limit or the queue full.
    Dropped,
}

impl Outcome {
    /// `sent`, `failed`, `deduplicated`, `dropped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Deduplicated => "deduplicated",
            Outcome::Dropped => "dropped",
        }
    }
}

type Counts = BTreeMap<(AlertType, ChannelKind, Outcome), u64>;

#[derive(Debug)]
struct Shared {
    channels: Vec<Channel>,
    counts: Mutex<Counts>,
    recent: Mutex<VecDeque<Value>>,
    recent_cap: usize,
    /// Claims across instances that failed (the alert was sent anyway).
    shared_errors: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn count(&self, t: AlertType, kind: ChannelKind, o: Outcome) {
        *lock(&self.counts).entry((t, kind, o)).or_default() += 1;
    }

    fn count_all(&self, t: AlertType, o: Outcome) {
        for c in &self.channels {
            self.count(t, c.kind, o);
        }
    }

    fn remember(&self, entry: Value) {
        let mut r = lock(&self.recent);
        if r.len() >= self.recent_cap {
            r.pop_front();
        }
        r.push_back(entry);
    }

    fn mark(&self, id: u64, kind: ChannelKind, o: Outcome) {
        let mut r = lock(&self.recent);
        if let Some(e) = r.iter_mut().rev().find(|e| e["id"] == id) {
            e["delivery"][kind.as_str()] = o.as_str().into();
        }
    }
}

/// The alerting's state as others read it: counts for `/metrics`, recent alerts for the admin
/// API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Alerting {
    shared: Arc<Shared>,
}

impl Alerting {
    /// The alerting for `settings`, and the dispatcher to run (in the runtime that serves)
    /// on a subscription to the events bus. Fails only if the HTTP client cannot be built.
    pub fn new(settings: AlertingSettings) -> Result<(Alerting, Dispatcher), String> {
        let poster = Poster::new(&settings)?;
        let shared = Arc::new(Shared {
            channels: settings.channels.clone(),
            counts: Mutex::default(),
            recent: Mutex::default(),
            recent_cap: settings.recent.max(1),
            shared_errors: Default::default(),
        });
        let dispatcher = Dispatcher {
            rules: Rules::new(settings.clone()),
            settings,
            poster,
            shared: shared.clone(),
            across: None,
        };
        Ok((Alerting { shared }, dispatcher))
    }

    /// Every non-zero count: `(alert_type, channel, result, n)`.
    pub fn counts(&self) -> Vec<(AlertType, ChannelKind, Outcome, u64)> {
        lock(&self.shared.counts)
            .iter()
            .map(|(&(t, c, o), &n)| (t, c, o, n))
            .collect()
    }

    /// Claims of the dedup across instances that failed (the alerts were sent anyway), since
    /// start (`llmgate_alerts_shared_dedup_errors_total`).
    pub fn shared_errors(&self) -> u64 {
        self.shared
            .shared_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most recent alerts, oldest first: each its webhook payload with an `id` and a
    /// `delivery` per channel (`queued`, `sent`, `failed`).
    pub fn recent(&self) -> Vec<Value> {
        lock(&self.shared.recent).iter().cloned().collect()
    }
}

/// One queued alert.
struct Queued {
    id: u64,
    alert: Alert,
    timestamp: String,
}

/// Reads events and sends alerts: run [`Dispatcher::run`] once, in the background.
#[derive(Debug)]
pub struct Dispatcher {
    settings: AlertingSettings,
    rules: Rules,
    poster: Poster,
    shared: Arc<Shared>,
    across: Option<(Arc<dyn SharedDedup>, String)>,
}

impl std::fmt::Debug for dyn SharedDedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedDedup")
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The intake's own state: dedup entries, the minute's count, ids.
#[derive(Default)]
struct Intake {
    sent_at: HashMap<(AlertType, &'static str, String), Instant>,
    minute: Option<(Instant, u32)>,
    next_id: u64,
}

/// Dedup entries kept before expired ones are swept.
const MAX_DEDUP: usize = 10_000;

impl Dispatcher {
    /// Deduplicates across instances through `store` too, its keys starting with `prefix`
    /// (see [`SharedDedup`]); `daily_reports` stay per instance (each tells its own counts).
    #[must_use]
    pub fn with_shared_dedup(mut self, store: Arc<dyn SharedDedup>, prefix: &str) -> Self {
        self.across = Some((store, prefix.to_owned()));
        self
    }

    /// Runs until the events bus closes (every gateway handle dropped).
    pub async fn run(self, mut events: Subscription) {
        let Dispatcher {
            settings,
            mut rules,
            poster,
            shared,
            across,
        } = self;
        let (tx, rx) = mpsc::channel::<Queued>(settings.queue_capacity.max(1));
        let intake = async {
            let mut state = Intake::default();
            while let Some(event) = events.recv().await {
                if let Some(alert) = rules.alert(&event, Instant::now()) {
                    let ttl = rules.dedup_ttl(&alert);
                    if state.seen(&alert, ttl, &shared) {
                        continue;
                    }
                    if let Some((store, prefix)) = &across {
                        if !claim(&**store, prefix, &alert, ttl, &shared).await {
                            state.sent_at.insert(alert.key(), Instant::now());
                            shared.count_all(alert.alert_type, Outcome::Deduplicated);
                            continue;
                        }
                    }
                    state.take(alert, &settings, &shared, &tx);
                }
            }
            drop(tx);
        };
        tokio::join!(intake, deliver(rx, &settings, &poster, &shared));
    }
}

/// Claims `alert`'s key across instances (clearing the key of the outage a recovery ends);
/// `false` when another instance claimed it first. Fails open.
async fn claim(
    store: &dyn SharedDedup,
    prefix: &str,
    alert: &Alert,
    ttl: Duration,
    shared: &Shared,
) -> bool {
    if alert.alert_type == AlertType::DailyReports {
        return true;
    }
    let key = |event: &str| {
        format!(
            "{prefix}alert:{}:{event}:{}",
            alert.alert_type.as_str(),
            alert.subject
        )
    };
    let failed = |e: String| {
        shared
            .shared_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(alert_type = alert.alert_type.as_str(), error = %e, "alert dedup across instances failed: sending it anyway");
        true
    };
    if let Some(cleared) = alert.clears() {
        let k = key(cleared);
        if let Err(e) = timeout(store.clear(&k)).await {
            return failed(e);
        }
    }
    match timeout(store.claim(&key(alert.event), ttl)).await {
        Ok(first) => first,
        Err(e) => failed(e),
    }
}

async fn timeout<T>(f: crate::DedupFuture<'_, T>) -> Result<T, String> {
    tokio::time::timeout(crate::CLAIM_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {} ms",
                crate::CLAIM_TIMEOUT.as_millis()
            ))
        })
}

impl Intake {
    /// Whether `alert` is a duplicate of one this instance sent within `ttl` (counted).
    fn seen(&self, alert: &Alert, ttl: Duration, shared: &Shared) -> bool {
        let dup = self
            .sent_at
            .get(&alert.key())
            .is_some_and(|at| at.elapsed() < ttl);
        if dup {
            shared.count_all(alert.alert_type, Outcome::Deduplicated);
        }
        dup
    }

    fn take(
        &mut self,
        alert: Alert,
        settings: &AlertingSettings,
        shared: &Shared,
        tx: &mpsc::Sender<Queued>,
    ) {
        let now = Instant::now();
        let key = alert.key();
        let minute = match self.minute {
            Some((start, n)) if now.duration_since(start) < Duration::from_secs(60) => (start, n),
            _ => (now, 0),
        };
        if minute.1 >= settings.max_per_minute {
            shared.count_all(alert.alert_type, Outcome::Dropped);
            tracing::warn!(
                alert_type = alert.alert_type.as_str(),
                "alert dropped: llmgate_max_alerts_per_minute reached"
            );
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let timestamp = now_rfc3339();
        let mut entry = alert.webhook(&timestamp);
        entry["id"] = id.into();
        let delivery: serde_json::Map<String, Value> = shared
            .channels
            .iter()
            .map(|c| (c.kind.as_str().to_owned(), "queued".into()))
            .collect();
        entry["delivery"] = delivery.into();
        let (t, clears, subject) = (alert.alert_type, alert.clears(), alert.subject.clone());
        if tx
            .try_send(Queued {
                id,
                alert,
                timestamp,
            })
            .is_err()
        {
            shared.count_all(t, Outcome::Dropped);
            tracing::warn!(
                alert_type = t.as_str(),
                "alert dropped: the alert queue is full (a receiver is slow or down)"
            );
            return;
        }
        self.minute = Some((minute.0, minute.1 + 1));
        if self.sent_at.len() >= MAX_DEDUP {
            self.sent_at
                .retain(|_, at| now.duration_since(*at) < Duration::from_secs(86_400));
        }
        self.sent_at.insert(key, now);
        if let Some(cleared) = clears {
            self.sent_at.remove(&(t, cleared, subject));
        }
        shared.remember(entry);
    }
}

/// Sends each queued alert to every channel, in order.
async fn deliver(
    mut rx: mpsc::Receiver<Queued>,
    settings: &AlertingSettings,
    poster: &Poster,
    shared: &Shared,
) {
    while let Some(q) = rx.recv().await {
        for c in &shared.channels {
            let (url, payload) = match c.kind {
                ChannelKind::Slack => (
                    settings
                        .slack_url_by_type
                        .get(&q.alert.alert_type)
                        .unwrap_or(&c.url),
                    q.alert.slack(&q.timestamp),
                ),
                ChannelKind::Webhook => (&c.url, q.alert.webhook(&q.timestamp)),
            };
            let body = Bytes::from(payload.to_string());
            let outcome = match poster.post(url, body).await {
                Ok(()) => Outcome::Sent,
                Err(e) => {
                    tracing::warn!(alert_type = q.alert.alert_type.as_str(), channel = c.kind.as_str(), error = %e.0, "alert not delivered after retries");
                    Outcome::Failed
                }
            };
            shared.count(q.alert.alert_type, c.kind, outcome);
            shared.mark(q.id, c.kind, outcome);
        }
    }
}
