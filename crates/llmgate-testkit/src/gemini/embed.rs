//! `batchEmbedContents` and `embedContent`: deterministic unit vectors.

use serde_json::{json, Value};

/// Length of a mock embedding when the request sets no `outputDimensionality`.
const DEFAULT_DIMENSIONS: usize = 16;

pub(super) fn batch(body: &Value, resource: &str) -> Result<Value, String> {
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or("* BatchEmbedContentsRequest.requests: requests is not specified")?;
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        match r.get("model").and_then(Value::as_str) {
            Some(m) if m == resource => {}
            Some(m) => {
                return Err(format!(
                "Model name in request {i} ({m}) does not match the model in the URL ({resource})."
            ))
            }
            None => {
                return Err(format!(
                    "* BatchEmbedContentsRequest.requests[{i}].model: model is required"
                ))
            }
        }
        out.push(json!({ "values": values(r) }));
    }
    Ok(json!({ "embeddings": out }))
}

/// A deterministic unit vector for an `EmbedContentRequest`'s text (FNV-1a of the text and
/// the component index), `outputDimensionality` long.
pub(super) fn values(request: &Value) -> Vec<f64> {
    let text: String = request
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let dims = request
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, 4096);
    let raw: Vec<f64> = (0..dims)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain((i as u64).to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % 2000) as f64 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        raw.iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_check_the_model() {
        let ok = batch(
            &json!({"requests": [{"model": "models/e", "content": {"parts": [{"text": "a"}]},
                                  "outputDimensionality": 4}]}),
            "models/e",
        )
        .unwrap();
        assert_eq!(ok["embeddings"][0]["values"].as_array().unwrap().len(), 4);
        assert!(batch(&json!({"requests": [{"model": "models/x"}]}), "models/e").is_err());
    }
}
