//! The calling key's scope for stored responses.
//!
//! The layer sits before auth (it must parse the body for auth to check the model), so it
//! cannot read the auth layer's `Principal`. It scopes by what the caller presented instead:
//! the lowercase hex SHA-256 of the credential (`Authorization: Bearer …`, else
//! `x-api-key`), which for a virtual key is its token, the key's id everywhere. A caller that
//! auth then refuses never reaches the store's answer; one with another key finds nothing.

use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The scope of the credential in `headers` (the hash of the empty string when there is none:
/// an open gateway's anonymous callers share one scope).
pub fn of(headers: &HeaderMap) -> String {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let secret = bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .unwrap_or("");
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_then_x_api_key() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-1".parse().unwrap());
        let by_x = of(&h);
        h.insert("authorization", "Bearer sk-1".parse().unwrap());
        assert_eq!(of(&h), by_x);
        // SHA-256("sk-1"), as the auth crate hashes a virtual key's secret.
        assert_eq!(by_x.len(), 64);
        assert_ne!(of(&HeaderMap::new()), by_x);
    }
}
