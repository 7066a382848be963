//! Typed reads from the value tree: each read resolves environment references, checks the
//! type, and on a mismatch records a problem at the value's path and returns `None`, so the
//! walk goes on and every problem is reported in one run.
//!
//! A value that came from an environment variable is always text, so numbers and booleans are
//! also accepted as strings that parse (`redis_port: os.environ/REDIS_PORT`).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use llmgate_core::{seconds, Secret};
use serde_json::Value;

use crate::env::{self, Sources};
use crate::node::Node;
use crate::problems::{index_path, key_path, Report};
use crate::validate::GroupRef;

/// The largest size in MiB a setting accepts (`max_request_size_mb`,
/// `max_size_in_memory_mb`): 1 TiB.
pub(crate) const MAX_MIB: f64 = 1_048_576.0;

/// Everything a walk needs: the environment sources, the report, and what cross-section
/// checks need afterwards.
pub(crate) struct Walk<'a> {
    pub(crate) report: Report,
    pub(crate) env: Sources<'a>,
    /// Every `model_name` written (also of entries that failed to load).
    pub(crate) group_names: BTreeSet<String>,
    /// Model groups named by fallbacks and aliases, with their paths.
    pub(crate) refs: Vec<GroupRef>,
    /// The keys of the table being walked, while a key it does not list is handled (for a
    /// "did you mean").
    pub(crate) known_keys: Vec<&'static str>,
}

impl<'a> Walk<'a> {
    pub(crate) fn new(env: Sources<'a>) -> Self {
        Walk {
            report: Report::default(),
            env,
            group_names: BTreeSet::new(),
            refs: Vec::new(),
            known_keys: Vec::new(),
        }
    }
}

