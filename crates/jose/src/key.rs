//! Signing keys (private) and verifying keys (public) for ES256 and EdDSA, on aws-lc-rs.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use base64::Engine as _;
use letterlock_protocol::{Curve, PublicJwk, base64url};

use crate::Error;

/// A JWS algorithm Letterlock signs or verifies with. There is deliberately no `none`, no HMAC
/// and no RSA: every signer is an installation, a vendor or this server, all of which hold
/// asymmetric elliptic-curve keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
    /// Ed25519 (RFC 8037 §3.1).
    EdDsa,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses an `alg` value from the allow-list; `None` for everything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A private signing key. Its `Debug` output never shows key material.
pub struct PrivateKey {
    pair: Pair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Makes a new key.
    pub fn generate(algorithm: Algorithm, random: &dyn SecureRandom) -> Result<Self, Error> {
        let pkcs8 = match algorithm {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, random)
                    .map_err(|_| Error::KeyGeneration)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(random)
                .map_err(|_| Error::KeyGeneration)?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8(algorithm, &pkcs8)
    }

    /// Loads a PKCS#8 DER key of the given algorithm.
    pub fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<Self, Error> {
        let pair = match algorithm {
            Algorithm::Es256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| Error::KeyEncoding)?,
            ),
            Algorithm::EdDsa => {
                Pair::EdDsa(Ed25519KeyPair::from_pkcs8(der).map_err(|_| Error::KeyEncoding)?)
            }
        };
        Ok(Self { pair, pkcs8: der.to_vec() })
    }

    /// Loads a PKCS#8 key in PEM (`-----BEGIN PRIVATE KEY-----`), finding its algorithm.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|line| *line != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|line| *line != "-----END PRIVATE KEY-----")
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| Error::KeyEncoding)?;
        Self::from_pkcs8(Algorithm::Es256, &der)
            .or_else(|_| Self::from_pkcs8(Algorithm::EdDsa, &der))
    }

    /// The key in PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    /// The key in PKCS#8 DER, for storage.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Es256(_) => Algorithm::Es256,
            Pair::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The public half as a JWK with the given key id.
    pub fn public_jwk(&self, kid: Option<String>) -> PublicJwk {
        match &self.pair {
            Pair::Es256(pair) => {
                // An uncompressed point: 0x04, then x and y of 32 bytes each (SEC 1 §2.3.3).
                let point = pair.public_key().as_ref();
                PublicJwk {
                    crv: Curve::P256,
                    x: base64url::encode(&point[1..33]),
                    y: Some(base64url::encode(&point[33..65])),
                    kid,
                }
            }
            Pair::EdDsa(pair) => PublicJwk {
                crv: Curve::Ed25519,
                x: base64url::encode(pair.public_key().as_ref()),
                y: None,
                kid,
            },
        }
    }

    /// Signs a message, returning the JWS signature bytes (R || S for ES256, RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8], random: &dyn SecureRandom) -> Result<Vec<u8>, Error> {
        match &self.pair {
            Pair::Es256(pair) => {
                Ok(pair.sign(random, message).map_err(|_| Error::Signing)?.as_ref().to_vec())
            }
            Pair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// A public key ready to verify signatures, parsed once (a P-256 point off the curve is refused
/// here, not at first use).
#[derive(Clone)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    kid: Option<String>,
    key: ParsedPublicKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish()
    }
}

impl VerifyingKey {
    /// Parses a structurally checked JWK into a verifying key, checking the point.
    pub fn from_jwk(jwk: &PublicJwk) -> Result<Self, Error> {
        let x = base64url::decode(&jwk.x).ok_or(Error::KeyEncoding)?;
        let (algorithm, key) = match jwk.crv {
            Curve::P256 => {
                let y = jwk.y.as_deref().and_then(base64url::decode).ok_or(Error::KeyEncoding)?;
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .map_err(|_| Error::KeyEncoding)?;
                (Algorithm::Es256, key)
            }
            Curve::Ed25519 => (
                Algorithm::EdDsa,
                ParsedPublicKey::new(&ED25519, x).map_err(|_| Error::KeyEncoding)?,
            ),
        };
        Ok(Self { algorithm, kid: jwk.kid.clone(), key })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// True when the signature is valid for the message under this key and algorithm.
    pub fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        algorithm == self.algorithm && self.key.verify_sig(message, signature).is_ok()
    }
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url): the hash of the required members in
/// lexicographic order with no white space.
pub fn thumbprint(jwk: &PublicJwk) -> String {
    let canonical = match jwk.crv {
        Curve::P256 => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.x,
            jwk.y.as_deref().unwrap_or_default()
        ),
        Curve::Ed25519 => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, jwk.x),
    };
    base64url::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// The public key as a SubjectPublicKeyInfo PEM (RFC 5480), the form Dovecot's key dictionary
/// reads; `None` for Ed25519, which Dovecot 2.3 does not verify.
pub fn p256_spki_pem(jwk: &PublicJwk) -> Option<String> {
    if jwk.crv != Curve::P256 {
        return None;
    }
    let x = base64url::decode(&jwk.x)?;
    let y = base64url::decode(jwk.y.as_deref()?)?;
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0x04 || x || y } }
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    der.extend_from_slice(&x);
    der.extend_from_slice(&y);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Some(pem)
}

/// Checks that a JWK is a usable public key for its curve's algorithm.
pub fn check_public_key(jwk: &PublicJwk) -> Result<(), Error> {
    VerifyingKey::from_jwk(jwk).map(|_| ())
}

impl From<Curve> for Algorithm {
    fn from(curve: Curve) -> Self {
        match curve {
            Curve::P256 => Self::Es256,
            Curve::Ed25519 => Self::EdDsa,
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;

    use super::*;

    #[test]
    fn rfc8037_appendix_a3_thumbprint() {
        let jwk = PublicJwk {
            crv: Curve::Ed25519,
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            y: None,
            kid: None,
        };
        assert_eq!(thumbprint(&jwk), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn sign_verify_and_pem_round_trip_for_both_algorithms() {
        let random = SystemRandom::new();
        for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
            let key = PrivateKey::generate(algorithm, &random).unwrap();
            let reloaded = PrivateKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(reloaded.algorithm(), algorithm);
            let signature = reloaded.sign(b"message", &random).unwrap();
            let verifying = VerifyingKey::from_jwk(&key.public_jwk(None)).unwrap();
            assert!(verifying.verify(algorithm, b"message", &signature));
            assert!(!verifying.verify(algorithm, b"massage", &signature));
            assert_eq!(Algorithm::from(key.public_jwk(None).crv), algorithm);
        }
    }

    #[test]
    fn spki_pem_of_a_p256_key() {
        let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let pem = p256_spki_pem(&key.public_jwk(None)).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        assert_eq!(der.len(), 91, "a P-256 SubjectPublicKeyInfo is 91 bytes");
        let ed = PrivateKey::generate(Algorithm::EdDsa, &SystemRandom::new()).unwrap();
        assert_eq!(p256_spki_pem(&ed.public_jwk(None)), None);
    }

    #[test]
    fn refuses_a_point_off_the_curve() {
        let jwk = PublicJwk {
            crv: Curve::P256,
            x: base64url::encode([1u8; 32]),
            y: Some(base64url::encode([2u8; 32])),
            kid: None,
        };
        assert!(matches!(check_public_key(&jwk), Err(Error::KeyEncoding)));
    }
}
