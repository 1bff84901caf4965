//! DPoP proofs (RFC 9449 §4.3) and server nonces (§8).

use aws_lc_rs::digest;
use letterlock_jose::VerifyingKey;
use letterlock_jose::jws::UnverifiedJws;
use letterlock_jose::key::thumbprint;
use letterlock_protocol::{PublicJwk, base64url};
use serde_json::Value;

use crate::accounts::same;
use crate::state::AppState;

/// How old a proof's `iat` may be, in seconds. With server nonces the real window is the
/// nonce's; without them, this and the `jti` cache bound replay.
pub const PROOF_MAX_AGE: i64 = 300;
/// How far in the future a proof's `iat` may be (clock skew), in seconds.
pub const PROOF_MAX_SKEW: i64 = 60;
/// A nonce is valid in the window it was made in and the next: 5 to 10 minutes.
const NONCE_WINDOW: i64 = 300;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopError {
    /// `invalid_dpop_proof`, with the reason.
    Invalid(String),
    /// `use_dpop_nonce`: retry with the nonce in the `DPoP-Nonce` header.
    UseNonce,
}

impl AppState {
    /// The nonce clients should put in their next proof.
    pub fn dpop_nonce(&self) -> String {
        self.nonce_for(self.now().div_euclid(NONCE_WINDOW))
    }

    fn nonce_for(&self, window: i64) -> String {
        self.sealer().current_mac(format!("dpop-nonce:{window}").as_bytes()).unwrap_or_default()
    }

    fn nonce_is_valid(&self, nonce: &str) -> bool {
        let window = self.now().div_euclid(NONCE_WINDOW);
        [window, window - 1].into_iter().any(|window| {
            let expected = self.nonce_for(window);
            !expected.is_empty() && same(nonce, &expected)
        })
    }

    /// Checks a DPoP proof for a request (`method`, `url` without query or fragment) and, for a
    /// resource request, the access token it goes with. Returns the key's thumbprint.
    pub async fn check_dpop(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, DpopError> {
        let invalid = |reason: &str| DpopError::Invalid(reason.to_owned());
        let jws =
            UnverifiedJws::parse(proof).map_err(|error| DpopError::Invalid(error.to_string()))?;
        if jws.header().get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
            return Err(invalid("the proof's typ must be dpop+jwt"));
        }
        // The key must be public: PublicJwk refuses `d` and every other private member.
        let jwk = jws.header().get("jwk").ok_or_else(|| invalid("the proof has no jwk header"))?;
        let jwk = PublicJwk::from_json(jwk)
            .map_err(|error| DpopError::Invalid(format!("the proof's jwk: {error}")))?;
        let key =
            VerifyingKey::from_jwk(&jwk).map_err(|error| DpopError::Invalid(error.to_string()))?;
        if key.algorithm() != jws.algorithm() {
            return Err(invalid("the proof's alg does not fit its key"));
        }
        let claims = jws
            .verify(std::slice::from_ref(&key))
            .map_err(|_| invalid("the proof's signature does not verify"))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("htm") != Some(method) {
            return Err(invalid("the proof's htm does not match the request method"));
        }
        let htu = text("htu").ok_or_else(|| invalid("the proof has no htu"))?;
        let htu = htu.split(['?', '#']).next().unwrap_or(htu);
        if htu != url {
            return Err(invalid("the proof's htu does not match the request URL"));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("the proof has no iat"))?;
        let now = self.now();
        if iat < now - PROOF_MAX_AGE || iat > now + PROOF_MAX_SKEW {
            return Err(invalid("the proof's iat is too old or in the future"));
        }
        let jti = text("jti")
            .filter(|jti| !jti.is_empty() && jti.len() <= 256)
            .ok_or_else(|| invalid("the proof needs a jti"))?;
        if let Some(access_token) = access_token {
            let ath = base64url::encode(digest::digest(&digest::SHA256, access_token.as_bytes()));
            if text("ath") != Some(ath.as_str()) {
                return Err(invalid("the proof's ath does not match the access token"));
            }
        }
        if self.0.dpop_require_nonce
            && !text("nonce").is_some_and(|nonce| self.nonce_is_valid(nonce))
        {
            return Err(DpopError::UseNonce);
        }
        let jkt = thumbprint(&jwk);
        let key = format!("dpop:{}", crate::accounts::hash_secret(&format!("{jkt}:{jti}")));
        match self.0.replay.first_use(&key, iat + PROOF_MAX_AGE + PROOF_MAX_SKEW, now).await {
            Ok(true) => Ok(jkt),
            Ok(false) => Err(invalid("the proof was used before")),
            Err(error) => {
                tracing::error!(%error, "the DPoP replay cache failed");
                Err(invalid("the proof could not be checked"))
            }
        }
    }
}
