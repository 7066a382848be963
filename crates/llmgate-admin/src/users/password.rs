//! Users' UI passwords: Argon2id (the `argon2` crate, RustCrypto's, with its recommended
//! parameters), stored as PHC strings; a check takes the same time whether or not the user
//! exists.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The PHC string of `password`, salted with 16 random bytes.
pub(crate) fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

/// Whether `password` matches `phc`. Without a stored hash it still hashes once (against a
/// fixed one), so a wrong user name takes as long as a wrong password.
pub(crate) fn verify(password: &str, phc: Option<&str>) -> bool {
    let parsed = phc.and_then(|p| PasswordHash::new(p).ok());
    match parsed {
        Some(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        None => {
            if let Ok(h) = PasswordHash::new(DUMMY) {
                let _ = Argon2::default().verify_password(password.as_bytes(), &h);
            }
            false
        }
    }
}

/// A hash of nothing anyone knows, checked when there is no user: the same parameters as
/// [`hash`] uses.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4+LYeLdhZcBQcxPVFNflgUCKtyFexBA3+8mOt3Ek9bY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash("correct horse").unwrap();
        assert!(verify("correct horse", Some(&h)));
        assert!(!verify("wrong horse", Some(&h)));
        assert!(!verify("correct horse", None));
        assert_ne!(h, hash("correct horse").unwrap(), "salted");
        assert!(PasswordHash::new(DUMMY).is_ok());
    }
}
