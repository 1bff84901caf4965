//! Handling secrets once they exist: how they are kept (hashed) and compared (in constant time).
//! Where they come from is [`crate::random::Randomness`], which fails closed.

use aws_lc_rs::digest;
use letterlock_protocol::base64url;

/// SHA-256, base64url: how session ids, codes, refresh tokens, registration access tokens and
/// stored client secrets are kept. They are 256 random bits, so a plain SHA-256 is enough to make
/// them useless to someone who reads the database.
pub fn hash_secret(secret: &str) -> String {
    base64url::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Compares a presented secret (a token, a CSRF token, a hash) with the expected one in constant
/// time, so that the time taken does not reveal how many leading characters matched.
pub fn constant_time_eq(presented: &str, expected: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected.as_bytes())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_base64url_sha256_and_equality_is_exact() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(hash_secret("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert!(constant_time_eq("secret", "secret"));
        assert!(!constant_time_eq("secret", "secreT"));
        assert!(!constant_time_eq("secret", "secrets"));
    }
}
