//! JSON Schemas as Gemini takes them (an OpenAPI 3.0 subset), for tool parameters and
//! `responseSchema`.
//!
//! OpenAI clients send full JSON Schema; Gemini rejects keys outside its subset with a 400
//! (`additionalProperties`, `$schema`, `strict`, `$defs`, `$ref`, `const`, `examples`, ...).
//! As LiteLLM does (`_build_vertex_schema`), the schema is rewritten recursively:
//!
//! - only Gemini's `Schema` fields are kept: `type`, `format`, `title`, `description`,
//!   `nullable`, `default`, `items`, `minItems`, `maxItems`, `enum`, `properties`,
//!   `propertyOrdering`, `required`, `minProperties`, `maxProperties`, `minimum`, `maximum`,
//!   `minLength`, `maxLength`, `pattern`, `example`, `anyOf`; everything else is dropped
//!   (among them `additionalProperties`, `$schema`, `$id`, `strict`, `examples`,
//!   `exclusiveMinimum`, `exclusiveMaximum`, `patternProperties`, `oneOf`, `allOf`, `not`);
//! - `$ref` to `#/$defs/...` or `#/definitions/...` is replaced by the definition (to a
//!   depth of [`MAX_DEPTH`], so a recursive schema ends), and `$defs` is dropped;
//! - `anyOf` with a `{"type": "null"}` member, and `type: [T, "null"]`, become `nullable`;
//!   an `anyOf` left with one member is replaced by it;
//! - `const` becomes a one-value `enum`;
//! - a string `format` other than `enum` and `date-time` (the two Gemini accepts) is dropped;
//! - an object with no properties loses its empty `properties`; a schema with `properties`
//!   but no `type` gets `type: object`.
//!
//! LiteLLM also adds `propertyOrdering` to a `responseSchema` (the client's key order); llmgate
//! parses JSON objects into sorted maps, so that order is gone by the time the schema is
//! translated, and a client's own `propertyOrdering` is passed instead.

use serde_json::{Map, Value};

/// How deep a schema is followed (nesting and `$ref`s); below that a schema is `{}`.
pub(crate) const MAX_DEPTH: usize = 32;

/// The keys of Gemini's `Schema` object.
const ALLOWED: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "default",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "properties",
    "propertyOrdering",
    "required",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
];

/// String formats Gemini accepts.
const STRING_FORMATS: &[&str] = &["enum", "date-time"];

/// `schema` in Gemini's subset.
pub(crate) fn for_gemini(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object);
    Cleaner { defs }.clean(schema, 0)
}

struct Cleaner<'a> {
    defs: Option<&'a Map<String, Value>>,
}

