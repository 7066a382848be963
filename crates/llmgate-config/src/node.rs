//! The YAML document as a plain value tree, read once, before any typed walk.
//!
//! Parsing into a tree first (instead of straight into typed structs) is what lets validation
//! report every problem at once: a type error in one entry cannot hide the others.
//!
//! Scalars are read the way LiteLLM's PyYAML (`yaml.safe_load`, YAML 1.1) reads them where it
//! matters for a config: `yes`/`no`/`on`/`off` are booleans, `<<: *anchor` merge keys are
//! expanded, and a repeated key keeps its last value (reported as a warning by the walk).
//! Where PyYAML's reading would surprise, the text is kept: `0123` stays the string `"0123"`
//! (PyYAML would read octal 83) and `2024-02-01` stays a string (PyYAML would read a date).
//! One difference the other way: serde-saphyr also reads a bare `y`/`n` (and any letter case of
//! the YAML 1.1 words) as a boolean, where PyYAML keeps the string; a string field given a
//! boolean says so and suggests quoting.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::problems::Problem;

/// One YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `~`, `null` or nothing.
    Null,
    /// A boolean (YAML 1.1 spellings included).
    Bool(bool),
    /// An integer or a finite float.
    Num(Number),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; repeated keys are kept here and resolved by the walk.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// What kind of value this is, for messages ("expected a string, found a list").
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// Whether the value is null (a key written with no value counts as unset).
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// The value as JSON, for parameters passed through to the provider.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Num(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The scalar as text, the way Python's `str()` would render it for an environment
    /// variable (`environment_variables` values may be numbers or booleans).
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Num(n) => Some(n.to_string()),
            Node::Bool(true) => Some("True".to_owned()),
            Node::Bool(false) => Some("False".to_owned()),
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }
}

/// A mapping key as text. A list of scalars (`- ["gpt-4o"]: ["claude"]`, valid YAML that
/// PyYAML refuses) becomes its JSON text, `["gpt-4o"]`, which [`parse_list_key`] reads back
/// where a list key means something (`fallbacks`) and which reads as written in any message
/// about a key elsewhere. A mapping as a key has no such reading: `None`.
pub(crate) fn key_text(key: Node) -> Option<String> {
    Some(match key {
        Node::Str(s) => s,
        Node::Num(n) => n.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Null => "null".to_owned(),
        Node::Seq(items) => {
            let texts: Option<Vec<String>> = items
                .into_iter()
                .map(|item| match item {
                    Node::Seq(_) | Node::Map(_) => None,
                    scalar => key_text(scalar),
                })
                .collect();
            list_key(&texts?)
        }
        Node::Map(_) => return None,
    })
}

/// The key text of a list key (see [`key_text`]).
pub(crate) fn list_key(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// The names of a list key (`["a", "b"]`), or `None` for a plain key.
pub(crate) fn parse_list_key(key: &str) -> Option<Vec<String>> {
    if !key.starts_with('[') {
        return None;
    }
    serde_json::from_str(key).ok()
}

/// Parses a YAML document. An empty document is an empty mapping.
pub(crate) fn parse(yaml: &str) -> Result<Node, Problem> {
    if yaml.trim().is_empty() {
        return Ok(Node::Map(Vec::new()));
    }
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Node>(yaml, options) {
        Ok(node) => Ok(node),
        Err(err) => Err(syntax_problem(&err)),
    }
}

fn syntax_problem(err: &serde_saphyr::Error) -> Problem {
    let text = err.to_string();
    let message = match err.location() {
        Some(loc) if loc.line() > 0 => {
            format!(
                "invalid YAML at line {}, column {}: {}",
                loc.line(),
                loc.column(),
                strip_location(&text)
            )
        }
        _ => format!("invalid YAML: {text}"),
    };
    Problem::error("", message)
}

/// serde-saphyr appends "at line X, column Y" itself; we print the location first instead.
fn strip_location(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => text,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        match i64::try_from(v) {
            Ok(v) => Ok(Node::Num(v.into())),
            Err(_) => match u64::try_from(v) {
                Ok(v) => Ok(Node::Num(v.into())),
                Err(_) => Ok(Node::Str(v.to_string())),
            },
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        match u64::try_from(v) {
            Ok(v) => Ok(Node::Num(v.into())),
            Err(_) => Ok(Node::Str(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        match Number::from_f64(v) {
            Some(n) => Ok(Node::Num(n)),
            None => Ok(Node::Str(v.to_string())),
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let Some(key) = key_text(key) else {
                return Err(de::Error::custom(
                    "a mapping used as a mapping key is not supported",
                ));
            };
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Node)]) -> Node {
        Node::Map(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &str) -> Node {
        Node::Str(v.to_owned())
    }

    #[test]
    fn reads_scalars_like_pyyaml_where_it_matters() {
        let node = parse(
            "a: yes\nb: off\nc: True\nd: \"yes\"\ne: 12\nf: 1.5\ng: ~\nh:\ni: 0123\nj: 2024-02-01\nk: 1_000\nl: os.environ/X\n",
        )
        .unwrap();
        assert_eq!(
            node,
            map(&[
                ("a", Node::Bool(true)),
                ("b", Node::Bool(false)),
                ("c", Node::Bool(true)),
                ("d", s("yes")),
                ("e", Node::Num(12.into())),
                ("f", Node::Num(Number::from_f64(1.5).unwrap())),
                ("g", Node::Null),
                ("h", Node::Null),
                ("i", s("0123")),
                ("j", s("2024-02-01")),
                ("k", Node::Num(1000.into())),
                ("l", s("os.environ/X")),
            ])
        );
    }

    #[test]
    fn expands_merge_keys_and_keeps_repeated_keys() {
        let node = parse("base: &b\n  api_key: k\n  rpm: 1\nx:\n  <<: *b\n  rpm: 2\nz: 1\nz: 2\n")
            .unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        assert_eq!(entries[1].0, "x");
        let Node::Map(x) = &entries[1].1 else {
            panic!("x not a map")
        };
        let rpm: Vec<_> = x.iter().filter(|(k, _)| k == "rpm").collect();
        assert_eq!(rpm.len(), 1, "{x:?}");
        assert_eq!(rpm[0].1, Node::Num(2.into()));
        assert!(x.iter().any(|(k, v)| k == "api_key" && *v == s("k")));
        assert_eq!(
            entries.iter().filter(|(k, _)| k == "z").count(),
            2,
            "repeated keys are passed through to the walk"
        );
    }

    #[test]
    fn empty_document_is_an_empty_mapping() {
        assert_eq!(parse("").unwrap(), Node::Map(Vec::new()));
        assert_eq!(parse("# only a comment\n").unwrap(), Node::Null);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse("model_list:\n  - model_name: a\n   litellm_params: [\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML at line "), "{err}");
    }
}
