//! The serde_json walk that [`super::json_object_text`] replaced, kept as the reference its
//! tests and the `json_object_text` fuzz target compare it with. Not an API: compiled for the
//! tests and under the `fuzzing` feature only.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{NotJson, TEXT_KEYS};

/// [`super::json_object_text`] as one `deserialize_any` walk of serde_json's parser.
pub fn json_object_text(data: &str) -> Result<u64, NotJson> {
    if !data.trim_start().starts_with('{') {
        return Err(NotJson::NotAnObject);
    }
    let mut n = 0;
    let mut de = serde_json::Deserializer::from_str(data);
    Walk {
        n: &mut n,
        text: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|_| NotJson::Invalid)?;
    Ok(n)
}

/// Walks one value; `text`: it is the value of a text key (a string counts).
struct Walk<'a> {
    n: &'a mut u64,
    text: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.text {
            *self.n += s.len() as u64;
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                n: &mut *self.n,
                text: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(text) = map.next_key_seed(Key)? {
            map.next_value_seed(Walk {
                n: &mut *self.n,
                text,
            })?;
        }
        Ok(())
    }
}

/// A map key: whether it is one of [`TEXT_KEYS`].
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(TEXT_KEYS.contains(&s))
    }
}
