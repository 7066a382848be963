//! [`DeploymentUsage`]: a deployment's counters as of now, for dashboards (the admin UI's
//! Models page), never for the request path.

use std::sync::atomic::Ordering::Relaxed;

use crate::table::ModelTable;

/// A minute, in microseconds.
const MINUTE_US: u64 = 60_000_000;

/// One deployment's usage and latency as this instance counts them now.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DeploymentUsage {
    /// Requests in the last 60 s, counted against `rpm` (0 without an `rpm`).
    pub rpm_used: u64,
    /// Tokens in the last 60 s.
    pub tpm_used: u64,
    /// Requests today (UTC), counted against `rpd` (0 without an `rpd`).
    pub rpd_used: u64,
    /// The recent latency of complete answers (a moving average), in milliseconds.
    pub latency_ms: Option<f64>,
    /// The recent time to a stream's first byte (a moving average), in milliseconds.
    pub ttft_ms: Option<f64>,
}

impl ModelTable {
    /// Each deployment's [`DeploymentUsage`], in the order of [`ModelTable::all`]. With a
    /// shared backend, the rpm/tpm/rpd counts are this instance's view.
    pub fn usage(&self) -> Vec<DeploymentUsage> {
        let now_ms = self.clock.now_ms();
        let now_us = self.clock.now_us();
        let day = self.clock.day(now_ms);
        let ms = |us: u64| (us > 0).then(|| us as f64 / 1000.0);
        self.all()
            .into_iter()
            .map(|(_, state)| DeploymentUsage {
                rpm_used: state.usage.requests(now_us, MINUTE_US),
                tpm_used: state.usage.tokens(now_us),
                rpd_used: state.usage.daily_count(day),
                latency_ms: ms(state.latency_us.load(Relaxed)),
                ttft_ms: ms(state.ttft_us.load(Relaxed)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use llmgate_core::{DeploymentSpec, ProviderKind};

    use crate::table::ModelTable;

    #[test]
    fn usage_counts_requests_tokens_and_latency() {
        let mut spec = DeploymentSpec::new("a-1", "a", ProviderKind::OpenAi, "m");
        spec.rpm = Some(10);
        spec.rpd = Some(100);
        let table = ModelTable::new(vec![Arc::new(spec)], vec![]);
        assert_eq!(table.usage()[0].rpm_used, 0);
        let (_, state) = table.all().remove(0);
        let now_us = table.clock.now_us();
        let day = table.clock.day(table.clock.now_ms());
        state
            .usage
            .take_request(Some(10), Some(100), now_us, day)
            .unwrap();
        state.usage.add_tokens(now_us, 42);
        state.record_latency(Duration::from_millis(250), table.clock.now_ms());
        let u = table.usage()[0];
        assert_eq!((u.rpm_used, u.tpm_used, u.rpd_used), (1, 42, 1));
        assert_eq!(u.latency_ms, Some(250.0));
        assert_eq!(u.ttft_ms, None);
    }
}
