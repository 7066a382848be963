//! Prices: [`PriceTable`] finds a deployment's [`ModelPrice`] in LiteLLM's
//! `model_prices_and_context_window.json` format.
//!
//! Where a price comes from, first match wins:
//!
//! 1. the deployment's own `model_info` prices ([`llmgate_core::ModelInfo`]): when it sets
//!    `input_cost_per_token` or `output_cost_per_token`, those are the price, alone (the table
//!    is not consulted; cache and reasoning tokens are charged at its input and output price
//!    unless it sets their prices too);
//! 2. the table entry for `model_info.base_model`;
//! 3. the table entry for `<provider>/<model>` (LiteLLM's key for most providers), then for
//!    `<model>` alone (OpenAI's, Anthropic's and Bedrock's ids).
//!
//! The table is the bundled copy of LiteLLM's (`data/model_prices.json`), with the entries of an
//! override file laid over it ([`PriceTable::with_overrides`]: an entry there replaces the
//! bundled entry of the same name). The bundled table is never kept whole in memory: the
//! entries the configured deployments can use are read out of it once, at start-up
//! ([`PriceTable::warm`]), and a deployment added later is looked up in it on its first use.
//!
//! A deployment without a price is metered with an unknown cost, and warned about once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use llmgate_core::DeploymentSpec;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The bundled price table: LiteLLM's, trimmed (see `data/NOTICE.md`).
const BUNDLED: &str = include_str!("../data/model_prices.json");

/// What one model costs, USD per token; its context limits when known.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ModelPrice {
    /// `input_cost_per_token`.
    #[serde(deserialize_with = "number")]
    pub input_cost_per_token: Option<f64>,
    /// `output_cost_per_token`.
    #[serde(deserialize_with = "number")]
    pub output_cost_per_token: Option<f64>,
    /// `cache_read_input_token_cost`: input tokens read from the prompt cache (else the input
    /// price).
    #[serde(deserialize_with = "number")]
    pub cache_read_input_token_cost: Option<f64>,
    /// `cache_creation_input_token_cost`: input tokens written to the prompt cache (else the
    /// input price).
    #[serde(deserialize_with = "number")]
    pub cache_creation_input_token_cost: Option<f64>,
    /// `output_cost_per_reasoning_token` (else the output price).
    #[serde(deserialize_with = "number")]
    pub output_cost_per_reasoning_token: Option<f64>,
    /// `max_input_tokens`.
    #[serde(deserialize_with = "number")]
    pub max_input_tokens: Option<f64>,
    /// `max_output_tokens` (else `max_tokens`).
    #[serde(deserialize_with = "number")]
    pub max_output_tokens: Option<f64>,
}

impl ModelPrice {
    /// Whether it prices anything.
    fn is_priced(&self) -> bool {
        self.input_cost_per_token.is_some() || self.output_cost_per_token.is_some()
    }
}

fn price(n: f64) -> Option<f64> {
    Some(n).filter(|n| n.is_finite() && *n >= 0.0)
}

