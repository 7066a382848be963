//! Alerting's place in the gateway (see `docs/alerting.md`): the events bus (a process-lifetime
//! part, handed to the router, the fallback layer and the keys), the alert dispatcher on it
//! when `general_settings.alerting` names a channel, the backend watcher that tells the bus
//! when the spend writer, the database or Redis fail and recover, `GET /alerting/recent` and
//! the alert counts on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use llmgate_alerting::{AlertType, Alerting, AlertingSettings, Channel, ChannelKind};
use llmgate_auth::KeyStore;
use llmgate_config::Config;
use llmgate_core::events::{Backend, Event, Events};
use llmgate_metering::SpendQueue;
use llmgate_ratelimit::LimiterStore;
use llmgate_router::Hanging;

use crate::background::Background;
use crate::BuildError;

/// How often the backend watcher looks at the backends.
pub(crate) const BACKEND_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The alerting settings `config` asks for, `None` without a channel.
pub(crate) fn settings(config: &Config) -> Option<AlertingSettings> {
    let a = &config.general_settings.alerting;
    let mut channels = Vec::new();
    for c in &a.channels {
        match (c.as_str(), &a.slack_webhook_url, &a.webhook_url) {
            ("slack", Some(url), _) => channels.push(Channel {
                kind: ChannelKind::Slack,
                url: url.expose().to_owned(),
            }),
            // Only per-type URLs: the channel's own URL is never used.
            ("slack", None, _) if !a.alert_to_webhook_url.is_empty() => channels.push(Channel {
                kind: ChannelKind::Slack,
                url: String::new(),
            }),
            ("webhook", _, Some(url)) => channels.push(Channel {
                kind: ChannelKind::Webhook,
                url: url.expose().to_owned(),
            }),
            _ => {}
        }
    }
    if channels.is_empty() {
        return None;
    }
    let mut s = AlertingSettings {
        channels,
        alert_types: a
            .alert_types
            .iter()
            .filter_map(|t| AlertType::parse(t))
            .collect(),
        slack_url_by_type: a
            .alert_to_webhook_url
            .iter()
            .filter_map(|(t, url)| Some((AlertType::parse(t)?, url.expose().to_owned())))
            .collect(),
        ..AlertingSettings::default()
    };
    if let Some(t) = a.alerting_threshold {
        s.slow_threshold = t;
    }
    let secs = |name: &str| {
        a.args
            .get(name)
            .and_then(|n| llmgate_core::seconds::seconds(*n))
    };
    let count = |name: &str| {
        a.args
            .get(name)
            .map(|n| n.round().min(f64::from(u32::MAX)) as u32)
    };
    if let Some(d) = secs("budget_alert_ttl") {
        s.budget_alert_ttl = d;
    }
    if let Some(d) = secs("outage_alert_ttl").filter(|d| !d.is_zero()) {
        s.burst_window = d;
    }
    if let Some(n) = count("minor_outage_alert_threshold") {
        s.rate_limit_burst = n.max(1);
    }
    if let Some(n) = count("llmgate_fallback_alert_threshold") {
        s.fallback_threshold = n.max(1);
    }
    if let Some(d) = secs("llmgate_fallback_alert_window").filter(|d| !d.is_zero()) {
        s.fallback_window = d;
    }
    if let Some(d) = secs("llmgate_realert_interval") {
        s.realert_interval = d;
    }
    if let Some(n) = count("llmgate_max_alerts_per_minute") {
        s.max_per_minute = n;
    }
    Some(s)
}

/// `llmgate_budget_alert_percent` (80 by default).
pub(crate) fn budget_percent(config: &Config) -> u8 {
    config
        .general_settings
        .alerting
        .args
        .get("llmgate_budget_alert_percent")
        .map_or(llmgate_auth::DEFAULT_BUDGET_ALERT_PERCENT, |p| {
            p.round().clamp(1.0, 99.0) as u8
        })
}

/// The slow-response threshold the router tells the bus by: `alerting_threshold`, else 300 s.
pub(crate) fn slow_after(config: &Config) -> Option<Duration> {
    Some(
        config
            .general_settings
            .alerting
            .alerting_threshold
            .unwrap_or(Duration::from_secs(300)),
    )
}

/// What [`start`] started: the alerting, and the registry every model table watches its
/// attempts in when `llm_requests_hanging` is sent.
#[derive(Default)]
pub(crate) struct Started {
    pub(crate) alerting: Option<Alerting>,
    pub(crate) hanging: Option<Arc<Hanging>>,
    /// Whether `daily_reports` are sent (the reports task is the caller's to start).
    pub(crate) daily_reports: bool,
}

