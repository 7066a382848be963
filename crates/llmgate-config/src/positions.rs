//! Where each value of the file is: a map from a value's path (the same path problems carry,
//! `model_list[2].litellm_params.model`) to its line and column, so every problem can say
//! where to look.
//!
//! The document is read a second time, as a tree of [`Spanned`] values, and walked with the
//! same path functions the config walk uses ([`key_path`], [`index_path`]). A problem whose
//! path is not in the map (a value that came from an `include`d file, or from a `<<` merge)
//! takes the place of its nearest ancestor that is.

use std::collections::HashMap;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::problems::{index_path, key_path, Position, Problem};

/// Line and column of every path in one document.
#[derive(Debug, Default)]
pub(crate) struct Positions(HashMap<String, Position>);

impl Positions {
    /// The positions of `yaml`'s values; empty when it does not parse (the syntax error names
    /// its own line).
    pub(crate) fn of(yaml: &str) -> Positions {
        let mut map = HashMap::new();
        if let Ok(root) = serde_saphyr::from_str::<Spanned<Located>>(yaml) {
            index(&mut map, "", &root);
        }
        Positions(map)
    }

    /// The position of `path`, or of its nearest ancestor with one.
    pub(crate) fn find(&self, path: &str) -> Option<Position> {
        if let Some(p) = self.0.get(path) {
            return Some(*p);
        }
        // Every cut before a `.` or a `[` is a candidate ancestor; a cut inside a quoted key
        // (`["a.b"]`) is simply not in the map.
        path.char_indices()
            .rev()
            .filter(|(_, c)| *c == '.' || *c == '[')
            .find_map(|(i, _)| self.0.get(&path[..i]).copied())
    }

    /// Gives each problem without a position the one its path has here.
    pub(crate) fn locate(&self, problems: &mut [Problem]) {
        for p in problems.iter_mut() {
            if p.position.is_none() && !p.path.is_empty() {
                p.position = self.find(&p.path);
            }
        }
    }
}

fn position(s: &Spanned<impl Sized>) -> Option<Position> {
    let loc = s.referenced;
    (loc.line() > 0).then(|| Position {
        line: loc.line(),
        column: loc.column(),
    })
}

/// A value's position is its key's for a collection (which starts on the next line) and its
/// own for a scalar (so `model: foo` points at `foo`).
fn index(map: &mut HashMap<String, Position>, path: &str, node: &Spanned<Located>) {
    match &node.value {
        Located::Scalar => {}
        Located::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = index_path(path, i);
                if let Some(pos) = position(item) {
                    map.entry(p.clone()).or_insert(pos);
                }
                index(map, &p, item);
            }
        }
        Located::Map(entries) => {
            for (key, value) in entries {
                let p = key_path(path, &key.value.0);
                let at = match value.value {
                    Located::Scalar => position(value).or_else(|| position(key)),
                    _ => position(key),
                };
                if let Some(pos) = at {
                    // The first of repeated keys keeps its place; the walk reports the repeat.
                    map.entry(p.clone()).or_insert(pos);
                }
                index(map, &p, value);
            }
        }
    }
}

/// The shape of a value, every part with its place.
enum Located {
    Scalar,
    Seq(Vec<Spanned<Located>>),
    Map(Vec<(Spanned<Key>, Spanned<Located>)>),
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LocatedVisitor)
    }
}

struct LocatedVisitor;

macro_rules! scalar {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<Located, E> { Ok(Located::Scalar) })*
    };
}

impl<'de> Visitor<'de> for LocatedVisitor {
    type Value = Located;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_str: &str, visit_string: String);

    fn visit_unit<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Scalar)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
        Located::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Located>>()? {
            items.push(item);
        }
        Ok(Located::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Located>>()?;
            entries.push((key, value));
        }
        Ok(Located::Map(entries))
    }
}

/// A mapping key as the config walk names it (see [`crate::node`]).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = crate::node::Node::deserialize(d)?;
        crate::node::key_text(node)
            .map(Key)
            .ok_or_else(|| de::Error::custom("a mapping used as a mapping key is not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::list_key;

    #[test]
    fn finds_values_keys_items_and_ancestors() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: foo/bar\nrouter_settings:\n  fallbacks:\n    - [\"a\"]: [\"b\"]\n";
        let p = Positions::of(yaml);
        let at = |path: &str| p.find(path).map(|p| (p.line, p.column));
        assert_eq!(at("model_list"), Some((1, 1)));
        assert_eq!(at("model_list[0]"), Some((2, 5)));
        assert_eq!(at("model_list[0].litellm_params.model"), Some((4, 14)));
        // Not in the file: its nearest ancestor's place.
        assert_eq!(at("model_list[0].litellm_params.api_key"), Some((3, 5)));
        let key = list_key(&["a".to_owned()]);
        assert_eq!(
            at(&key_path("router_settings.fallbacks[0]", &key)),
            Some((7, 7))
        );
        assert_eq!(at("nowhere"), None);
    }
}
