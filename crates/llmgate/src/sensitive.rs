//! [`SensitiveHeadersLayer`]: marks the headers that carry a client's key as sensitive from the
//! first layer on, so no `Debug` of the request (a log line, a panic message) prints them, and
//! h2 never indexes them.
//!
//! tower-http's `SetSensitiveRequestHeadersLayer` does the same through `HeaderMap::entry`,
//! which makes room for an insert even for a name the request does not carry: six names grew
//! a full map twice on every request (1,300 instructions, `bench/callgrind`). This walks the
//! request's headers once and changes nothing else.

use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, Request};
use tower::{Layer, Service};

/// The headers a client's key or session travels in.
const SENSITIVE: [HeaderName; 6] = [
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    COOKIE,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-litellm-api-key"),
];

/// Marks every value of the [`SENSITIVE`] headers sensitive, without growing the map.
fn mark(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE.contains(name) {
            value.set_sensitive(true);
        }
    }
}

/// Applies [`SensitiveHeaders`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SensitiveHeadersLayer;

impl<S> Layer<S> for SensitiveHeadersLayer {
    type Service = SensitiveHeaders<S>;
    fn layer(&self, inner: S) -> SensitiveHeaders<S> {
        SensitiveHeaders { inner }
    }
}

/// Marks the key-carrying headers of each request sensitive, then calls `inner`.
#[derive(Debug, Clone)]
pub(crate) struct SensitiveHeaders<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for SensitiveHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        mark(req.headers_mut());
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::Response;
    use tower::{Layer, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn a_clients_key_headers_are_sensitive_from_the_edge_on() {
        let seen = SensitiveHeadersLayer.layer(tower::service_fn(|req: Request<()>| async move {
            let h = req.headers();
            let keys = [
                "authorization",
                "x-api-key",
                "api-key",
                "x-litellm-api-key",
                "proxy-authorization",
            ];
            Ok::<_, Infallible>(Response::new(
                keys.iter().all(|n| h[*n].is_sensitive())
                    && h.get_all("cookie").iter().all(|v| v.is_sensitive())
                    && h.get_all("cookie").iter().count() == 2
                    && !h["content-type"].is_sensitive(),
            ))
        }));
        let req = Request::builder()
            .header("authorization", "Bearer sk-1")
            .header("x-api-key", "sk-2")
            .header("api-key", "sk-3")
            .header("x-litellm-api-key", "sk-4")
            .header("proxy-authorization", "Basic eA==")
            .header("cookie", "c=1")
            .header("cookie", "d=2")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        assert!(seen.oneshot(req).await.unwrap().into_body());
    }

    #[test]
    fn marking_leaves_the_map_as_it_was() {
        // A full map, as the host hands over: one more entry would grow it.
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer sk-1".parse().unwrap());
        for i in headers.len()..headers.capacity() {
            let name = HeaderName::from_bytes(format!("x-other-{i}").as_bytes()).unwrap();
            headers.insert(name, "1".parse().unwrap());
        }
        assert_eq!(headers.len(), headers.capacity());
        let room = headers.capacity();
        let before = headers.clone();
        mark(&mut headers);
        assert_eq!(headers.capacity(), room, "the map grew");
        assert_eq!(headers, before, "names and values unchanged");
        assert!(headers[AUTHORIZATION].is_sensitive());
    }
}
