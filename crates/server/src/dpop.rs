//! DPoP at the token endpoint: the proof checks of [`letterlock_jose::dpop`], the replay cache,
//! and server nonces (RFC 9449 §8).

use std::sync::Arc;

use letterlock_jose::dpop;
use letterlock_jose::sealing::Sealer;

use crate::replay::ReplayCache;
use crate::secrets::constant_time_eq;

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

/// The DPoP checks of one request: the sealing keys that make nonces, the replay cache, the
/// nonce policy and the time (see [`crate::AppState::dpop`]).
pub struct DpopChecker<'a> {
    sealer: Arc<Sealer>,
    replay: &'a ReplayCache,
    require_nonce: bool,
    now: i64,
}

impl<'a> DpopChecker<'a> {
    /// A checker at `now`.
    pub fn new(
        sealer: Arc<Sealer>,
        replay: &'a ReplayCache,
        require_nonce: bool,
        now: i64,
    ) -> Self {
        Self { sealer, replay, require_nonce, now }
    }

    /// True when every proof must carry a server nonce (RFC 9449 §8), so that every token
    /// response carries the next one.
    pub fn requires_nonce(&self) -> bool {
        self.require_nonce
    }

    /// The nonce clients should put in their next proof.
    pub fn nonce(&self) -> String {
        self.nonce_for(self.now.div_euclid(NONCE_WINDOW))
    }

    fn nonce_for(&self, window: i64) -> String {
        self.sealer.current_mac(format!("dpop-nonce:{window}").as_bytes()).unwrap_or_default()
    }

    fn nonce_is_valid(&self, nonce: &str) -> bool {
        let window = self.now.div_euclid(NONCE_WINDOW);
        [window, window - 1].into_iter().any(|window| {
            let expected = self.nonce_for(window);
            !expected.is_empty() && constant_time_eq(nonce, &expected)
        })
    }

    /// Checks a DPoP proof for a request (`method`, `url` without query or fragment) and, for a
    /// resource request, the access token it goes with. Returns the key's thumbprint.
    pub async fn check(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, DpopError> {
        let now = self.now;
        let proof = dpop::verify_proof(proof, method, url, access_token, now)
            .map_err(DpopError::Invalid)?;
        if self.require_nonce
            && !proof.nonce.as_deref().is_some_and(|nonce| self.nonce_is_valid(nonce))
        {
            return Err(DpopError::UseNonce);
        }
        let (key, expires_at) = proof.replay_key();
        match self.replay.first_use(&key, expires_at, now).await {
            Ok(true) => Ok(proof.jkt),
            Ok(false) => Err(DpopError::Invalid("the proof was used before".into())),
            Err(error) => {
                tracing::error!(%error, "the DPoP replay cache failed");
                Err(DpopError::Invalid("the proof could not be checked".into()))
            }
        }
    }
}
