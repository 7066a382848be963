//! The upstream request's head and its authentication: AWS Signature Version 4 (service
//! `bedrock`, or `sagemaker` for SageMaker's runtime, see [`Service`]) with the deployment's
//! AWS credentials, else (Bedrock only) a Bedrock API key as a bearer token.
//!
//! Signing uses `aws-sigv4` (AWS's own signer, without the SDK's config loader or HTTP stack):
//! SigV4 has enough corner cases (double-encoded paths, header canonicalisation, session
//! tokens) that a hand-written signer would need the same test suite to be trusted.
//!
//! The `host` header is set from the URL before signing, so what is signed is exactly what the
//! pooled client sends. The deployment's extra headers are added before signing (and so are
//! signed); an `authorization` among them wins and the request is not signed.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, Uri};
use http_body_util::Full;
use llmgate_core::DeploymentSpec;

use crate::error::Error;

/// An AWS runtime API the deployment's credentials sign for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// The SigV4 service name.
    name: &'static str,
    /// Whether an `api_key` is sent as a bearer token when there are no AWS credentials.
    bearer_key: bool,
}

/// Bedrock's runtime (`bedrock-runtime.{region}.amazonaws.com`).
pub(crate) const BEDROCK: Service = Service {
    name: "bedrock",
    bearer_key: true,
};

/// SageMaker's runtime (`runtime.sagemaker.{region}.amazonaws.com`).
pub(crate) const SAGEMAKER: Service = Service {
    name: "sagemaker",
    bearer_key: false,
};

/// The `Accept` of a request whose answer is AWS's event stream.
pub(crate) const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// AWS credentials for one signature.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keys<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) secret_access_key: &'a str,
    pub(super) session_token: Option<&'a str>,
}

