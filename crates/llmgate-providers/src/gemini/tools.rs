//! `tools` and `tool_choice` as Gemini's `tools` (one `functionDeclarations` tool, plus
//! Gemini's own tools) and `toolConfig.functionCallingConfig`.

use serde_json::{json, Map, Value};

use super::schema;
use crate::dialect::Ctx;
use crate::error::Error;

/// OpenAI `tools` as one `functionDeclarations` tool, plus Gemini's own tools.
pub(super) fn tools(
    ctx: &Ctx<'_>,
    value: &Value,
    body: &mut Map<String, Value>,
) -> Result<(), Error> {
    let Value::Array(list) = value else {
        return ctx.unsupported("tools");
    };
    let mut declarations = Vec::with_capacity(list.len());
    let mut out = Vec::new();
    for tool in list {
        let kind = tool.get("type").and_then(Value::as_str);
        match (kind, tool.get("function")) {
            (None | Some("function"), Some(f)) => declarations.push(declaration(f)),
            _ => match native_tool(tool) {
                Some(t) => out.push(t),
                None => ctx.unsupported("tools[].type")?,
            },
        }
    }
    if !declarations.is_empty() {
        out.insert(0, json!({ "functionDeclarations": declarations }));
    }
    if !out.is_empty() {
        body.insert("tools".to_owned(), Value::Array(out));
    }
    Ok(())
}

/// A function as a `FunctionDeclaration`; `strict` is not Gemini's, and an object schema
/// without properties is sent as no `parameters` at all (Gemini rejects empty ones).
fn declaration(f: &Value) -> Value {
    let mut d = Map::new();
    d.insert(
        "name".to_owned(),
        f.get("name").cloned().unwrap_or_else(|| json!("")),
    );
    if let Some(desc) = f.get("description").filter(|d| !d.is_null()) {
        d.insert("description".to_owned(), desc.clone());
    }
    if let Some(params) = f.get("parameters").filter(|p| p.is_object()) {
        let cleaned = schema::for_gemini(params);
        let empty_object = cleaned.get("properties").is_none()
            && cleaned.get("anyOf").is_none()
            && cleaned
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.eq_ignore_ascii_case("object"));
        if !empty_object {
            d.insert("parameters".to_owned(), cleaned);
        }
    }
    Value::Object(d)
}

/// Gemini's built-in tools, as LiteLLM accepts them in `tools`: OpenAI's `web_search` is
/// `googleSearch`; a tool with one key besides `type` naming a Gemini tool is that tool.
fn native_tool(tool: &Value) -> Option<Value> {
    let Value::Object(o) = tool else { return None };
    if o.len() == 1
        && matches!(
            o.get("type").and_then(Value::as_str),
            Some("web_search" | "web_search_preview")
        )
    {
        return Some(json!({"googleSearch": {}}));
    }
    let mut entries = o.iter().filter(|(k, _)| k.as_str() != "type");
    let (key, config) = entries.next()?;
    if entries.next().is_some() {
        return None;
    }
    let name = match key.as_str() {
        "googleSearch" | "google_search" => "googleSearch",
        "codeExecution" | "code_execution" => "codeExecution",
        "urlContext" | "url_context" => "urlContext",
        _ => return None,
    };
    Some(json!({ name: config }))
}

pub(super) fn tool_choice(
    ctx: &Ctx<'_>,
    value: &Value,
    body: &mut Map<String, Value>,
) -> Result<(), Error> {
    let config = match value {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            _ => return ctx.unsupported("tool_choice"),
        },
        Value::Object(_) => match value.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => return ctx.unsupported("tool_choice"),
        },
        _ => return ctx.unsupported("tool_choice"),
    };
    body.insert(
        "toolConfig".to_owned(),
        json!({ "functionCallingConfig": config }),
    );
    Ok(())
}