/// Starts alerting on `events` when configured: the dispatcher, and the scan for hanging
/// requests (every [`Hanging::scan_interval`] of `alerting_threshold`), are queued in `tasks`.
pub(crate) fn start(
    config: &Config,
    events: &Events,
    tasks: &Background,
) -> Result<Started, BuildError> {
    let Some(settings) = settings(config) else {
        return Ok(Started::default());
    };
    let hanging = settings
        .sends(AlertType::LlmRequestsHanging)
        .then(|| Hanging::new(llmgate_router::DEFAULT_SLOTS));
    if let Some(h) = &hanging {
        let after = settings.slow_threshold;
        tasks.add(Hanging::watch(
            Arc::downgrade(h),
            events.clone(),
            after,
            Hanging::scan_interval(after),
        ));
    }
    let daily_reports = settings.sends(AlertType::DailyReports);
    let (alerting, mut dispatcher) = Alerting::new(settings)
        .map_err(|e| BuildError::Alerting(format!("general_settings.alerting: {e}")))?;
    // With Redis, one instance sends each alert (see `alert_dedup.rs`).
    if let Some(url) = crate::build::ratelimit::redis_url(config) {
        let store = crate::alert_dedup::RedisDedup::new(&url)
            .map_err(|e| BuildError::Alerting(format!("router_settings.redis_*: {e}")))?;
        let prefix = config
            .general_settings
            .llmgate_rate_limit_redis_prefix
            .as_deref()
            .unwrap_or("llmgate:");
        dispatcher = dispatcher.with_shared_dedup(store, prefix);
    }
    if let Some(sub) = events.subscribe() {
        tasks.add(dispatcher.run(sub));
    }
    Ok(Started {
        alerting: Some(alerting),
        hanging,
        daily_reports,
    })
}

/// What the backend watcher looks at.
pub(crate) struct Backends {
    /// The key store, when it is a database.
    pub(crate) keys: Option<Arc<dyn KeyStore>>,
    /// The rate limiter's store, when it is Redis.
    pub(crate) redis: Option<Arc<dyn LimiterStore>>,
    pub(crate) spend: SpendQueue,
}

/// One backend's last state, and the event that changes it.
#[derive(Default)]
struct Watched {
    down: bool,
}

impl Watched {
    fn saw(&mut self, events: &Events, backend: Backend, result: Result<(), String>) {
        match result {
            Err(error) if !self.down => {
                self.down = true;
                events.emit(|| Event::BackendDown { backend, error });
            }
            Ok(()) if self.down => {
                self.down = false;
                events.emit(|| Event::BackendUp { backend });
            }
            _ => {}
        }
    }
}

async fn probe<E: std::fmt::Display>(
    ping: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(crate::readiness::PROBE_TIMEOUT, ping).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within a second".into()),
    }
}

/// Tells `events` when a backend starts failing and when it answers again, looking every
/// [`BACKEND_CHECK_INTERVAL`]: the spend writer (its last write failed, or its queue is full), a
/// ping of the key database and of Redis. Runs until the runtime stops.
pub(crate) async fn watch_backends(events: Events, b: Backends) {
    let (mut spend, mut db, mut redis) =
        (Watched::default(), Watched::default(), Watched::default());
    let mut tick = tokio::time::interval(BACKEND_CHECK_INTERVAL);
    loop {
        tick.tick().await;
        let status = b.spend.status();
        let writer = match (status.failing, status.full) {
            (Some(f), _) => Err(f.error),
            (None, true) => Err(format!(
                "the spend queue is full ({} records unwritten)",
                status.unwritten
            )),
            (None, false) => Ok(()),
        };
        spend.saw(&events, Backend::SpendWriter, writer);
        if let Some(keys) = &b.keys {
            db.saw(&events, Backend::Database, probe(keys.ping()).await);
        }
        if let Some(store) = &b.redis {
            redis.saw(&events, Backend::Redis, probe(store.ping()).await);
        }
    }
}

