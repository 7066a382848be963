//! [`Ctx`]: what a dialect is given for one request, with the helpers every dialect needs
//! (the errors that name the deployment, the parameter view, the upstream URL and request).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::Full;
use llmgate_core::{DeploymentSpec, LlmBody, LlmRequest, Secret};

use super::Params;
use crate::error::Error;

/// What a dialect is given to build a request or read an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The client's request.
    pub(crate) llm: &'a LlmRequest,
    /// The deployment being called.
    pub(crate) dep: &'a DeploymentSpec,
    /// Drop parameters the provider does not support instead of failing.
    pub(crate) drop_params: bool,
    /// The access token got for this request, for dialects whose
    /// [`Dialect::credentials`](super::Dialect::credentials) names some.
    pub(crate) token: Option<&'a Secret>,
}

impl<'a> Ctx<'a> {
    /// The context for `llm` on `dep`: the request's `drop_params` wins over the deployment's.
    pub(crate) fn new(llm: &'a LlmRequest, dep: &'a DeploymentSpec) -> Self {
        Ctx {
            llm,
            dep,
            drop_params: llm.gateway().drop_params.unwrap_or(dep.drop_params),
            token: None,
        }
    }

    /// This context with the access token got for the request.
    pub(crate) fn with_token(self, token: Option<&'a Secret>) -> Self {
        Ctx { token, ..self }
    }

    /// The request's parameters over the deployment's defaults: its typed fields are read by
    /// the dialect, the rest through this view (see [`Params`]).
    pub(crate) fn params(&self) -> Params<'a> {
        let extra = match self.llm.body() {
            LlmBody::Chat(r) => &r.extra,
            LlmBody::Completion(r) => &r.extra,
            LlmBody::Embedding(r) => &r.extra,
        };
        Params::new(self, extra)
    }

    /// [`Error::Config`] for this deployment: it cannot be called as configured.
    pub(crate) fn config(&self, detail: impl Into<String>) -> Error {
        Error::config(self.dep, detail)
    }

    /// [`Error::InvalidResponse`] for this deployment: its answer is not what the endpoint
    /// returns.
    pub(crate) fn invalid(&self, detail: impl Into<String>) -> Error {
        Error::invalid(self.dep, detail)
    }

    /// [`Error::UnsupportedEndpoint`] for this deployment (`endpoint` as `/v1/...`).
    pub(crate) fn unsupported_endpoint(&self, endpoint: &'static str) -> Error {
        Error::unsupported_endpoint(self.dep, endpoint)
    }

    /// For a parameter the provider does not support: `Ok(())` when it may be dropped,
    /// else the error that names it.
    pub(crate) fn unsupported(&self, param: &'static str) -> Result<(), Error> {
        if self.drop_params {
            tracing::debug!(provider = %self.dep.provider, param, "dropping unsupported parameter");
            Ok(())
        } else {
            Err(Error::unsupported_param(self.dep, param))
        }
    }
}

/// Unix seconds now (an answer's `created`).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The deployment's `api_base`, else its provider's default, without trailing `/`s; `None`
/// when neither is set (each dialect says what that means).
pub(crate) fn api_base(dep: &DeploymentSpec) -> Option<&str> {
    dep.api_base
        .as_deref()
        .or_else(|| dep.provider.default_api_base())
        .map(|base| base.trim_end_matches('/'))
}

/// `url`, made from the deployment's `api_base`, as the upstream's URI: it must be an absolute
/// `http://` or `https://` URL, else [`Error::Config`] names `api_base`.
pub(crate) fn upstream_uri(dep: &DeploymentSpec, url: String) -> Result<Uri, Error> {
    let uri = Uri::try_from(url)
        .map_err(|e| Error::config(dep, format!("`api_base` does not make a valid URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(Error::config(
            dep,
            "`api_base` must be an absolute http:// or https:// URL",
        )),
    }
}

/// How a dialect sends the deployment's `api_key`.
#[derive(Debug, Clone)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in this header (`x-api-key`, `x-goog-api-key`).
    Plain(HeaderName),
    /// Not sent (the dialect authenticates otherwise).
    Omit,
}

/// A JSON `POST` to `uri` with `extra` headers (such as `anthropic-version`), the deployment's
/// key as `key` says (when it has one), and the deployment's own headers, which win over ours
/// (the first occurrence of a name replaces, repeats append). The key's header is marked
/// sensitive so it is never logged.
pub(crate) fn json_post(
    dep: &DeploymentSpec,
    uri: Uri,
    body: Bytes,
    key: KeyHeader,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<Request<Full<Bytes>>, Error> {
    // `Host` from the URI as written (as Bedrock's signed requests set it), here because
    // hyper's client otherwise makes it with `format!` on every request. A URI with
    // credentials in it is left to hyper, which drops them.
    let host = uri
        .authority()
        .filter(|a| !a.as_str().contains('@'))
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    // One more than ours: hyper-util's client asks for the `Host` entry, which makes room
    // for an insert even when the name is there, and would grow a full map.
    headers.reserve(4 + extra.len() + dep.headers.len());
    if let Some(host) = host {
        headers.insert(http::header::HOST, host);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    let key_value = dep
        .api_key
        .as_ref()
        .map(|k| k.expose())
        .filter(|k| !k.is_empty());
    let named = match (&key, key_value) {
        (KeyHeader::Bearer, Some(k)) => Some((
            http::header::AUTHORIZATION,
            HeaderValue::try_from(["Bearer ", k].concat()),
        )),
        (KeyHeader::Plain(name), Some(k)) => Some((name.clone(), HeaderValue::from_str(k))),
        (KeyHeader::Omit, _) | (_, None) => None,
    };
    if let Some((name, value)) = named {
        let mut value = value.map_err(|_| {
            Error::config(
                dep,
                "`api_key` contains characters that are not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    for (i, (name, value)) in dep.headers.iter().enumerate() {
        if dep.headers[..i].iter().any(|(n, _)| n == name) {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use llmgate_core::{ProviderKind, Secret};

    use super::*;

    #[test]
    fn an_upstream_request_has_room_for_the_host_lookup() {
        let mut dep = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m");
        dep.api_key = Some(Secret::new("sk-1"));
        let uri = Uri::from_static("https://api.example.com/v1/chat/completions");
        let req = json_post(&dep, uri, Bytes::new(), KeyHeader::Bearer, &[]).unwrap();
        let headers = req.headers();
        assert_eq!(headers.len(), 3, "host, content type, key");
        // hyper-util's client asks for the `Host` entry, which grows a map with no room left.
        assert!(headers.len() < headers.capacity(), "{headers:?}");
    }
}
