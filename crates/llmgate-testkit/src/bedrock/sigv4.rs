//! An AWS Signature Version 4 verifier, written from AWS's description of the algorithm
//! (not with AWS's signer), so the mock checks the gateway's signatures independently.
//!
//! The canonical request is `method \n canonical URI \n canonical query \n canonical headers
//! \n signed headers \n hex(SHA-256(body))`. The canonical URI encodes each byte of the path
//! as sent except RFC 3986's unreserved characters and `/` (so an encoded `%3A` becomes
//! `%253A`: AWS's double encoding for every service but S3).

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

use crate::server::Recorded;

/// What an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// header says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigV4 {
    /// The access key id.
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope's region.
    pub region: String,
    /// The credential scope's service (`bedrock`).
    pub service: String,
    /// The signed header names, lowercase and sorted.
    pub signed_headers: Vec<String>,
    /// The signature, 64 lowercase hex digits.
    pub signature: String,
}

impl SigV4 {
    /// Parses an `Authorization` header value, checking that it is well-formed.
    ///
    /// # Errors
    ///
    /// What is malformed, in words.
    pub fn parse(authorization: &str) -> Result<Self, String> {
        let rest = authorization
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or("the authorization does not start with `AWS4-HMAC-SHA256 `")?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            } else {
                return Err(format!("unexpected authorization component `{part}`"));
            }
        }
        let credential = credential.ok_or("no Credential=")?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminal] = scope.as_slice() else {
            return Err(format!(
                "Credential=`{credential}` is not KEY/DATE/REGION/SERVICE/aws4_request"
            ));
        };
        if *terminal != "aws4_request" {
            return Err(format!("the credential scope ends with `{terminal}`"));
        }
        if key.is_empty() || region.is_empty() || service.is_empty() {
            return Err(format!("Credential=`{credential}` has an empty part"));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("the credential date `{date}` is not YYYYMMDD"));
        }
        let signed: Vec<String> = signed
            .ok_or("no SignedHeaders=")?
            .split(';')
            .map(str::to_owned)
            .collect();
        let mut sorted = signed.clone();
        sorted.sort();
        sorted.dedup();
        if signed
            .iter()
            .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
            || sorted != signed
        {
            return Err("SignedHeaders= is not a sorted list of lowercase names".to_owned());
        }
        let signature = signature.ok_or("no Signature=")?;
        if signature.len() != 64
            || !signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("Signature= is not 64 lowercase hex digits".to_owned());
        }
        Ok(SigV4 {
            access_key_id: (*key).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            signed_headers: signed,
            signature: signature.to_owned(),
        })
    }
}

/// Checks the SigV4 signature of a recorded request with `secret_access_key`: the
/// `Authorization` header is well-formed, `host` and `x-amz-date` are signed, a session token
/// (if any) is signed, the dates agree, and the signature is the one the request's method,
/// path, query, signed headers and body give.
///
/// # Errors
///
/// Why the request is not validly signed, in words.
pub fn verify_sigv4(req: &Recorded, secret_access_key: &str) -> Result<SigV4, String> {
    verify(
        &req.method,
        &req.path_and_query,
        &req.headers,
        &req.body,
        secret_access_key,
    )
}

pub(crate) fn verify(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<SigV4, String> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .ok_or("no authorization header")?
        .to_str()
        .map_err(|_| "the authorization header is not ASCII")?;
    let sig = SigV4::parse(auth)?;
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-amz-date header")?;
    if amz_date_to_unix(amz_date).is_none() {
        return Err(format!("x-amz-date `{amz_date}` is not YYYYMMDDTHHMMSSZ"));
    }
    if !amz_date.starts_with(&sig.date) {
        return Err("the credential date is not the x-amz-date's day".to_owned());
    }
    for needed in ["host", "x-amz-date"] {
        if !sig.signed_headers.iter().any(|h| h == needed) {
            return Err(format!("`{needed}` is not signed"));
        }
    }
    if headers.contains_key("x-amz-security-token")
        && !sig
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token")
    {
        return Err("the session token is not signed".to_owned());
    }
    let expected = signature(
        method,
        path_and_query,
        headers,
        body,
        &sig,
        amz_date,
        secret,
    )?;
    if expected != sig.signature {
        return Err(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .to_owned(),
        );
    }
    Ok(sig)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut ek = String::new();
            let mut ev = String::new();
            uri_encode(&percent_decode(k), false, &mut ek);
            uri_encode(&percent_decode(v), false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature the request should carry.
fn signature(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    sig: &SigV4,
    amz_date: &str,
    secret: &str,
) -> Result<String, String> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut canonical = String::with_capacity(512);
    canonical.push_str(method.as_str());
    canonical.push('\n');
    uri_encode(
        if path.is_empty() { "/" } else { path },
        true,
        &mut canonical,
    );
    canonical.push('\n');
    canonical.push_str(&canonical_query(query));
    canonical.push('\n');
    for name in &sig.signed_headers {
        let mut values = Vec::new();
        for v in headers.get_all(name.as_str()) {
            let v = v
                .to_str()
                .map_err(|_| format!("the signed header `{name}` is not ASCII"))?;
            values.push(v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if values.is_empty() {
            return Err(format!("the signed header `{name}` was not sent"));
        }
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&sig.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&sha256_hex(body));

    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), sig.date.as_bytes());
    let k_region = hmac(&k_date, sig.region.as_bytes());
    let k_service = hmac(&k_region, sig.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    Ok(hex(&hmac(&k_signing, to_sign.as_bytes())))
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
pub(crate) fn amz_date_to_unix(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// AWS's SigV4 test suite, case `post-vanilla`.
    #[test]
    fn post_vanilla() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
        );
        let sig = verify(&Method::POST, "/", &h, b"", SECRET).unwrap();
        assert_eq!(sig.access_key_id, "AKIDEXAMPLE");
        assert_eq!(sig.region, "us-east-1");
        assert!(verify(&Method::GET, "/", &h, b"", SECRET).is_err());
        assert!(verify(&Method::POST, "/", &h, b"", "wrong").is_err());
    }

    /// AWS's SigV4 test suite, case `double-url-encode`: `%3A` in the path is signed as
    /// `%253A`, as in Bedrock's model ids.
    #[test]
    fn double_url_encode() {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            HeaderValue::from_static("lambda.us-east-2.amazonaws.com"),
        );
        h.insert("x-amz-date", HeaderValue::from_static("20210511T154045Z"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
            ),
        );
        verify(
            &Method::POST,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
            &h,
            b"",
            SECRET,
        )
        .unwrap();
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=A/2015/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/bedrock, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=x-amz-date;host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(SigV4::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date_to_unix("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(amz_date_to_unix("19700101T000000Z"), Some(0));
        assert_eq!(amz_date_to_unix("2015-08-30T12:36"), None);
    }
}