/// PyYAML's YAML 1.1 boolean words, accepted when a boolean arrives as text.
fn parse_bool_text(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

impl Walk<'_> {
    fn type_error(&mut self, path: &str, expected: &str, found: &Node) {
        let hint = if matches!(found, Node::Bool(_)) && expected.contains("string") {
            " (YAML reads a bare yes/no/on/off/y/n as a boolean; quote it)"
        } else {
            ""
        };
        self.report.error(
            path,
            format!("expected {expected}, found {}{hint}", found.kind()),
        );
    }

    /// Resolves environment references in `text`; `None` (with errors recorded) if any is unset.
    pub(crate) fn resolve_text(&mut self, text: &str, path: &str) -> Option<String> {
        let sources = &self.env;
        match env::resolve(text, &|name| sources.lookup(name)) {
            Ok(value) => Some(value),
            Err(missing) => {
                for m in missing {
                    self.report.error(path, m.message());
                }
                None
            }
        }
    }

    /// A mapping's entries. Null is empty; a repeated key keeps its last value (as PyYAML does)
    /// and is warned about; anything else is a type error.
    pub(crate) fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(&'n str, &'n Node)> {
        let items = match node {
            Node::Null => return Vec::new(),
            Node::Map(items) => items,
            other => {
                self.type_error(path, "a mapping", other);
                return Vec::new();
            }
        };
        let mut seen = HashSet::new();
        let mut out: Vec<(&'n str, &'n Node)> = Vec::with_capacity(items.len());
        for (key, value) in items.iter().rev() {
            if seen.insert(key.as_str()) {
                out.push((key.as_str(), value));
            } else {
                self.report.warning(
                    &key_path(path, key),
                    "key given more than once; the last value is used",
                );
            }
        }
        out.reverse();
        out
    }

    /// A sequence's items. Null is empty.
    pub(crate) fn items<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        match node {
            Node::Null => &[],
            Node::Seq(items) => items,
            other => {
                self.type_error(path, "a list", other);
                &[]
            }
        }
    }

    /// A string (numbers are accepted and kept as written; booleans are not).
    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match node {
            Node::Null => None,
            Node::Str(s) => self.resolve_text(s, path),
            Node::Num(n) => Some(n.to_string()),
            other => {
                self.type_error(path, "a string", other);
                None
            }
        }
    }

    /// A string that must not be empty once resolved.
    pub(crate) fn non_empty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.report.error(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A secret: a string whose value never appears in a message.
    pub(crate) fn secret(&mut self, node: &Node, path: &str) -> Option<Secret> {
        self.string(node, path).map(Secret::new)
    }

    /// A boolean (YAML 1.1 spellings, also as text).
    pub(crate) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node {
            Node::Null => None,
            Node::Bool(b) => Some(*b),
            Node::Str(s) => {
                let text = self.resolve_text(s, path)?;
                let parsed = parse_bool_text(&text);
                if parsed.is_none() {
                    self.report
                        .error(path, "expected a boolean (true or false), found a string");
                }
                parsed
            }
            other => {
                self.type_error(path, "a boolean (true or false)", other);
                None
            }
        }
    }

    /// A finite number (integer or float).
    pub(crate) fn number(&mut self, node: &Node, path: &str, expected: &str) -> Option<f64> {
        let value = match node {
            Node::Null => return None,
            Node::Num(n) => n.as_f64(),
            Node::Str(s) => {
                let text = self.resolve_text(s, path)?;
                text.trim().parse::<f64>().ok()
            }
            other => {
                self.type_error(path, expected, other);
                return None;
            }
        };
        match value.filter(|v| v.is_finite()) {
            Some(v) => Some(v),
            None => {
                let found = if matches!(node, Node::Str(_)) {
                    "a string"
                } else {
                    node.kind()
                };
                self.report
                    .error(path, format!("expected {expected}, found {found}"));
                None
            }
        }
    }

    /// A number that is zero or more.
    pub(crate) fn non_negative(&mut self, node: &Node, path: &str) -> Option<f64> {
        let v = self.number(node, path, "a number")?;
        if v < 0.0 {
            self.report.error(path, "must not be negative");
            return None;
        }
        Some(v)
    }

    /// A whole number that is zero or more (`100` and `100.0` both read as 100).
    pub(crate) fn u64(&mut self, node: &Node, path: &str) -> Option<u64> {
        if let Node::Num(n) = node {
            if let Some(v) = n.as_u64() {
                return Some(v);
            }
        }
        let v = self.number(node, path, "a whole number")?;
        if v < 0.0 || v.fract() != 0.0 || v > u64::MAX as f64 {
            self.report
                .error(path, "expected a whole number that is zero or more");
            return None;
        }
        Some(v as u64)
    }

    /// A `u32` (retry counts and the like).
    pub(crate) fn u32(&mut self, node: &Node, path: &str) -> Option<u32> {
        let v = self.u64(node, path)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.report.error(path, "number too large");
                None
            }
        }
    }

    /// A TCP port.
    pub(crate) fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        let v = self.u64(node, path)?;
        match u16::try_from(v) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.report.error(path, "expected a port number (1-65535)");
                None
            }
        }
    }

    /// A positive number of seconds (integer or float), as LiteLLM's `timeout`, at most
    /// [`seconds::MAX_SECONDS`] (100 years).
    pub(crate) fn seconds(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let v = self.number(node, path, "a number of seconds")?;
        if v <= 0.0 {
            self.report
                .error(path, "expected a positive number of seconds");
            return None;
        }
        self.bounded_seconds(v, path)
    }

    /// A number of seconds that may be zero (`cooldown_time: 0`), at most
    /// [`seconds::MAX_SECONDS`].
    pub(crate) fn non_negative_seconds(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let v = self.number(node, path, "a number of seconds")?;
        if v < 0.0 {
            self.report.error(path, "must not be negative");
            return None;
        }
        self.bounded_seconds(v, path)
    }

    fn bounded_seconds(&mut self, v: f64, path: &str) -> Option<Duration> {
        let d = seconds::seconds(v);
        if d.is_none() {
            self.report.error(
                path,
                format!("too many seconds: at most {}", seconds::MAX_SECONDS_TEXT),
            );
        }
        d
    }

    /// A positive number of MiB, at most [`MAX_MIB`] (1 TiB).
    pub(crate) fn mebibytes(&mut self, node: &Node, path: &str) -> Option<f64> {
        let mb = self.number(node, path, "a number of MiB")?;
        if mb <= 0.0 {
            self.report.error(path, "must be more than 0");
            return None;
        }
        if mb > MAX_MIB {
            self.report
                .error(path, "too large: at most 1048576 MiB (1 TiB)");
            return None;
        }
        Some(mb)
    }

    /// A list of strings; a single string is a list of one (LiteLLM's callbacks accept both).
    pub(crate) fn string_list(&mut self, node: &Node, path: &str) -> Vec<String> {
        match node {
            Node::Str(_) | Node::Num(_) => self.string(node, path).into_iter().collect(),
            _ => {
                let items = self.items(node, path);
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.string(item, &index_path(path, i)))
                    .collect()
            }
        }
    }

    /// The value as JSON with every string's environment references resolved (parameters
    /// passed through to the provider, free-form settings).
    pub(crate) fn json(&mut self, node: &Node, path: &str) -> Value {
        match node {
            Node::Str(s) => self
                .resolve_text(s, path)
                .map_or(Value::Null, Value::String),
            Node::Seq(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.json(item, &index_path(path, i)))
                    .collect(),
            ),
            Node::Map(_) => {
                let entries = self.entries(node, path);
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), self.json(v, &key_path(path, k))))
                        .collect(),
                )
            }
            Node::Null | Node::Bool(_) | Node::Num(_) => node.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::node::parse;
    use crate::problems::Problem;

    fn walk_value<T>(yaml: &str, f: impl FnOnce(&mut Walk<'_>, &Node) -> T) -> (T, Vec<Problem>) {
        let process: HashMap<String, String> = [
            ("N".to_owned(), "7".to_owned()),
            ("B".to_owned(), "off".to_owned()),
        ]
        .into_iter()
        .collect();
        let mut walk = Walk::new(Sources {
            config: BTreeMap::new(),
            process: &process,
            dotenv: HashMap::new(),
        });
        let node = parse(&format!("v: {yaml}")).unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        let out = f(&mut walk, &entries[0].1);
        (out, walk.report.into_sorted())
    }

    #[test]
    fn seconds() {
        let ok: &[(&str, Option<Duration>)] = &[
            ("30", Some(Duration::from_secs(30))),
            ("2.5", Some(Duration::from_millis(2500))),
            ("\"4\"", Some(Duration::from_secs(4))),
            ("os.environ/N", Some(Duration::from_secs(7))),
            ("", None),
        ];
        for (yaml, want) in ok {
            let (got, problems) = walk_value(yaml, |w, n| w.seconds(n, "t"));
            assert_eq!((got, problems), (*want, vec![]), "{yaml}");
        }
        let bad: &[(&str, &str)] = &[
            ("ten", "t: expected a number of seconds, found a string"),
            ("[1]", "t: expected a number of seconds, found a list"),
            ("true", "t: expected a number of seconds, found a boolean"),
            ("0", "t: expected a positive number of seconds"),
            ("-1", "t: expected a positive number of seconds"),
            ("1e300", "t: too many seconds: at most 3155760000 (100 years)"),
            ("1e18", "t: too many seconds: at most 3155760000 (100 years)"),
            ("os.environ/UNSET", "t: environment variable UNSET is not set (looked in environment_variables, the process environment and .env)"),
        ];
        for (yaml, want) in bad {
            let (got, problems) = walk_value(yaml, |w, n| w.seconds(n, "t"));
            assert_eq!(got, None, "{yaml}");
            let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert_eq!(shown, vec![want.to_string()], "{yaml}");
        }
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(walk_value("100", |w, n| w.u64(n, "x")).0, Some(100));
        assert_eq!(walk_value("100.0", |w, n| w.u64(n, "x")).0, Some(100));
        assert_eq!(walk_value("1.5", |w, n| w.u64(n, "x")).1.len(), 1);
        assert_eq!(walk_value("-3", |w, n| w.u32(n, "x")).1.len(), 1);
        assert_eq!(walk_value("70000", |w, n| w.port(n, "x")).1.len(), 1);
        assert_eq!(walk_value("yes", |w, n| w.bool(n, "x")).0, Some(true));
        assert_eq!(walk_value("\"on\"", |w, n| w.bool(n, "x")).0, Some(true));
        assert_eq!(
            walk_value("os.environ/B", |w, n| w.bool(n, "x")).0,
            Some(false)
        );
        assert_eq!(walk_value("maybe", |w, n| w.bool(n, "x")).1.len(), 1);
    }

    #[test]
    fn strings_and_lists() {
        assert_eq!(
            walk_value("a-${N}", |w, n| w.string(n, "x")).0.as_deref(),
            Some("a-7")
        );
        let (_, problems) = walk_value("no", |w, n| w.string(n, "x"));
        assert!(problems[0].message.contains("quote it"), "{problems:?}");
        assert_eq!(walk_value("cb", |w, n| w.string_list(n, "x")).0, vec!["cb"]);
        assert_eq!(
            walk_value("[a, b]", |w, n| w.string_list(n, "x")).0,
            vec!["a", "b"]
        );
        let (_, problems) = walk_value("[a, {b: 1}]", |w, n| w.string_list(n, "x"));
        assert_eq!(problems[0].path, "x[1]");
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let (entries, problems) = walk_value("{a: 1, b: 2, a: 3}", |w, n| {
            w.entries(n, "m")
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            entries,
            vec![
                ("b".to_owned(), Node::Num(2.into())),
                ("a".to_owned(), Node::Num(3.into()))
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "m.a: key given more than once; the last value is used"
        );
    }
}
