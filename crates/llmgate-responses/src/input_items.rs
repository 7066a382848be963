//! `GET /v1/responses/{id}/input_items`: the stored conversation's input items (the earlier
//! turns' first), as a list object, each item complete as the specification lists it.

use serde_json::{json, Map, Value};

/// The page of `items` the query asks for: `order` (`desc`, the default, or `asc`), `after`
/// (an item id), `limit` (1 to 100, default 20).
pub(crate) fn page(items: &[Value], query: Option<&str>) -> Value {
    let mut order_desc = true;
    let mut after = None;
    let mut limit = 20usize;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("order", "asc")) => order_desc = false,
            Some(("order", _)) => order_desc = true,
            Some(("after", id)) => after = Some(id),
            Some(("limit", n)) => limit = n.parse::<usize>().unwrap_or(20).clamp(1, 100),
            _ => {}
        }
    }
    let mut all: Vec<Value> = items.iter().map(listed).collect();
    if order_desc {
        all.reverse();
    }
    let start = after
        .and_then(|a| all.iter().position(|i| i["id"] == a).map(|p| p + 1))
        .unwrap_or(0);
    let rest = all.get(start..).unwrap_or_default();
    let data: Vec<Value> = rest.iter().take(limit).cloned().collect();
    json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map_or(Value::Null, |i| i["id"].clone()),
        "last_id": data.last().map_or(Value::Null, |i| i["id"].clone()),
        "has_more": rest.len() > limit,
    })
}

/// An input item as listed: `type` and `status` filled in, a message's string content as one
/// `input_text` (or, for the assistant, `output_text`) part.
fn listed(item: &Value) -> Value {
    let Value::Object(o) = item else {
        return item.clone();
    };
    let mut o: Map<String, Value> = o.clone();
    let kind = o
        .entry("type")
        .or_insert(json!("message"))
        .as_str()
        .unwrap_or("message")
        .to_owned();
    if kind == "message" {
        if let Some(Value::String(text)) = o.get("content") {
            let part = if o.get("role").and_then(Value::as_str) == Some("assistant") {
                crate::object::output_text(text)
            } else {
                json!({"type": "input_text", "text": text})
            };
            o.insert("content".to_owned(), json!([part]));
        }
    }
    if matches!(
        kind.as_str(),
        "message" | "function_call" | "function_call_output"
    ) {
        o.entry("status").or_insert(json!("completed"));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "msg_1", "role": "user", "content": "hi"}),
            json!({"id": "msg_2", "type": "message", "role": "assistant", "content": "hello"}),
            json!({"id": "fco_3", "type": "function_call_output", "call_id": "c", "output": "x"}),
        ]
    }

    #[test]
    fn newest_first_by_default_and_pages() {
        let p = page(&items(), None);
        assert_eq!(p["object"], "list");
        assert_eq!(p["first_id"], "fco_3");
        assert_eq!(p["last_id"], "msg_1");
        assert_eq!(p["has_more"], false);
        assert_eq!(
            p["data"][2],
            json!({"id": "msg_1", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_text", "text": "hi"}]})
        );
        assert_eq!(p["data"][1]["content"][0]["type"], "output_text");
        let p = page(&items(), Some("order=asc&limit=1"));
        assert_eq!(p["data"].as_array().unwrap().len(), 1);
        assert_eq!(p["first_id"], "msg_1");
        assert_eq!(p["has_more"], true);
        let p = page(&items(), Some("order=asc&after=msg_1"));
        assert_eq!(p["first_id"], "msg_2");
        assert_eq!(p["has_more"], false);
    }
}
