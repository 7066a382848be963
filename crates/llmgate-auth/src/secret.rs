//! Key secrets: generated from the OS's random source, stored only as their SHA-256.

use sha2::{Digest, Sha256};

/// Characters of a generated secret after `sk-`.
const SECRET_LEN: usize = 32;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new secret, `sk-` and 32 characters from `[0-9A-Za-z]` (190 bits), drawn from the operating
/// system's random source.
pub fn generate_secret() -> String {
    let mut out = String::with_capacity(3 + SECRET_LEN);
    out.push_str("sk-");
    while out.len() < 3 + SECRET_LEN {
        let mut buf = [0u8; 64];
        // The OS source failing is not recoverable; fall back to nothing weaker.
        if getrandom::fill(&mut buf).is_err() {
            continue;
        }
        // Rejection sampling keeps every character equally likely: 248 = 4 * 62.
        for b in buf.into_iter().filter(|b| *b < 248) {
            if out.len() == 3 + SECRET_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    out
}

/// The token a secret is stored and looked up by: SHA-256, lowercase hex.
pub fn hash_key(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What a person sees of a secret: `sk-...` and its last four characters.
pub fn key_name(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_well_formed() {
        let a = generate_secret();
        assert_eq!(a.len(), 35);
        assert!(a.starts_with("sk-") && a[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, generate_secret());
        assert_eq!(key_name("sk-abcdef1234"), "sk-...1234");
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