impl Cleaner<'_> {
    fn clean(&self, schema: &Value, depth: usize) -> Value {
        let Value::Object(m) = schema else {
            return schema.clone();
        };
        if depth > MAX_DEPTH {
            return Value::Object(Map::new());
        }
        if let Some(target) = m
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
        {
            let mut out = self.clean(target, depth + 1);
            if let (Value::Object(o), Some(d)) = (&mut out, m.get("description")) {
                o.insert("description".to_owned(), d.clone());
            }
            return out;
        }

        let mut out = Map::new();
        let mut nullable = false;
        for (key, value) in m {
            match key.as_str() {
                "type" => match value {
                    Value::Array(types) => {
                        let kept: Vec<&Value> = types
                            .iter()
                            .filter(|t| t.as_str() != Some("null"))
                            .collect();
                        nullable |= kept.len() < types.len();
                        match kept.as_slice() {
                            [one] => {
                                out.insert("type".to_owned(), (*one).clone());
                            }
                            [] => {}
                            many => {
                                let any: Vec<Value> = many
                                    .iter()
                                    .map(|t| {
                                        Value::Object(Map::from_iter([(
                                            "type".to_owned(),
                                            (*t).clone(),
                                        )]))
                                    })
                                    .collect();
                                out.insert("anyOf".to_owned(), Value::Array(any));
                            }
                        }
                    }
                    other => {
                        out.insert("type".to_owned(), other.clone());
                    }
                },
                "anyOf" => {
                    let Value::Array(members) = value else {
                        continue;
                    };
                    let mut kept = Vec::with_capacity(members.len());
                    for member in members {
                        if member.get("type").and_then(Value::as_str) == Some("null")
                            && member.as_object().is_some_and(|o| o.len() == 1)
                        {
                            nullable = true;
                        } else {
                            kept.push(self.clean(member, depth + 1));
                        }
                    }
                    if kept.len() == 1 {
                        if let Some(Value::Object(only)) = kept.pop() {
                            for (k, v) in only {
                                out.entry(k).or_insert(v);
                            }
                        }
                    } else if !kept.is_empty() {
                        out.insert("anyOf".to_owned(), Value::Array(kept));
                    }
                }
                "properties" => {
                    let Value::Object(props) = value else {
                        continue;
                    };
                    if props.is_empty() {
                        continue;
                    }
                    let cleaned: Map<String, Value> = props
                        .iter()
                        .map(|(k, v)| (k.clone(), self.clean(v, depth + 1)))
                        .collect();
                    out.insert("properties".to_owned(), Value::Object(cleaned));
                }
                "items" => {
                    // A tuple (`items: [..]`) is not in Gemini's subset: its first schema.
                    let item = match value {
                        Value::Array(items) => items.first(),
                        other => Some(other),
                    };
                    if let Some(item) = item {
                        out.insert("items".to_owned(), self.clean(item, depth + 1));
                    }
                }
                "const" => {
                    out.entry("enum".to_owned())
                        .or_insert_with(|| Value::Array(vec![value.clone()]));
                }
                k if ALLOWED.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        if nullable {
            out.insert("nullable".to_owned(), Value::Bool(true));
        }
        let is_string = out.get("type").and_then(Value::as_str) == Some("string");
        if out
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| is_string && !STRING_FORMATS.contains(&f))
        {
            out.remove("format");
        }
        if out.contains_key("properties") && !out.contains_key("type") {
            out.insert("type".to_owned(), Value::String("object".to_owned()));
        }
        Value::Object(out)
    }

    fn resolve(&self, reference: &str) -> Option<&Value> {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))?;
        self.defs?.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_what_gemini_rejects() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "city": {"type": "string", "description": "City", "examples": ["Paris"],
                         "format": "uri"},
                "when": {"type": "string", "format": "date-time"},
                "days": {"type": ["integer", "null"], "minimum": 1, "exclusiveMaximum": 9},
                "unit": {"const": "c"},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}}
            },
            "required": ["city"]
        });
        assert_eq!(
            for_gemini(&s),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "when": {"type": "string", "format": "date-time"},
                    "days": {"type": "integer", "nullable": true, "minimum": 1},
                    "unit": {"enum": ["c"]},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn refs_and_any_of() {
        let s = json!({
            "type": "object",
            "$defs": {"Point": {"type": "object", "title": "Point",
                                "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}},
            "properties": {
                "b": {"$ref": "#/$defs/Point", "description": "where"},
                "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "empty": {"type": "object", "properties": {}}
            }
        });
        let out = for_gemini(&s);
        assert_eq!(
            out,
            json!({
                "type": "object",
                "properties": {
                    "b": {"type": "object", "title": "Point", "description": "where",
                          "properties": {"x": {"type": "number"}, "y": {"type": "number"}}},
                    "a": {"type": "string", "nullable": true},
                    "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "empty": {"type": "object"}
                }
            })
        );
    }

    #[test]
    fn recursive_refs_end() {
        let s = json!({
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"
        });
        let out = for_gemini(&s);
        let mut depth = 0;
        let mut at = &out;
        while let Some(next) = at.pointer("/properties/next") {
            at = next;
            depth += 1;
        }
        assert!(depth > 3 && depth <= MAX_DEPTH, "{depth}");
    }
}
