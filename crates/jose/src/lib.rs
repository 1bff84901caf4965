//! Letterlock's narrow JOSE layer, on aws-lc-rs.
//!
//! - [`key`]: ES256 and EdDSA private keys, parsed public keys, RFC 7638 thumbprints;
//! - [`access`]: checking RFC 9068 access tokens at a resource, from the issuer's JWKS;
//! - [`dpop`]: DPoP proofs (RFC 9449), checked at the token endpoint and at resources;
//! - [`jws`]: compact JWS with the algorithm allow-list checked before anything else;
//! - [`keyring`]: the server's signing keys, published before they sign and after they retire;
//! - [`sealing`]: stateless client ids, the registration sealed with AES-256-GCM;
//! - [`statement`]: software statements signed by client vendors;
//! - [`upstream`]: ID tokens of an upstream OpenID provider, checked against its JWKS.
//!
//! There is no `alg: none` and no HMAC anywhere in this crate, and RSA only in [`upstream`],
//! which verifies what another provider signed. Randomness is passed in.
//!
//! ```
//! use aws_lc_rs::rand::SystemRandom;
//! use letterlock_jose::sealing::{Sealer, SealingKey};
//!
//! let sealer = Sealer::new(vec![SealingKey::new("k1", &[7; 32], false).unwrap()]);
//! let client_id = sealer.seal(b"{}", "https://auth.example.com", &SystemRandom::new()).unwrap();
//! assert_eq!(sealer.open(&client_id, "https://auth.example.com").unwrap(), b"{}");
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod assertion;
pub mod dpop;
pub mod jws;
pub mod key;
pub mod keyring;
pub mod sealing;
pub mod statement;
pub mod upstream;

pub use key::{Algorithm, PrivateKey, VerifyingKey};

/// A value the peer chose (a `kid`, an `alg`, a vendor's name), as errors carry it into logs and
/// error descriptions: at most 64 characters, with control characters (CR and LF among them)
/// escaped, so that it can neither forge a log line nor fill a log.
pub fn shown(value: &str) -> String {
    value.chars().take(64).flat_map(char::escape_debug).collect()
}

/// SHA-256 of `bytes` (FIPS 180-4), for the rules in `letterlock-protocol` that take the
/// digest as an argument (PKCE's S256, RFC 7636 §4.2).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// What can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The system random generator failed.
    #[error("the random number generator failed")]
    Random,
    /// Key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// Key material is malformed, or a public point is not on its curve.
    #[error("the key is malformed or not a valid public key for its curve")]
    KeyEncoding,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// Sealing failed.
    #[error("sealing failed")]
    Sealing,
    /// No key is usable for this operation.
    #[error("no usable key in the key ring")]
    NoKey,
    /// A JWS is malformed.
    #[error("{0}")]
    Malformed(&'static str),
    /// A JWS names an algorithm outside the allow-list (ES256, EdDSA).
    #[error("the algorithm '{0}' is not accepted; use ES256 or EdDSA")]
    Algorithm(String),
    /// A JWS signature does not verify.
    #[error("the signature does not verify")]
    Signature,
}

#[cfg(test)]
mod tests {
    use letterlock_protocol::pkce::{CodeChallenge, CodeVerifier};

    /// RFC 7636 Appendix B, with the real SHA-256.
    #[test]
    fn sha256_gives_rfc_7636_appendix_bs_challenge() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge = CodeChallenge::s256(&verifier, super::sha256);
        assert_eq!(challenge.as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(challenge.verify(verifier.as_str(), super::sha256));
    }
}
