//! A deployment's request headers: `headers`, `extra_headers` and `organization`, read and
//! merged.

use http::{HeaderName, HeaderValue};

use super::Params;
use crate::node::Node;
use crate::problems::key_path;
use crate::walk::Walk;

/// `headers`, then `extra_headers`, then `organization` as `OpenAI-Organization` unless a
/// header already sets it.
pub(super) fn resolve_headers(w: &mut Walk<'_>, r: &mut Params, path: &str) {
    r.out.headers = merge_headers(
        std::mem::take(&mut r.headers),
        std::mem::take(&mut r.extra_headers),
    );
    if let Some(org) = r.organization.take() {
        let name = HeaderName::from_static("openai-organization");
        match HeaderValue::from_str(&org) {
            Ok(value) if !r.out.headers.iter().any(|(n, _)| *n == name) => {
                r.out.headers.push((name, value));
            }
            Ok(_) => {}
            Err(_) => w.report.error(
                &key_path(path, "organization"),
                "not valid in an HTTP header (OpenAI-Organization)",
            ),
        }
        r.out.organization = Some(org);
    }
}

/// `headers` first, then `extra_headers`, which replaces a header of the same name.
fn merge_headers(
    headers: Vec<(HeaderName, HeaderValue)>,
    extra: Vec<(HeaderName, HeaderValue)>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, HeaderValue)> = headers
        .into_iter()
        .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
        .collect();
    out.extend(extra);
    out
}

pub(super) fn headers(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        let name = HeaderName::from_bytes(key.as_bytes());
        let text = match value {
            Node::Bool(b) => Some(b.to_string()),
            other => w.string(other, &p),
        };
        let Ok(name) = name else {
            w.report.error(&p, "not a valid HTTP header name");
            continue;
        };
        let Some(text) = text else { continue };
        match HeaderValue::from_str(&text) {
            Ok(v) => out.push((name, v)),
            Err(_) => w.report.error(
                &p,
                "not a valid HTTP header value (control characters or non-ASCII text)",
            ),
        }
    }
    out
}
