//! What Gemini rejects in a `generateContent` request, with messages in Google's words.
//!
//! Google's JSON parser takes a proto field by its camelCase or snake_case name and refuses
//! any other (`Unknown name "x": Cannot find field.`); schemas are a fixed subset of OpenAPI.

use serde_json::Value;

/// Top-level fields of `GenerateContentRequest`.
const REQUEST: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
];

/// Fields of `GenerationConfig`.
const GENERATION_CONFIG: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// Fields of `Schema`.
const SCHEMA: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The data fields of a `Part`: exactly one is set.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

/// Other fields a `Part` may have.
const PART_META: &[&str] = &["thought", "thoughtSignature", "videoMetadata"];

/// Whether `key` names one of `fields`, by its camelCase or snake_case name.
fn known(key: &str, fields: &[&str]) -> bool {
    fields.iter().any(|f| *f == key || snake(f) == key)
}

fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake(camel)))
}

fn unknown(name: &str, at: Option<&str>) -> String {
    match at {
        Some(at) => {
            format!("Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field.")
        }
        None => {
            format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
        }
    }
}

/// The request's `contents`, which must be a non-empty list.
pub(super) fn contents(body: &Value) -> Result<&[Value], String> {
    match body.get("contents").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => Ok(c),
        _ => Err("* GenerateContentRequest.contents: contents is not specified".to_owned()),
    }
}

/// Checks a `generateContent` body as Gemini does.
pub(super) fn generate_request(body: &Value) -> Result<(), String> {
    let Value::Object(top) = body else {
        return Err("Invalid JSON payload received. Unexpected token.".to_owned());
    };
    if let Some(k) = top.keys().find(|k| !known(k, REQUEST)) {
        return Err(unknown(k, None));
    }
    for (i, c) in contents(body)?.iter().enumerate() {
        match c.get("role").and_then(Value::as_str) {
            None | Some("user" | "model") => {}
            Some(_) => return Err("Please use a valid role: user, model.".to_owned()),
        }
        let parts = c.get("parts").and_then(Value::as_array);
        let Some(parts) = parts.filter(|p| !p.is_empty()) else {
            return Err(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            ));
        };
        for (j, p) in parts.iter().enumerate() {
            part(p, i, j)?;
        }
    }
    if let Some(system) = field(body, "systemInstruction") {
        for p in system
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("text").and_then(Value::as_str).is_none() {
                return Err(
                    "* GenerateContentRequest.system_instruction: only text parts are supported"
                        .to_owned(),
                );
            }
        }
    }
    if let Some(config) = field(body, "generationConfig") {
        let Value::Object(config_map) = config else {
            return Err("Invalid value at 'generation_config'".to_owned());
        };
        if let Some(k) = config_map.keys().find(|k| !known(k, GENERATION_CONFIG)) {
            return Err(unknown(k, Some("generation_config")));
        }
        if let Some(s) = field(config, "responseSchema") {
            schema(s, "generation_config.response_schema")?;
        }
    }
    for (i, tool) in field(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let declarations = field(tool, "functionDeclarations").and_then(Value::as_array);
        for (j, d) in declarations.into_iter().flatten().enumerate() {
            if d.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!(
                    "* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: \
                     Invalid function name. Must start with a letter or an underscore."
                ));
            }
            if let Some(p) = d.get("parameters") {
                schema(
                    p,
                    &format!("tools[{i}].function_declarations[{j}].parameters"),
                )?;
            }
        }
    }
    Ok(())
}

fn part(p: &Value, i: usize, j: usize) -> Result<(), String> {
    let Value::Object(m) = p else {
        return Err(format!("Invalid value at 'contents[{i}].parts[{j}]'"));
    };
    if let Some(k) = m
        .keys()
        .find(|k| !known(k, PART_DATA) && !known(k, PART_META))
    {
        return Err(unknown(k, Some(&format!("contents[{i}].parts[{j}]"))));
    }
    let data = m.keys().filter(|k| known(k, PART_DATA)).count();
    if data != 1 {
        return Err(format!(
            "* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
        ));
    }
    if m.get("text").and_then(Value::as_str) == Some("") {
        return Err("Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.".to_owned());
    }
    if let Some(call) = field(p, "functionCall") {
        if call.get("args").is_some_and(|a| !a.is_object()) {
            return Err(format!(
                "Invalid value at 'contents[{i}].parts[{j}].function_call.args' (type.googleapis.com/google.protobuf.Struct)"
            ));
        }
    }
    if let Some(response) = field(p, "functionResponse") {
        if response
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "* GenerateContentRequest.contents[{i}].parts[{j}].function_response.name: Name cannot be empty."
            ));
        }
        if !response.get("response").is_some_and(Value::is_object) {
            return Err(format!(
                "Invalid value at 'contents[{i}].parts[{j}].function_response.response' (type.googleapis.com/google.protobuf.Struct)"
            ));
        }
    }
    Ok(())
}

/// Checks a schema against Gemini's `Schema` fields, recursively.
fn schema(s: &Value, at: &str) -> Result<(), String> {
    let Value::Object(m) = s else {
        return Err(format!("Invalid value at '{at}'"));
    };
    if let Some(k) = m.keys().find(|k| !known(k, SCHEMA)) {
        return Err(unknown(k, Some(at)));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        if props.is_empty()
            && m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("object"))
        {
            return Err(format!(
                "* GenerateContentRequest.{at}.properties: should be non-empty for OBJECT type"
            ));
        }
        for (name, p) in props {
            schema(p, &format!("{at}.properties[{name}].value"))?;
        }
    }
    if let Some(items) = m.get("items") {
        schema(items, &format!("{at}.items"))?;
    }
    for (n, any) in m
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        schema(any, &format!("{at}.any_of[{n}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<(), String> {
        generate_request(&v)
    }

    #[test]
    fn accepts_a_translated_request() {
        check(json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}},
                                                      "thoughtSignature": "x"}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"a": 1}}}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "generationConfig": {"temperature": 0.1, "max_output_tokens": 5,
                                 "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object",
                       "properties": {"q": {"type": "array", "items": {"type": "string"}}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
        }))
        .unwrap();
    }

    #[test]
    fn rejects_what_gemini_rejects() {
        for (body, says) in [
            (json!({"contents": []}), "contents is not specified"),
            (
                json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
                "valid role",
            ),
            (json!({"contents": [{"parts": []}]}), "must not be empty"),
            (
                json!({"contents": [{"parts": [{"text": ""}]}]}),
                "empty text",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "temperature": 1}),
                "Unknown name \"temperature\"",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 1}}),
                "Unknown name \"max_tokens\" at 'generation_config'",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [
                    {"name": "f", "parameters": {"type": "object", "additionalProperties": false,
                     "properties": {"a": {"type": "string"}}}}]}]}),
                "Unknown name \"additionalProperties\"",
            ),
            (
                json!({"contents": [{"parts": [{"functionResponse": {"name": "", "response": {}}}]}]}),
                "Name cannot be empty",
            ),
            (
                json!({"contents": [{"parts": [{"functionCall": {"name": "f", "args": "x"}}]}]}),
                "google.protobuf.Struct",
            ),
        ] {
            let e = check(body).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
