//! Client assertions (RFC 7523 §2.2, `private_key_jwt`): how an installation proves, with its own
//! key, that it is the client it registered as. [`sign`] is the client's side; [`parse`] and
//! [`UnverifiedAssertion::verify`] are the server's (RFC 7523 §3), in two steps because the
//! server must find the client's registered keys by the `iss` the assertion names. Remembering
//! `jti`s against replay is the caller's (it needs storage shared by every node), like DPoP's.
//!
//! ```
//! use aws_lc_rs::rand::SystemRandom;
//! use letterlock_jose::{Algorithm, PrivateKey, assertion};
//!
//! let random = SystemRandom::new();
//! let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
//! let jwt = assertion::sign(&key, "client-1", "https://issuer.example", 1_800_000_000, &random).unwrap();
//! assert_eq!(jwt.split('.').count(), 3);
//! ```

use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::base64url;
use serde_json::{Map, Value};

use crate::Error;
use crate::jws::UnverifiedJws;
use crate::key::{PrivateKey, VerifyingKey};

/// How long an assertion is good for, in seconds: one token request.
pub const LIFETIME: i64 = 60;

/// The longest lifetime a server accepts, in seconds: `exp` at most this far ahead. RFC 7523
/// §3 asks the server to bound how far in the future `exp` may be; five minutes is ample for one
/// request.
pub const MAX_LIFETIME: i64 = 300;

/// How long ago an assertion may have expired and still be accepted, in seconds: clock skew
/// between the installation and the server.
pub const SKEW_SECONDS: i64 = 30;

/// The longest `jti` accepted, in characters; the caller stores it against replay.
pub const MAX_JTI_CHARS: usize = 256;

/// Why a client assertion was refused. Every variant is `invalid_client` (RFC 7523 §3.2); each
/// message is the `error_description` the server sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// Not a compact JWS with an allowed algorithm and JSON parts.
    #[error("client_assertion: {0}")]
    Malformed(Error),
    /// RFC 7523 §3 item 1: no `iss`.
    #[error("client_assertion has no iss")]
    NoIssuer,
    /// RFC 7523 §3 items 1 and 2: for client authentication `iss` and `sub` are the client id
    /// (and equal the form's `client_id` if it was sent).
    #[error("client_assertion's iss and sub must be the client id")]
    Subject,
    /// RFC 7523 §3 item 9: the signature is not by one of the client's registered keys.
    #[error("client_assertion is not signed by this installation's key")]
    Signature,
    /// RFC 7523 §3 item 3: `aud` names neither the issuer nor the token endpoint.
    #[error("client_assertion's aud must be the issuer or the token endpoint")]
    Audience,
    /// RFC 7523 §3 item 4: no `exp`.
    #[error("client_assertion has no exp")]
    NoExpiry,
    /// RFC 7523 §3 item 4: expired (beyond [`SKEW_SECONDS`]) or `exp` more than
    /// [`MAX_LIFETIME`] ahead.
    #[error("client_assertion has expired or lives too long (at most 5 minutes)")]
    Lifetime,
    /// RFC 7523 §3 item 7: no usable `jti` (empty, or longer than [`MAX_JTI_CHARS`]).
    #[error("client_assertion needs a jti")]
    NoJti,
}

/// An assertion whose `iss` and `sub` were read, not yet verified.
pub struct UnverifiedAssertion<'a> {
    jws: UnverifiedJws<'a>,
    client_id: String,
}

/// What a verified assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The client id (`iss` and `sub`).
    pub client_id: String,
    /// The `jti`, to remember until [`VerifiedAssertion::expires_at`] against replay
    /// (RFC 7523 §3 item 7).
    pub jti: String,
    /// `exp`.
    pub expires_at: i64,
}

/// Reads an assertion's client id (RFC 7523 §3 items 1 and 2): `iss` present, `sub` equal to
/// it, and the form's `client_id`, if sent, equal to it too.
pub fn parse<'a>(
    assertion: &'a str,
    client_id: Option<&str>,
) -> Result<UnverifiedAssertion<'a>, AssertionError> {
    let jws = UnverifiedJws::parse(assertion).map_err(AssertionError::Malformed)?;
    let claims = jws.unverified_claims();
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let issuer = text("iss").ok_or(AssertionError::NoIssuer)?.to_owned();
    if text("sub") != Some(issuer.as_str()) || client_id.is_some_and(|id| id != issuer) {
        return Err(AssertionError::Subject);
    }
    Ok(UnverifiedAssertion { jws, client_id: issuer })
}

impl UnverifiedAssertion<'_> {
    /// The client id the assertion claims: look up its registered keys with it.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// RFC 7523 §3 at `now`: the signature is by one of `keys`, `aud` names one of
    /// `audiences` (the issuer, the token endpoint), `exp` is neither past (beyond
    /// [`SKEW_SECONDS`]) nor more than [`MAX_LIFETIME`] ahead, and there is a `jti`.
    pub fn verify(
        self,
        keys: &[VerifyingKey],
        audiences: &[&str],
        now: i64,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let claims = self.jws.verify(keys).map_err(|_| AssertionError::Signature)?;
        let named: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !named.iter().any(|audience| audiences.contains(audience)) {
            return Err(AssertionError::Audience);
        }
        let expires_at =
            claims.get("exp").and_then(Value::as_i64).ok_or(AssertionError::NoExpiry)?;
        if expires_at <= now - SKEW_SECONDS || expires_at > now + MAX_LIFETIME {
            return Err(AssertionError::Lifetime);
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_CHARS)
            .ok_or(AssertionError::NoJti)?;
        Ok(VerifiedAssertion { client_id: self.client_id, jti: jti.to_owned(), expires_at })
    }
}

