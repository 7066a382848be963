//! Carrying the router's live state across a config reload: [`ModelTable::carry_state_from`].
//!
//! A reload builds a new table from the new config. Deployments that did not change keep their
//! state (cooldowns, failure counts, latencies, requests in flight, rpm/tpm/rpd usage): the new
//! table shares the old one's [`DeploymentState`](crate::DeploymentState) for them, so requests
//! still running on the old table and new requests on the new one count in the same place. A
//! deployment that is new or changed starts fresh; one that was removed is dropped with the old
//! table once its last request ends.

use std::collections::HashMap;

use llmgate_core::DeploymentSpec;

use crate::table::{Member, ModelTable};

impl ModelTable {
    /// Whether `a` and `b` are the same deployment for the router's state: the same id, group,
    /// provider, upstream model and `api_base`, and the same `rpm`, `tpm` and `rpd` limits.
    /// Anything else (keys, timeouts, headers, prices, weights) may change and keep the state.
    pub fn same_deployment(a: &DeploymentSpec, b: &DeploymentSpec) -> bool {
        a.id == b.id
            && a.model_name == b.model_name
            && a.provider == b.provider
            && a.model == b.model
            && a.api_base == b.api_base
            && a.rpm == b.rpm
            && a.tpm == b.tpm
            && a.rpd == b.rpd
    }

    /// Takes over `old`'s live state for every deployment that is the
    /// [same](ModelTable::same_deployment) in both, and `old`'s clock (the state's times are
    /// counted from it). Call it on a table just built for a reload, before it serves. Returns
    /// how many deployments kept their state.
    pub fn carry_state_from(&mut self, old: &ModelTable) -> usize {
        self.clock = old.clock;
        let before: HashMap<&str, &Member> = old
            .groups
            .values()
            .flat_map(|g| &g.members)
            .map(|m| (&*m.spec.id, m))
            .collect();
        let mut kept = 0;
        for member in self.groups.values_mut().flat_map(|g| g.members.iter_mut()) {
            if let Some(o) = before.get(&*member.spec.id) {
                if ModelTable::same_deployment(&o.spec, &member.spec) {
                    member.state = o.state.clone();
                    kept += 1;
                }
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::tests::d;
    use crate::ModelTable;

    fn table(specs: Vec<llmgate_core::DeploymentSpec>) -> ModelTable {
        ModelTable::new(specs.into_iter().map(Arc::new), [])
    }

    fn cooling(t: &ModelTable, id: &str) -> bool {
        t.cooldowns()
            .iter()
            .any(|(s, r)| &*s.id == id && r.is_some())
    }

    #[tokio::test]
    async fn unchanged_deployments_keep_their_state_changed_and_new_ones_start_fresh() {
        let old = table(vec![d("a", "g"), d("b", "g"), d("gone", "h")]);
        for id in ["a", "b", "gone"] {
            old.mark_unhealthy(id, Duration::from_secs(60));
        }
        let mut changed = d("b", "g");
        changed.rpm = Some(10);
        let mut new = table(vec![d("a", "g"), changed, d("c", "g")]);
        assert_eq!(new.carry_state_from(&old), 1);
        assert!(
            cooling(&new, "a"),
            "an unchanged deployment keeps its cooldown"
        );
        assert!(!cooling(&new, "b"), "a changed deployment starts fresh");
        assert!(!cooling(&new, "c"), "a new deployment starts fresh");
        // The state is shared: what the old table sees, the new one sees.
        old.mark_healthy("a");
        assert!(!cooling(&new, "a"));
        new.mark_unhealthy("a", Duration::from_secs(60));
        assert!(cooling(&old, "a"));
    }

    #[test]
    fn identity_is_id_group_provider_model_base_and_limits() {
        let a = d("x", "g");
        let mut b = a.clone();
        b.api_key = Some(llmgate_core::Secret::new("other"));
        b.timeout = Some(Duration::from_secs(3));
        assert!(ModelTable::same_deployment(&a, &b));
        b.api_base = Some(Arc::from("http://elsewhere"));
        assert!(!ModelTable::same_deployment(&a, &b));
        let mut c = a.clone();
        c.tpm = Some(1);
        assert!(!ModelTable::same_deployment(&a, &c));
    }
}