/// A number, or nothing for anything else (LiteLLM's file has a few `null`s and strings).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a price")
        }
        fn visit_f64<E>(self, n: f64) -> Result<Option<f64>, E> {
            Ok(price(n))
        }
        fn visit_u64<E>(self, n: u64) -> Result<Option<f64>, E> {
            Ok(Some(n as f64))
        }
        fn visit_i64<E>(self, n: i64) -> Result<Option<f64>, E> {
            Ok(price(n as f64))
        }
        fn visit_str<E>(self, s: &str) -> Result<Option<f64>, E> {
            Ok(s.trim().parse().ok().and_then(price))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<f64>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<f64>, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<f64>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Why an override file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceFileError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a JSON object of model entries.
    #[error("{path} is not a model price map (a JSON object of model entries): {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

type Entries = HashMap<String, ModelPrice>;

/// Each known deployment's price, by deployment id.
type Resolved = HashMap<Arc<str>, Option<Arc<ModelPrice>>, foldhash::fast::RandomState>;

/// Parses a price map, keeping the entries `keep` accepts. Entries that are not objects are
/// skipped, and so is `sample_spec`; the others are skipped over without being built.
fn parse_where(json: &str, keep: impl Fn(&str) -> bool) -> Result<Entries, serde_json::Error> {
    struct Map<F>(F);
    impl<'de, F: Fn(&str) -> bool> Visitor<'de> for Map<F> {
        type Value = Entries;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of model entries")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
            let mut out = Entries::new();
            while let Some(name) = map.next_key::<String>()? {
                if name != "sample_spec" && (self.0)(&name) {
                    if let Entry(Some(price)) = map.next_value()? {
                        out.insert(name, price);
                    }
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let entries = (&mut de).deserialize_map(Map(keep))?;
    de.end()?;
    Ok(entries)
}

/// Parses a whole price map.
fn parse(json: &str) -> Result<Entries, serde_json::Error> {
    parse_where(json, |_| true)
}

/// An entry: a price when it is an object.
struct Entry(Option<ModelPrice>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                ModelPrice::deserialize(MapAccessDeserializer::new(map)).map(|p| Entry(Some(p)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_unit<E>(self) -> Result<Entry, E> {
                Ok(Entry(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The table names a deployment's price may be found under, in the order they are tried.
fn names(dep: &DeploymentSpec) -> impl Iterator<Item = String> + '_ {
    dep.model_info
        .base_model
        .iter()
        .map(|m| m.to_string())
        .chain([
            format!("{}/{}", dep.provider, dep.model),
            dep.model.to_string(),
        ])
}

/// The price table. Cheap to share behind an `Arc`; lookups take no lock.
///
/// The bundled table is never held whole: the entries the known deployments can use are read
/// out of it once ([`PriceTable::warm`], or the first lookup), and a deployment the table was
/// not built with is looked up in it on its first use (then remembered).
#[derive(Debug, Default)]
pub struct PriceTable {
    overrides: Entries,
    bundled: bool,
    /// Deployments known at build time, resolved once on first use.
    known: Vec<Arc<DeploymentSpec>>,
    /// foldhash, as the metrics' maps: it is read on every request.
    resolved: OnceLock<Resolved>,
    /// For deployments that were not known at build time: the table's entries for the names
    /// they are looked up under, read out of the bundled table once per set of names.
    others: Mutex<HashMap<Vec<String>, Arc<Entries>>>,
    /// Models already warned about (touched at the first resolution and for a
    /// deployment with no price that the table was not built with).
    warned: Mutex<HashSet<String>>,
}

impl PriceTable {
    /// LiteLLM's bundled table (read on first use).
    pub fn bundled() -> Self {
        PriceTable {
            bundled: true,
            ..PriceTable::default()
        }
    }

    /// A table of only these entries (tests, and users with their own complete price list).
    pub fn from_entries(entries: impl IntoIterator<Item = (String, ModelPrice)>) -> Self {
        PriceTable {
            overrides: entries.into_iter().collect(),
            ..PriceTable::default()
        }
    }

    /// Lays a price file (LiteLLM's format) over the table: its entries replace same-named ones.
    /// Read and parsed now, so a bad file fails at start-up.
    pub fn with_overrides(mut self, path: &std::path::Path) -> Result<Self, PriceFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PriceFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let entries = parse(&text).map_err(|source| PriceFileError::Parse {
            path: shown,
            source,
        })?;
        self.overrides.extend(entries);
        Ok(self)
    }

    /// Resolves these deployments once, on first use, so the request path only looks up their
    /// id (and each unpriced one is warned about once).
    #[must_use]
    pub fn with_deployments(
        mut self,
        deployments: impl IntoIterator<Item = Arc<DeploymentSpec>>,
    ) -> Self {
        self.known = deployments.into_iter().collect();
        self
    }

    /// The entries named `names`: the overrides', else the bundled table's (one pass over it).
    fn entries<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Entries {
        let mut found = Entries::new();
        let mut wanted = HashSet::new();
        for name in names {
            match self.overrides.get(name) {
                Some(p) => {
                    found.insert(name.to_owned(), p.clone());
                }
                None => {
                    wanted.insert(name);
                }
            }
        }
        if self.bundled && !wanted.is_empty() {
            // The bundled file is tested to parse; an empty result would only make the cost
            // unknown (and warned about), never wrong.
            found.extend(parse_where(BUNDLED, |n| wanted.contains(n)).unwrap_or_default());
        }
        found
    }

    /// Reads the known deployments' prices out of the table now (instead of on the first
    /// request), warning about the ones without a price.
    pub fn warm(&self) {
        self.resolved();
    }

    fn resolved(&self) -> &Resolved {
        self.resolved.get_or_init(|| {
            let names: Vec<String> = self.known.iter().flat_map(|d| names(d)).collect();
            let entries = self.entries(names.iter().map(String::as_str));
            self.known
                .iter()
                .map(|d| {
                    let p = lookup(d, &entries);
                    if p.is_none() {
                        self.warn_once(d);
                    }
                    (d.id.clone(), p.map(Arc::new))
                })
                .collect()
        })
    }

    /// The entry named `model`, if the table has one (a pass over the bundled table: for
    /// tests and tools, not the request path).
    pub fn get(&self, model: &str) -> Option<ModelPrice> {
        self.entries([model])
            .remove(model)
            .filter(ModelPrice::is_priced)
    }

    /// The deployment's price (see the module docs for the order), or `None`, warned about
    /// once per model.
    pub fn price(&self, dep: &DeploymentSpec) -> Option<Arc<ModelPrice>> {
        if let Some(p) = self.resolved().get(&dep.id) {
            return p.clone();
        }
        let names: Vec<String> = names(dep).collect();
        let cached = self.others.lock().ok().and_then(|o| o.get(&names).cloned());
        let entries = match cached {
            Some(entries) => entries,
            None => {
                let entries = Arc::new(self.entries(names.iter().map(String::as_str)));
                if let Ok(mut o) = self.others.lock() {
                    o.insert(names, entries.clone());
                }
                entries
            }
        };
        let p = lookup(dep, &entries).map(Arc::new);
        if p.is_none() {
            self.warn_once(dep);
        }
        p
    }

    /// Warns that `dep` has no price, the first time its model is seen without one (two
    /// deployments of one model, or one known at start-up and one added later, warn once).
    fn warn_once(&self, dep: &DeploymentSpec) {
        let name = format!("{}/{}", dep.provider, dep.model);
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(name))
            .unwrap_or(false);
        if first {
            warn_unpriced(dep);
        }
    }
}

/// `dep`'s price from its own `model_info`, else from `entries` (holding at least the
/// entries of its [`names`]).
fn lookup(dep: &DeploymentSpec, entries: &Entries) -> Option<ModelPrice> {
    let info = &dep.model_info;
    if info.input_cost_per_token.is_some() || info.output_cost_per_token.is_some() {
        return Some(ModelPrice {
            input_cost_per_token: info.input_cost_per_token,
            output_cost_per_token: info.output_cost_per_token,
            cache_read_input_token_cost: info.cache_read_input_token_cost,
            cache_creation_input_token_cost: info.cache_creation_input_token_cost,
            output_cost_per_reasoning_token: info.output_cost_per_reasoning_token,
            max_input_tokens: info.max_input_tokens.map(|n| n as f64),
            max_output_tokens: info.max_tokens.map(|n| n as f64),
        });
    }
    let mut found = names(dep)
        .find_map(|n| entries.get(&n).filter(|p| p.is_priced()))
        .cloned()?;
    // Cache and reasoning prices set on the deployment still apply over the table's.
    let or = |own: Option<f64>, table: Option<f64>| own.or(table);
    found.cache_read_input_token_cost = or(
        info.cache_read_input_token_cost,
        found.cache_read_input_token_cost,
    );
    found.cache_creation_input_token_cost = or(
        info.cache_creation_input_token_cost,
        found.cache_creation_input_token_cost,
    );
    found.output_cost_per_reasoning_token = or(
        info.output_cost_per_reasoning_token,
        found.output_cost_per_reasoning_token,
    );
    Some(found)
}

fn warn_unpriced(dep: &DeploymentSpec) {
    tracing::warn!(
        deployment = %dep.id,
        model = %format_args!("{}/{}", dep.provider, dep.model),
        "no price for this model: its requests are recorded with an unknown cost; set \
         model_info.input_cost_per_token and output_cost_per_token (or base_model) to price it",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    #[test]
    fn bundled_table_parses_and_finds_models_by_provider_and_id() {
        let t = PriceTable::bundled();
        let all = parse(BUNDLED).unwrap();
        assert!(all.len() > 1000, "{}", all.len());
        let gpt = t.get("gpt-4o").unwrap();
        assert!(gpt.input_cost_per_token.unwrap() > 0.0);
        assert!(gpt.cache_read_input_token_cost.is_some());

        let dep = |p, m: &str| DeploymentSpec::new("d", "g", p, m);
        assert!(t.price(&dep(ProviderKind::OpenAi, "gpt-4o")).is_some());
        assert!(t
            .price(&dep(ProviderKind::Anthropic, "claude-sonnet-4-5"))
            .unwrap()
            .cache_creation_input_token_cost
            .is_some());
        assert!(t
            .price(&dep(ProviderKind::Gemini, "gemini-2.5-flash"))
            .is_some());
        // Vertex AI: Claude under `vertex_ai/<id>@<version>`, Gemini and embeddings by id.
        for m in [
            "claude-sonnet-4-5@20250929",
            "gemini-2.5-flash",
            "text-embedding-005",
        ] {
            assert!(t.price(&dep(ProviderKind::VertexAi, m)).is_some(), "{m}");
        }
        assert_eq!(
            t.price(&dep(ProviderKind::Ollama, "llama3"))
                .unwrap()
                .input_cost_per_token,
            Some(0.0)
        );
        assert!(t
            .price(&dep(ProviderKind::OpenAi, "no-such-model"))
            .is_none());
    }

    #[test]
    fn deployment_prices_win_and_base_model_is_used() {
        let t = PriceTable::from_entries([(
            "real-model".to_owned(),
            ModelPrice {
                input_cost_per_token: Some(1.0),
                output_cost_per_token: Some(2.0),
                cache_read_input_token_cost: Some(0.5),
                ..ModelPrice::default()
            },
        )]);
        let mut d = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "alias-id");
        assert!(t.price(&d).is_none());
        d.model_info.base_model = Some("real-model".into());
        d.model_info.output_cost_per_reasoning_token = Some(9.0);
        let p = t.price(&d).unwrap();
        assert_eq!(
            (p.input_cost_per_token, p.output_cost_per_reasoning_token),
            (Some(1.0), Some(9.0))
        );
        d.model_info.input_cost_per_token = Some(3.0);
        let p = t.price(&d).unwrap();
        assert_eq!(
            (
                p.input_cost_per_token,
                p.output_cost_per_token,
                p.cache_read_input_token_cost
            ),
            (Some(3.0), None, None)
        );
    }

    #[test]
    fn override_file_replaces_entries_and_bad_files_fail() {
        let dir = std::env::temp_dir().join(format!("llmgate-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            r#"{"sample_spec": {"mode": "x"}, "gpt-4o": {"input_cost_per_token": "0.5",
                "output_cost_per_token": 1}, "mine": {"input_cost_per_token": null}}"#,
        )
        .unwrap();
        let t = PriceTable::bundled().with_overrides(&good).unwrap();
        assert_eq!(t.get("gpt-4o").unwrap().input_cost_per_token, Some(0.5));
        assert!(t.get("mine").is_none() && t.get("gpt-4o-mini").is_some());
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "[1, 2]").unwrap();
        let e = PriceTable::bundled().with_overrides(&bad).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        assert!(PriceTable::bundled()
            .with_overrides(&dir.join("missing.json"))
            .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