/// The complete Bedrock request: `POST uri` with `body`, authenticated.
pub(super) fn request(
    dep: &DeploymentSpec,
    uri: Uri,
    stream: bool,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Error> {
    let accept = if stream {
        EVENT_STREAM
    } else {
        "application/json"
    };
    signed(BEDROCK, dep, uri, accept, &[], body)
}

/// The complete upstream request to `service`: `POST uri` with the JSON `body`, `accept`,
/// `extra` headers, then the deployment's own, signed (or with a bearer key, or unsigned, as
/// the module docs say).
pub(crate) fn signed(
    service: Service,
    dep: &DeploymentSpec,
    uri: Uri,
    accept: &'static str,
    extra: &[(http::HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Error> {
    let host = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or_else(|| Error::config(dep, "`api_base` has no host"))?;
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.reserve(5 + extra.len() + dep.headers.len());
    headers.insert(HOST, host);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    // The deployment's headers win over ours (first occurrence replaces, repeats append).
    for (i, (name, value)) in dep.headers.iter().enumerate() {
        if dep.headers[..i].iter().any(|(n, _)| n == name) {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
        }
    }
    if req.headers().contains_key(AUTHORIZATION) {
        return Ok(req);
    }
    if let Some(keys) = keys(dep) {
        let region = region(dep)?;
        sign_with(
            &mut req,
            &body,
            keys,
            &region,
            service.name,
            SystemTime::now(),
        )
        .map_err(|e| Error::config(dep, format!("could not sign the request: {e}")))?;
    } else if let Some(key) = dep
        .api_key
        .as_ref()
        .map(|k| k.expose())
        .filter(|k| !k.is_empty() && service.bearer_key)
    {
        // A Bedrock API key (AWS_BEARER_TOKEN_BEDROCK).
        let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            Error::config(
                dep,
                "`api_key` contains characters that are not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        req.headers_mut().insert(AUTHORIZATION, value);
    } else {
        tracing::debug!(deployment = %dep.id, "no AWS credentials: sending the request unsigned");
    }
    Ok(req)
}

/// The deployment's AWS credentials, when it has both halves.
fn keys(dep: &DeploymentSpec) -> Option<Keys<'_>> {
    let aws = dep.aws.as_ref()?;
    fn non_empty(s: &Option<llmgate_core::Secret>) -> Option<&str> {
        s.as_ref().map(|s| s.expose()).filter(|s| !s.is_empty())
    }
    Some(Keys {
        access_key_id: non_empty(&aws.access_key_id)?,
        secret_access_key: non_empty(&aws.secret_access_key)?,
        session_token: non_empty(&aws.session_token),
    })
}

/// The signing region: `aws_region_name`, else the one in a
/// `bedrock-runtime[-fips].{region}.amazonaws.com[.cn]` or
/// `runtime[-fips].sagemaker.{region}.amazonaws.com[.cn]` host.
pub(crate) fn region(dep: &DeploymentSpec) -> Result<Cow<'_, str>, Error> {
    if let Some(r) = dep
        .aws
        .as_ref()
        .and_then(|a| a.region.as_deref())
        .filter(|r| !r.is_empty())
    {
        return Ok(Cow::Borrowed(r));
    }
    dep.api_base
        .as_deref()
        .and_then(|base| base.parse::<Uri>().ok())
        .and_then(|uri| uri.host().and_then(region_of_host).map(str::to_owned))
        .map(Cow::Owned)
        .ok_or_else(|| {
            Error::config(
                dep,
                "cannot tell the AWS region to sign for: set `aws_region_name` (the `api_base` \
                 host is not bedrock-runtime.{region}.amazonaws.com or \
                 runtime.sagemaker.{region}.amazonaws.com)",
            )
        })
}

fn region_of_host(host: &str) -> Option<&str> {
    let rest = [
        "bedrock-runtime.",
        "bedrock-runtime-fips.",
        "runtime.sagemaker.",
        "runtime-fips.sagemaker.",
    ]
    .iter()
    .find_map(|p| host.strip_prefix(p))?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(region)
}

/// Signs `req` (whose body is `body`) at `time`: adds `x-amz-date`, `authorization` and, with
/// a session token, `x-amz-security-token`.
pub(super) fn sign_with(
    req: &mut Request<Full<Bytes>>,
    body: &[u8],
    keys: Keys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity = Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "llmgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let instructions = {
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            let value = value
                .to_str()
                .map_err(|_| format!("the `{name}` header is not visible ASCII"))?;
            headers.push((name.as_str(), value));
        }
        let uri = req.uri().to_string();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions
    };
    instructions.apply_to_request_http1x(req);
    if let Some(v) = req.headers_mut().get_mut(AUTHORIZATION) {
        v.set_sensitive(true);
    }
    if let Some(v) = req.headers_mut().get_mut("x-amz-security-token") {
        v.set_sensitive(true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use llmgate_core::{AwsParams, ProviderKind, Secret};

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    const SUITE_KEYS: Keys<'static> = Keys {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn suite_request(method: Method) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.method_mut() = method;
        *req.uri_mut() = Uri::from_static("https://example.amazonaws.com/");
        req.headers_mut()
            .insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        req
    }

    /// AWS's SigV4 test suite, case `post-vanilla` (header signature).
    #[test]
    fn post_vanilla() {
        let mut req = suite_request(Method::POST);
        sign_with(
            &mut req,
            b"",
            SUITE_KEYS,
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            req.headers()[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
    }

    /// AWS's SigV4 test suite, case `double-url-encode`: an ARN's `%3A` in the path is signed
    /// as `%253A`, as Bedrock model ids are.
    #[test]
    fn double_url_encode() {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = Uri::from_static(
            "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        );
        req.headers_mut().insert(
            HOST,
            HeaderValue::from_static("lambda.us-east-2.amazonaws.com"),
        );
        // 2021-05-11T15:40:45Z.
        let time = UNIX_EPOCH + Duration::from_secs(1_620_747_645);
        sign_with(&mut req, b"", SUITE_KEYS, "us-east-2", "lambda", time).unwrap();
        assert_eq!(
            req.headers()[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804"
        );
    }

    /// AWS's SigV4 test suite, case `get-vanilla-with-session-token`.
    #[test]
    fn session_token() {
        let mut req = suite_request(Method::GET);
        let keys = Keys {
            session_token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
            ..SUITE_KEYS
        };
        sign_with(&mut req, b"", keys, "us-east-1", "service", suite_time()).unwrap();
        assert_eq!(
            req.headers()["x-amz-security-token"],
            "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
        );
        assert!(req.headers()[AUTHORIZATION].to_str().unwrap().ends_with(
            "SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        ));
    }

    fn dep(region: Option<&str>, base: &str) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, "x");
        d.api_base = Some(base.into());
        d.aws = Some(AwsParams {
            access_key_id: Some(Secret::new("AKID")),
            secret_access_key: Some(Secret::new("secret")),
            session_token: None,
            region: region.map(Into::into),
        });
        d
    }

    #[test]
    fn regions() {
        let d = dep(Some("eu-west-3"), "http://127.0.0.1:1");
        assert_eq!(region(&d).unwrap(), "eu-west-3");
        let d = dep(None, "https://bedrock-runtime.us-west-2.amazonaws.com");
        assert_eq!(region(&d).unwrap(), "us-west-2");
        let d = dep(
            None,
            "https://bedrock-runtime-fips.us-east-1.amazonaws.com/",
        );
        assert_eq!(region(&d).unwrap(), "us-east-1");
        let d = dep(None, "https://bedrock-runtime.cn-north-1.amazonaws.com.cn");
        assert_eq!(region(&d).unwrap(), "cn-north-1");
        let d = dep(None, "https://runtime.sagemaker.eu-central-1.amazonaws.com");
        assert_eq!(region(&d).unwrap(), "eu-central-1");
        for base in [
            "http://127.0.0.1:1",
            "https://bedrock-runtime.amazonaws.com",
        ] {
            assert!(matches!(
                region(&dep(None, base)),
                Err(Error::Config { .. })
            ));
        }
    }

    #[test]
    fn bearer_key_and_deployment_authorization() {
        let uri = || Uri::from_static("http://127.0.0.1:1/model/x/converse");
        let mut d = dep(Some("us-east-1"), "http://127.0.0.1:1");
        d.aws = None;
        d.api_key = Some(Secret::new("bedrock-api-key"));
        let req = request(&d, uri(), false, Bytes::new()).unwrap();
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer bedrock-api-key");
        assert_eq!(req.headers()[HOST], "127.0.0.1:1");
        assert!(req.headers().get("x-amz-date").is_none());

        d.headers.push((
            AUTHORIZATION,
            HeaderValue::from_static("Bearer from-headers"),
        ));
        let req = request(&d, uri(), true, Bytes::new()).unwrap();
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer from-headers");
        assert_eq!(req.headers()[ACCEPT], "application/vnd.amazon.eventstream");

        let d = dep(None, "http://127.0.0.1:1");
        assert!(matches!(
            request(&d, uri(), false, Bytes::new()),
            Err(Error::Config { .. })
        ));
    }
}