/// Signs an assertion that `client_id` (as `iss` and `sub`) sends to `audience` (the issuer) at
/// `now`, with a fresh `jti`. The key id is the key's RFC 7638 thumbprint, which is also the
/// `kid` the installation registers its public key under.
pub fn sign(
    key: &PrivateKey,
    client_id: &str,
    audience: &str,
    now: i64,
    random: &dyn SecureRandom,
) -> Result<String, Error> {
    let mut jti = [0u8; 16];
    random.fill(&mut jti).map_err(|_| Error::Signing)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + LIFETIME).into());
    claims.insert("jti".into(), base64url::encode(jti).into());
    let kid = crate::key::thumbprint(&key.public_jwk(None));
    crate::jws::sign(key, Some(&kid), "JWT", &claims, random)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use serde_json::json;

    use super::*;
    use crate::Algorithm;

    const ISSUER: &str = "https://auth.example.com";
    const TOKEN_ENDPOINT: &str = "https://auth.example.com/token";
    const NOW: i64 = 1_800_000_000;

    fn key() -> PrivateKey {
        PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap()
    }

    fn verifying(key: &PrivateKey) -> Vec<VerifyingKey> {
        vec![VerifyingKey::from_jwk(&key.public_jwk(None)).unwrap()]
    }

    fn custom(key: &PrivateKey, changes: Value) -> String {
        let mut claims = json!({"iss": "c1", "sub": "c1", "aud": ISSUER, "iat": NOW,
                                "exp": NOW + 60, "jti": "j1"});
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        crate::jws::sign(key, None, "JWT", claims.as_object().unwrap(), &SystemRandom::new())
            .unwrap()
    }

    fn check(
        assertion: &str,
        client_id: Option<&str>,
        keys: &[VerifyingKey],
    ) -> Result<VerifiedAssertion, AssertionError> {
        parse(assertion, client_id)?.verify(keys, &[ISSUER, TOKEN_ENDPOINT], NOW)
    }

    #[test]
    fn what_sign_makes_verify_accepts() {
        let key = key();
        let jwt = sign(&key, "c1", ISSUER, NOW, &SystemRandom::new()).unwrap();
        let unverified = parse(&jwt, Some("c1")).unwrap();
        assert_eq!(unverified.client_id(), "c1");
        let verified = unverified.verify(&verifying(&key), &[ISSUER, TOKEN_ENDPOINT], NOW).unwrap();
        assert_eq!(verified.client_id, "c1");
        assert_eq!(verified.expires_at, NOW + LIFETIME);
        assert!(!verified.jti.is_empty());
        let to_endpoint = custom(&key, json!({"aud": ["x", TOKEN_ENDPOINT]}));
        assert!(check(&to_endpoint, None, &verifying(&key)).is_ok());
    }

    #[test]
    fn every_refusal() {
        let key = key();
        let keys = verifying(&key);
        use AssertionError as E;
        assert!(matches!(check("garbage", None, &keys), Err(E::Malformed(_))));
        assert_eq!(check(&custom(&key, json!({"iss": null})), None, &keys), Err(E::NoIssuer));
        assert_eq!(check(&custom(&key, json!({"sub": "c2"})), None, &keys), Err(E::Subject));
        assert_eq!(check(&custom(&key, json!({})), Some("c2"), &keys), Err(E::Subject));
        assert_eq!(
            check(&custom(&key, json!({})), None, &verifying(&self::key())),
            Err(E::Signature)
        );
        assert_eq!(
            check(&custom(&key, json!({"aud": "https://other"})), None, &keys),
            Err(E::Audience)
        );
        assert_eq!(check(&custom(&key, json!({"aud": 5})), None, &keys), Err(E::Audience));
        assert_eq!(check(&custom(&key, json!({"exp": null})), None, &keys), Err(E::NoExpiry));
        assert_eq!(check(&custom(&key, json!({"exp": NOW - 30})), None, &keys), Err(E::Lifetime));
        assert!(check(&custom(&key, json!({"exp": NOW - 29})), None, &keys).is_ok());
        assert_eq!(check(&custom(&key, json!({"exp": NOW + 301})), None, &keys), Err(E::Lifetime));
        assert!(check(&custom(&key, json!({"exp": NOW + 300})), None, &keys).is_ok());
        assert_eq!(check(&custom(&key, json!({"jti": null})), None, &keys), Err(E::NoJti));
        assert_eq!(check(&custom(&key, json!({"jti": ""})), None, &keys), Err(E::NoJti));
        assert_eq!(
            check(&custom(&key, json!({"jti": "j".repeat(257)})), None, &keys),
            Err(E::NoJti)
        );
        assert_eq!(
            E::Lifetime.to_string(),
            "client_assertion has expired or lives too long (at most 5 minutes)"
        );
    }
}