/// The alert counts' view for `/metrics` and `GET /alerting/recent`; with alerting on, the
/// backend watcher (the key database, the rate limiter's Redis, the spend writer) is added to
/// `tasks`.
pub(crate) fn view(
    alerting: Option<Alerting>,
    events: &Events,
    tasks: &Background,
    keys: &Option<llmgate_auth::Keys>,
    ratelimit: &llmgate_ratelimit::RateLimitLayer,
    meter: &llmgate_metering::Meter,
) -> Arc<AlertView> {
    if alerting.is_some() {
        let limiter = ratelimit.store();
        let backends = Backends {
            keys: keys
                .as_ref()
                .map(|k| k.store().clone())
                .filter(|s| s.backend() != "memory"),
            redis: Some(limiter.clone()).filter(|s| s.backend() == "redis"),
            spend: meter.queue().clone(),
        };
        tasks.add(watch_backends(events.clone(), backends));
    }
    Arc::new(AlertView::new(alerting, events.clone()))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AlertLabels {
    alert_type: &'static str,
    channel: &'static str,
    result: &'static str,
}

/// `llmgate_alerts_total{alert_type,channel,result}` and `llmgate_events_dropped_total`,
/// caught up with the alerting's counts when scraped.
pub(crate) struct AlertView {
    alerting: Option<Alerting>,
    events: Events,
    registry: prometheus_client::registry::Registry,
    alerts: prometheus_client::metrics::family::Family<
        AlertLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    dropped: prometheus_client::metrics::counter::Counter,
    shared_errors: prometheus_client::metrics::counter::Counter,
}

impl AlertView {
    pub(crate) fn new(alerting: Option<Alerting>, events: Events) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let alerts = prometheus_client::metrics::family::Family::default();
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let shared_errors = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "llmgate_alerts_shared_dedup_errors",
            "Alerts whose dedup across instances (Redis) failed: sent anyway",
            shared_errors.clone(),
        );
        registry.register(
            "llmgate_alerts",
            "Alerts by type and channel: sent, failed after retries, deduplicated, or dropped (rate limit, full queue)",
            alerts.clone(),
        );
        registry.register(
            "llmgate_events_dropped",
            "Events a subscriber of the events bus lost by falling behind",
            dropped.clone(),
        );
        AlertView {
            alerting,
            events,
            registry,
            alerts,
            dropped,
            shared_errors,
        }
    }

    /// The alerting, when on (for `GET /alerting/recent`).
    pub(crate) fn alerting(&self) -> Option<&Alerting> {
        self.alerting.as_ref()
    }

    /// Appends these metrics to `out`, an OpenMetrics text that ends with `# EOF`.
    pub(crate) fn render_into(&self, out: &mut String) {
        if let Some(a) = &self.alerting {
            for (t, c, o, n) in a.counts() {
                let counter = self.alerts.get_or_create(&AlertLabels {
                    alert_type: t.as_str(),
                    channel: c.as_str(),
                    result: o.as_str(),
                });
                counter.inc_by(n.saturating_sub(counter.get()));
            }
            self.shared_errors
                .inc_by(a.shared_errors().saturating_sub(self.shared_errors.get()));
        }
        self.dropped
            .inc_by(self.events.dropped().saturating_sub(self.dropped.get()));
        let had_eof = out.ends_with("# EOF\n");
        if had_eof {
            out.truncate(out.len() - "# EOF\n".len());
        }
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
        if had_eof {
            out.push_str("# EOF\n");
        }
    }
}

/// `GET /alerting/recent` behind the master key: `{"enabled", "alerts": [...], "counts":
/// [...]}`, the most recent alerts oldest first and what became of every alert since start
/// (see `docs/alerting.md`).
pub(crate) fn recent_route(config: &Config, view: &Arc<AlertView>) -> crate::routes::Stack {
    use tower::ServiceBuilder;
    let view = view.clone();
    let svc = ServiceBuilder::new()
        .layer(llmgate_auth::AuthLayer::new(config.master_key()))
        .service(tower::service_fn(
            move |_req: http::Request<crate::ReqBody>| {
                let body = match view.alerting() {
                    Some(a) => serde_json::json!({
                        "enabled": true,
                        "alerts": a.recent(),
                        "counts": a.counts().into_iter().map(|(t, c, o, n)| serde_json::json!({
                            "alert_type": t.as_str(),
                            "channel": c.as_str(),
                            "result": o.as_str(),
                            "count": n,
                        })).collect::<Vec<_>>(),
                    }),
                    None => serde_json::json!({"enabled": false, "alerts": [], "counts": []}),
                };
                async move {
                    Ok::<_, llmgate_core::BoxError>(crate::routes::json(bytes::Bytes::from(
                        body.to_string(),
                    )))
                }
            },
        ));
    tower::util::BoxCloneSyncService::new(svc)
}
