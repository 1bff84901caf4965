//! The server's signing key ring. Every state is derived from two times per key and the clock,
//! so nodes that share the key table agree without coordination:
//!
//! - **pending**: published in the JWKS but not signing yet (`now < activates_at`), so that
//!   verifiers have fetched it before the first token signed with it reaches them;
//! - **active**: the most recently activated key; it signs;
//! - **retiring**: superseded by a newer active key, still published until everything it signed
//!   has expired (`superseded_at + max_token_lifetime`);
//! - **expired**: no longer published.

use aws_lc_rs::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::jws::{self, UnverifiedJws};
use crate::key::{Algorithm, PrivateKey, VerifyingKey};

/// One signing key with its schedule.
#[derive(Debug)]
pub struct SigningKey {
    /// The key id, published as `kid`.
    pub kid: String,
    /// The private key.
    pub key: PrivateKey,
    /// When the key was made (seconds since the epoch).
    pub created_at: i64,
    /// When the key starts signing.
    pub activates_at: i64,
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing.
    Active,
    /// Superseded, published until the given time.
    Retiring {
        /// When the key leaves the JWKS.
        unpublished_at: i64,
    },
    /// No longer published.
    Expired,
}

impl KeyState {
    /// A one-word name for listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retiring { .. } => "retiring",
            Self::Expired => "expired",
        }
    }

    /// True when the key belongs in the JWKS.
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Expired)
    }
}

/// The signing keys, ordered by activation time.
#[derive(Debug)]
pub struct SigningKeyRing {
    keys: Vec<SigningKey>,
    verifying: Vec<Option<VerifyingKey>>,
    max_token_lifetime: i64,
}

impl SigningKeyRing {
    /// A ring from keys in any order; `max_token_lifetime` is the longest lifetime of anything
    /// the keys sign, in seconds.
    pub fn new(mut keys: Vec<SigningKey>, max_token_lifetime: i64) -> Self {
        keys.sort_by_key(|key| (key.activates_at, key.created_at));
        let verifying = keys
            .iter()
            .map(|key| VerifyingKey::from_jwk(&key.key.public_jwk(Some(key.kid.clone()))).ok())
            .collect();
        Self { keys, verifying, max_token_lifetime }
    }

    /// Every key with its state at `now`, in activation order.
    pub fn states(&self, now: i64) -> impl Iterator<Item = (&SigningKey, KeyState)> {
        let activated = self.keys.iter().filter(|key| key.activates_at <= now).count();
        self.keys.iter().enumerate().map(move |(index, key)| {
            let state = if key.activates_at > now {
                KeyState::Pending
            } else if index + 1 == activated {
                KeyState::Active
            } else {
                let superseded_at = self.keys[index + 1].activates_at;
                let unpublished_at = superseded_at.saturating_add(self.max_token_lifetime);
                if now < unpublished_at {
                    KeyState::Retiring { unpublished_at }
                } else {
                    KeyState::Expired
                }
            };
            (key, state)
        })
    }

    /// The key that signs at `now`.
    pub fn active(&self, now: i64) -> Option<&SigningKey> {
        self.states(now).find(|(_, state)| *state == KeyState::Active).map(|(key, _)| key)
    }

    /// The JWK Set to publish at `now` (RFC 7517 §5).
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<Value> = self
            .states(now)
            .filter(|(_, state)| state.is_published())
            .map(|(key, _)| key.key.public_jwk(Some(key.kid.clone())).to_json())
            .collect();
        json!({ "keys": keys })
    }

    /// Signs claims with the active key, with the given `typ` (for example `at+jwt`, RFC 9068).
    pub fn sign(
        &self,
        typ: &str,
        claims: &Map<String, Value>,
        now: i64,
        random: &dyn SecureRandom,
    ) -> Result<String, Error> {
        let key = self.active(now).ok_or(Error::NoKey)?;
        jws::sign(&key.key, Some(&key.kid), typ, claims, random)
    }

    /// Verifies a JWT this ring signed: the header's `typ` must be one of `typs` and its `kid` a
    /// key published at `now`. Returns the claims; checking them is the caller's job.
    pub fn verify(
        &self,
        token: &str,
        typs: &[&str],
        now: i64,
    ) -> Result<Map<String, Value>, Error> {
        let jws = UnverifiedJws::parse(token)?;
        let typ = jws.header().get("typ").and_then(Value::as_str).unwrap_or("");
        if !typs.contains(&typ) {
            return Err(Error::Malformed("the token has the wrong typ"));
        }
        let kid = jws.kid().ok_or(Error::Malformed("the token has no kid"))?.to_owned();
        let key = self
            .states(now)
            .zip(&self.verifying)
            .find(|((key, state), _)| state.is_published() && key.kid == kid)
            .and_then(|(_, verifying)| verifying.clone())
            .ok_or(Error::Signature)?;
        jws.verify(std::slice::from_ref(&key))
    }

    /// The algorithm of the active key.
    pub fn active_algorithm(&self, now: i64) -> Option<Algorithm> {
        self.active(now).map(|key| key.key.algorithm())
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;

    use super::*;

    fn key(kid: &str, activates_at: i64) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            key: PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap(),
            created_at: activates_at - 10,
            activates_at,
        }
    }

    fn published(ring: &SigningKeyRing, now: i64) -> Vec<String> {
        ring.jwks(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn rotation_publishes_before_signing_and_after_retiring() {
        // a activates at 100; b is added at 1000 and activates at 1600; tokens live 300 s.
        let ring = SigningKeyRing::new(vec![key("b", 1600), key("a", 100)], 300);
        assert_eq!(ring.active(1000).unwrap().kid, "a");
        assert_eq!(published(&ring, 1000), ["a", "b"], "b is published before it signs");
        assert_eq!(ring.active(1600).unwrap().kid, "b");
        assert_eq!(published(&ring, 1899), ["a", "b"], "a stays while its tokens may live");
        assert_eq!(published(&ring, 1900), ["b"]);
        let states: Vec<&str> = ring.states(1700).map(|(_, state)| state.name()).collect();
        assert_eq!(states, ["retiring", "active"]);
        assert!(ring.active(50).is_none());
    }

    #[test]
    fn signed_tokens_verify_against_the_published_keys() {
        let ring = SigningKeyRing::new(vec![key("a", 0)], 300);
        let claims = json!({"sub": "alice"}).as_object().cloned().unwrap();
        let token = ring.sign("at+jwt", &claims, 10, &SystemRandom::new()).unwrap();
        let jwks = ring.jwks(10);
        let jwk = letterlock_protocol::PublicJwk::from_json(&jwks["keys"][0]).unwrap();
        let verifying = VerifyingKey::from_jwk(&jwk).unwrap();
        let parsed = UnverifiedJws::parse(&token).unwrap();
        assert_eq!(parsed.header()["typ"], "at+jwt");
        assert_eq!(parsed.verify(&[verifying]).unwrap(), claims);
        assert_eq!(ring.verify(&token, &["at+jwt"], 10).unwrap(), claims);
        assert!(ring.verify(&token, &["JWT"], 10).is_err(), "typ is checked");
        let other = SigningKeyRing::new(vec![key("a", 0)], 300);
        assert!(other.verify(&token, &["at+jwt"], 10).is_err(), "another key with the same kid");
    }
}
