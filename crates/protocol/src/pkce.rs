//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` is refused everywhere
//! (RFC 9700 §2.1.1).
//!
//! SHA-256 is taken as an argument (`sha256: impl Fn(&[u8]) -> [u8; 32]`) instead of a
//! dependency: this crate has no cryptography, and both of its users (the server and the
//! client) already link aws-lc-rs, whose digest `letterlock_jose::sha256` wraps. One SHA-256
//! implementation in the binary, and nothing here to audit for side channels but the compare.
//!
//! ```
//! use letterlock_protocol::pkce::{CodeChallenge, CodeVerifier};
//! # fn sha256(bytes: &[u8]) -> [u8; 32] {
//! #     let known = b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
//! #     assert_eq!(bytes, known);
//! #     [19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120,
//! #      173, 109, 241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195]
//! # }
//! // RFC 7636 Appendix B.
//! let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
//! let challenge = CodeChallenge::s256(&verifier, sha256);
//! assert_eq!(challenge.as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//! assert!(challenge.verify(verifier.as_str(), sha256));
//! ```

use std::fmt;

use crate::base64url;

/// The only `code_challenge_method` accepted (RFC 7636 §4.2; RFC 9700 §2.1.1).
pub const S256: &str = "S256";

/// Why a verifier or challenge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// RFC 7636 §4.1: 43 to 128 characters from `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
    #[error("code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)")]
    Verifier,
    /// RFC 7636 §4.2: the S256 challenge is the base64url (no padding) of a SHA-256 digest.
    #[error("code_challenge must be the base64url SHA-256 of the verifier (RFC 7636 §4.2)")]
    Challenge,
}

/// A `code_verifier` (RFC 7636 §4.1): high-entropy, 43 to 128 unreserved characters.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// Checks a verifier's shape (RFC 7636 §4.1).
    pub fn parse(text: &str) -> Result<Self, PkceError> {
        if (43..=128).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(PkceError::Verifier)
        }
    }

    /// A verifier from 32 random bytes, base64url-encoded into 43 characters, as RFC 7636 §4.1
    /// recommends.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(base64url::encode(bytes))
    }

    /// The verifier, as sent in the token request. A secret until then.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("CodeVerifier(<redacted>)")
    }
}

/// An `S256` `code_challenge` (RFC 7636 §4.2): 43 base64url characters of a 32-byte digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Checks a challenge's shape, as an authorization request carries it.
    pub fn parse(text: &str) -> Result<Self, PkceError> {
        if text.len() == 43 && base64url::decode(text).is_some_and(|bytes| bytes.len() == 32) {
            Ok(Self(text.to_owned()))
        } else {
            Err(PkceError::Challenge)
        }
    }

    /// RFC 7636 §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
    pub fn s256(verifier: &CodeVerifier, sha256: impl Fn(&[u8]) -> [u8; 32]) -> Self {
        Self(base64url::encode(sha256(verifier.as_str().as_bytes())))
    }

    /// The challenge as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: the presented verifier is well formed and hashes to this challenge. The
    /// comparison takes the same time wherever the first difference is.
    pub fn verify(&self, presented: &str, sha256: impl Fn(&[u8]) -> [u8; 32]) -> bool {
        let Ok(verifier) = CodeVerifier::parse(presented) else { return false };
        let computed = Self::s256(&verifier, sha256);
        constant_time_eq(computed.0.as_bytes(), self.0.as_bytes())
    }
}

/// Equal bytes, compared without an early exit.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the verifier's SHA-256, as the appendix lists its octets.
    const APPENDIX_B_DIGEST: [u8; 32] = [
        19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173,
        109, 241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195,
    ];
    const APPENDIX_B_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const APPENDIX_B_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// A stand-in digest that knows only Appendix B's verifier; the real SHA-256 is checked in
    /// `letterlock-jose` (`sha256` test) against the same vector.
    fn appendix_b_sha256(bytes: &[u8]) -> [u8; 32] {
        if bytes == APPENDIX_B_VERIFIER.as_bytes() { APPENDIX_B_DIGEST } else { [0; 32] }
    }

    #[test]
    fn rfc_7636_appendix_b() {
        // Appendix B: the 32 random octets, base64url-encoded.
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = CodeVerifier::from_random(octets);
        assert_eq!(verifier.as_str(), APPENDIX_B_VERIFIER);
        let challenge = CodeChallenge::s256(&verifier, appendix_b_sha256);
        assert_eq!(challenge.as_str(), APPENDIX_B_CHALLENGE);
        assert_eq!(CodeChallenge::parse(APPENDIX_B_CHALLENGE), Ok(challenge.clone()));
        assert!(challenge.verify(APPENDIX_B_VERIFIER, appendix_b_sha256));
        assert!(!challenge.verify(&APPENDIX_B_VERIFIER.replace('d', "e"), appendix_b_sha256));
        assert_eq!(format!("{verifier:?}"), "CodeVerifier(<redacted>)");
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(CodeVerifier::parse(&"a".repeat(42)), Err(PkceError::Verifier));
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert_eq!(CodeVerifier::parse(&"a".repeat(129)), Err(PkceError::Verifier));
        assert_eq!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))), Err(PkceError::Verifier));
        assert_eq!(CodeChallenge::parse("short"), Err(PkceError::Challenge));
        assert_eq!(CodeChallenge::parse(&"*".repeat(43)), Err(PkceError::Challenge));
        // A malformed verifier never verifies, even against a challenge computed from it.
        let short = "a".repeat(42);
        let challenge = CodeChallenge(base64url::encode([0u8; 32]));
        assert!(!challenge.verify(&short, |_| [0; 32]));
        assert!(challenge.verify(&"a".repeat(43), |_| [0; 32]));
    }
}
