//! `Deserialize` for [`Usage`] and its details without serde's `flatten`: typed fields are read
//! as they come, every other key is kept in `extra`. Counts sent as `null` read as 0 (or `None`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{CompletionTokensDetails, PromptTokensDetails, Usage};

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads an object: `known` takes the typed fields (returning false for others), the rest go
/// to `extra`.
fn object<'de, A, T>(
    mut map: A,
    mut out: T,
    mut known: impl FnMut(&str, &mut T, &mut A) -> Result<bool, A::Error>,
    extra: impl Fn(&mut T) -> &mut Map<String, Value>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
{
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        if !known(&key, &mut out, &mut map)? {
            let value: Value = map.next_value()?;
            extra(&mut out).insert(key.into_owned(), value);
        }
    }
    Ok(out)
}

struct UsageVisitor;

impl<'de> Visitor<'de> for UsageVisitor {
    type Value = Usage;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a usage object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Usage, A::Error> {
        object(
            map,
            Usage::default(),
            |key, u, map| {
                match key {
                    "prompt_tokens" => u.prompt_tokens = count(map)?,
                    "completion_tokens" => u.completion_tokens = count(map)?,
                    "total_tokens" => u.total_tokens = count(map)?,
                    "prompt_tokens_details" => u.prompt_tokens_details = map.next_value()?,
                    "completion_tokens_details" => {
                        u.completion_tokens_details = map.next_value()?
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            },
            |u| &mut u.extra,
        )
    }
}

fn count<'de, A: MapAccess<'de>>(map: &mut A) -> Result<u64, A::Error> {
    Ok(map.next_value::<Option<u64>>()?.unwrap_or(0))
}

impl<'de> Deserialize<'de> for Usage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(UsageVisitor)
    }
}

/// `Deserialize` for a details object with one typed count.
macro_rules! details {
    ($ty:ident, $field:ident, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        object(
                            map,
                            $ty::default(),
                            |key, t, map| {
                                if key == stringify!($field) {
                                    t.$field = map.next_value()?;
                                    Ok(true)
                                } else {
                                    Ok(false)
                                }
                            },
                            |t| &mut t.extra,
                        )
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

details!(PromptTokensDetails, cached_tokens, "prompt token details");
details!(
    CompletionTokensDetails,
    reasoning_tokens,
    "completion token details"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_fields_keeps_the_rest_and_round_trips() {
        let src = serde_json::json!({
            "prompt_tokens": 10, "completion_tokens": null, "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 2},
            "cache_creation_input_tokens": 3
        });
        let u: Usage = serde_json::from_value(src).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (10, 0, 12)
        );
        let p = u.prompt_tokens_details.clone().unwrap();
        assert_eq!(p.cached_tokens, Some(4));
        assert_eq!(p.extra["audio_tokens"], 0);
        assert_eq!(
            u.completion_tokens_details
                .as_ref()
                .unwrap()
                .reasoning_tokens,
            Some(2)
        );
        assert_eq!(u.extra["cache_creation_input_tokens"], 3);
        let back: Usage = serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
        assert_eq!(back, u);
        let escaped: Usage = serde_json::from_str(r#"{"total\u005ftokens": 5}"#).unwrap();
        assert_eq!(escaped.total_tokens, 5);
    }
}
