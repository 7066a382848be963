use std::collections::HashMap;
use std::sync::Arc;

use llmgate_core::DeploymentSpec;

/// The name of LiteLLM's wildcard group: requests for models no other group or alias names go
/// to it. Hidden from `/v1/models`.
pub const CATCH_ALL: &str = "*";

/// The model groups, their deployments and aliases. Immutable once built; share it in an `Arc`.
#[derive(Debug, Default)]
pub struct ModelTable {
    groups: HashMap<Arc<str>, Group>,
    /// Group names in config order, for `/v1/models`.
    order: Vec<Arc<str>>,
    aliases: HashMap<String, Alias>,
}

#[derive(Debug)]
struct Group {
    deployments: Vec<Arc<DeploymentSpec>>,
    /// Running totals of the weights, for a weighted pick by binary search.
    cumulative: Vec<f64>,
}

#[derive(Debug)]
struct Alias {
    target: Arc<str>,
    hidden: bool,
}

impl ModelTable {
    /// Builds the table from deployments (grouped by `model_name`, in order) and aliases
    /// `(alias, target group, hidden)`. Aliases whose target is not a group are ignored (config
    /// validation reports them before this point).
    pub fn new(
        deployments: impl IntoIterator<Item = Arc<DeploymentSpec>>,
        aliases: impl IntoIterator<Item = (String, String, bool)>,
    ) -> Self {
        let mut table = ModelTable::default();
        for d in deployments {
            let name = d.model_name.clone();
            let group = table.groups.entry(name.clone()).or_insert_with(|| {
                table.order.push(name);
                Group {
                    deployments: Vec::new(),
                    cumulative: Vec::new(),
                }
            });
            group.deployments.push(d);
        }
        for group in table.groups.values_mut() {
            group.cumulative = cumulative_weights(&group.deployments);
        }
        for (alias, target, hidden) in aliases {
            if let Some((name, _)) = table.groups.get_key_value(target.as_str()) {
                let target = name.clone();
                table.aliases.insert(alias, Alias { target, hidden });
            }
        }
        table
    }

    /// The group a requested model name resolves to: alias (LiteLLM checks aliases first, so
    /// an alias may hide a group of the same name), exact group name, then the catch-all.
    pub fn resolve(&self, model: &str) -> Option<&Arc<str>> {
        if let Some(alias) = self.aliases.get(model) {
            return Some(&alias.target);
        }
        if let Some((name, _)) = self.groups.get_key_value(model) {
            return Some(name);
        }
        self.groups.get_key_value(CATCH_ALL).map(|(name, _)| name)
    }

    /// The deployments of a group.
    pub fn deployments(&self, group: &str) -> &[Arc<DeploymentSpec>] {
        self.groups
            .get(group)
            .map(|g| g.deployments.as_slice())
            .unwrap_or_default()
    }

    /// Picks a deployment of `group` by simple-shuffle.
    pub fn pick(&self, group: &str) -> Option<&Arc<DeploymentSpec>> {
        let g = self.groups.get(group)?;
        match g.deployments.len() {
            0 => None,
            1 => g.deployments.first(),
            n => {
                let total = g.cumulative.last().copied().unwrap_or(0.0);
                if total <= 0.0 {
                    return g.deployments.get(fastrand::usize(..n));
                }
                let x = fastrand::f64() * total;
                let i = g.cumulative.partition_point(|c| *c <= x).min(n - 1);
                g.deployments.get(i)
            }
        }
    }

    /// The names clients may send, for `/v1/models`: groups in config order, then visible
    /// aliases; the catch-all is left out. Each comes with the provider of its first deployment.
    pub fn visible_models(&self) -> Vec<(String, String)> {
        let owner = |group: &str| {
            self.deployments(group)
                .first()
                .map(|d| d.provider.as_str().to_owned())
                .unwrap_or_default()
        };
        let mut out: Vec<(String, String)> = self
            .order
            .iter()
            .filter(|n| &***n != CATCH_ALL)
            .map(|n| (n.to_string(), owner(n)))
            .collect();
        let mut aliases: Vec<_> = self.aliases.iter().filter(|(_, a)| !a.hidden).collect();
        aliases.sort_by(|a, b| a.0.cmp(b.0));
        out.extend(
            aliases
                .into_iter()
                .map(|(name, a)| (name.clone(), owner(&a.target))),
        );
        out
    }
}

/// LiteLLM's simple-shuffle weights: `weight` if any deployment sets one, else `rpm`, else
/// `tpm`; all zero means uniform.
fn cumulative_weights(ds: &[Arc<DeploymentSpec>]) -> Vec<f64> {
    let by = |f: &dyn Fn(&DeploymentSpec) -> Option<f64>| {
        ds.iter().any(|d| f(d).is_some()).then(|| {
            ds.iter()
                .map(|d| f(d).unwrap_or(0.0).max(0.0))
                .collect::<Vec<_>>()
        })
    };
    let weights = by(&|d| d.weight)
        .or_else(|| by(&|d| d.rpm.map(|r| r as f64)))
        .or_else(|| by(&|d| d.tpm.map(|t| t as f64)))
        .unwrap_or_else(|| vec![0.0; ds.len()]);
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    fn d(id: &str, group: &str, weight: Option<f64>) -> Arc<DeploymentSpec> {
        let mut s = DeploymentSpec::new(id, group, ProviderKind::OpenAi, "m");
        s.weight = weight;
        Arc::new(s)
    }

    #[test]
    fn resolves_exact_alias_then_catch_all() {
        let t = ModelTable::new(
            [d("a", "gpt", None), d("b", "*", None)],
            [
                ("g".into(), "gpt".into(), true),
                ("bad".into(), "nope".into(), false),
            ],
        );
        assert_eq!(t.resolve("gpt").map(|s| &**s), Some("gpt"));
        assert_eq!(t.resolve("g").map(|s| &**s), Some("gpt"));
        assert_eq!(t.resolve("anything").map(|s| &**s), Some("*"));
        assert_eq!(t.visible_models(), vec![("gpt".into(), "openai".into())]);
        let t = ModelTable::new([d("a", "gpt", None)], []);
        assert!(t.resolve("other").is_none());
        // An alias named like a group hides the group, as in LiteLLM.
        let t = ModelTable::new(
            [d("a", "gpt", None), d("b", "mini", None)],
            [("gpt".into(), "mini".into(), false)],
        );
        assert_eq!(t.resolve("gpt").map(|s| &**s), Some("mini"));
    }

    #[test]
    fn weights_split_traffic() {
        let t = ModelTable::new([d("a", "g", Some(9.0)), d("b", "g", Some(1.0))], []);
        fastrand::seed(7);
        let a = (0..10_000)
            .filter(|_| &*t.pick("g").unwrap().id == "a")
            .count();
        assert!((8_800..9_200).contains(&a), "{a}");
    }

    #[test]
    fn zero_weight_is_never_picked_and_unweighted_is_uniform() {
        let t = ModelTable::new([d("a", "g", Some(0.0)), d("b", "g", Some(1.0))], []);
        assert!((0..1000).all(|_| &*t.pick("g").unwrap().id == "b"));
        let t = ModelTable::new([d("a", "g", None), d("b", "g", None)], []);
        let a = (0..4000)
            .filter(|_| &*t.pick("g").unwrap().id == "a")
            .count();
        assert!((1_700..2_300).contains(&a), "{a}");
    }
}
