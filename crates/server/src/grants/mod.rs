//! The grant core: the rules of codes, refresh tokens, device codes, issuing and consent, with
//! no HTTP in sight.
//!
//! Each rule is a method of [`Grants`], a view of the store with the clock, the random source
//! and the signing keys injected, so that tests run them with a manual clock and a seeded source
//! (`tests/server/grants.rs`). Each returns a typed [`GrantError`] whose [`GrantError::code`] is
//! the OAuth error code; the HTTP layer only parses, calls and renders.
//!
//! | module | rule |
//! |---|---|
//! | [`code`] | authorization codes: made at consent, redeemed once with PKCE (RFC 6749 §4.1, RFC 7636) |
//! | [`refresh`] | refresh rotation with reuse detection and its retry window (RFC 9700 §4.14.2), in one place |
//! | [`retry`] | the answer kept, sealed under the old token, for a retry after a lost response |
//! | [`device`] | device-code polling (RFC 8628 §3.4-3.5) |
//! | [`issue`] | access-token claims (RFC 9068) and the next refresh token |
//! | [`consent`] | creating or widening a grant when the person approves |
//! | [`records`] | the stored records' JSON and strings as types |

pub mod code;
pub mod consent;
pub mod device;
pub mod issue;
pub mod records;
pub mod refresh;
pub mod retry;

use std::collections::HashMap;
use std::sync::Arc;

use letterlock_jose::keyring::SigningKeyRing;
use letterlock_protocol::{ErrorCode, ScopeSet, Service, TokenRequestError};
use letterlock_store::{GrantRecord, Store};

use crate::clients::Client;
use crate::clock::Clock;
use crate::config::TokenTyp;
use crate::random::{RandomFailed, Randomness};
use crate::settings::Lifetimes;

pub use issue::Issued;

/// What issuing needs besides the store: who signs, with which keys, for how long.
pub struct Issuer<'a> {
    /// The issuer (`iss`).
    pub issuer: &'a letterlock_protocol::Issuer,
    /// The signing keys.
    pub keys: Arc<SigningKeyRing>,
    /// Lifetimes of access tokens, refresh tokens and codes.
    pub lifetimes: Lifetimes,
    /// The `typ` of access tokens per resource.
    pub token_typs: &'a HashMap<String, TokenTyp>,
    /// The configured services and the scopes that reach them: who a token asked without
    /// `resource` is for.
    pub services: &'a [Service],
}

/// The grant core over a store, with the clock and the random source injected.
pub struct Grants<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
    random: &'a Randomness,
    issuer: Issuer<'a>,
    identity: &'a crate::identity::Sources,
}

impl<'a> Grants<'a> {
    /// The core over `store`, at `clock`'s time, drawing secrets from `random`, asking
    /// `identity` again about people its sources proved (at a refresh).
    pub fn new(
        store: &'a Store,
        clock: &'a dyn Clock,
        random: &'a Randomness,
        issuer: Issuer<'a>,
        identity: &'a crate::identity::Sources,
    ) -> Self {
        Self { store, clock, random, issuer, identity }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A live grant of an enabled user, with the user's address, or `invalid_grant`.
    async fn live_grant(&self, grant_id: &str) -> Result<(GrantRecord, String), GrantError> {
        let (grant, address, disabled) =
            self.store.grant_with_user(grant_id).await?.ok_or(GrantError::UnknownGrant)?;
        check_live(&grant, disabled)?;
        Ok((grant, address))
    }
}

/// Who is asking for tokens: the authenticated client, the DPoP key it proved (if it sent a
/// proof) and its address (for the devices page).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    /// The thumbprint of the key of the request's DPoP proof.
    pub jkt: Option<&'a str>,
    /// The client's address, if known.
    pub peer: Option<&'a str>,
}

/// What a token request asks for within what was granted: `scope` (RFC 6749 §3.3) and
/// `resource` (RFC 8707 §2).
#[derive(Debug, Clone, Default)]
pub struct TokenAsk<'a> {
    /// The `scope` parameter, if any.
    pub scope: Option<&'a str>,
    /// Every `resource` parameter.
    pub resources: Vec<&'a str>,
}

/// Why no token was issued. Each variant is one refusal with its own description; [`code`] is
/// its OAuth error code (RFC 6749 §5.2, RFC 8628 §3.5, RFC 9449 §5, RFC 8707 §2).
///
/// [`code`]: GrantError::code
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// No such code.
    #[error("the code is not valid")]
    UnknownCode,
    /// RFC 6749 §4.1.2: the code was used before; its grant is now revoked.
    #[error("the code was used before; its tokens are revoked")]
    CodeReused,
    /// The code's lifetime is over.
    #[error("the code has expired")]
    CodeExpired,
    /// The code was issued to another client.
    #[error("the code was issued to another client")]
    CodeOfAnotherClient,
    /// RFC 6749 §4.1.3: `redirect_uri` must be the authorization request's.
    #[error("redirect_uri differs from the authorization request")]
    RedirectMismatch,
    /// RFC 7636 §4.5: the verifier is required.
    #[error("code_verifier is missing (PKCE)")]
    VerifierMissing,
    /// RFC 7636 §4.6: the verifier does not hash to the challenge.
    #[error("code_verifier does not match the code_challenge")]
    VerifierMismatch,
    /// RFC 9700 §2.1.1: a verifier for a code whose request had no challenge (a PKCE
    /// downgrade, RFC 9700 §4.8.2).
    #[error("code_verifier sent, but the authorization request had no code_challenge")]
    VerifierWithoutChallenge,
    /// RFC 9449 §10: the code is bound to another DPoP key.
    #[error("the code is bound to another DPoP key (dpop_jkt)")]
    CodeBoundToAnotherKey,
    /// No such refresh token.
    #[error("the refresh token is not valid")]
    UnknownRefreshToken,
    /// The refresh token was issued to another client.
    #[error("the refresh token was issued to another client")]
    RefreshTokenOfAnotherClient,
    /// RFC 9700 §4.14.2: a rotated-out refresh token came back; the grant is now revoked.
    #[error("the refresh token was already used; this device's access is revoked")]
    RefreshTokenReused,
    /// The refresh token's lifetime is over.
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    /// RFC 9449 §5: the refresh token is bound to a DPoP key and no proof came.
    #[error("this refresh token is bound to a DPoP key: send a proof")]
    RefreshTokenNeedsProof,
    /// RFC 9449 §5: the proof's key is another.
    #[error("the proof's key is not the one this refresh token is bound to")]
    RefreshTokenBoundToAnotherKey,
    /// No such device code.
    #[error("the device code is not valid")]
    UnknownDeviceCode,
    /// The device code was issued to another client.
    #[error("the device code was issued to another client")]
    DeviceCodeOfAnotherClient,
    /// RFC 8628 §3.5 `expired_token`.
    #[error("the device code has expired; start again")]
    DeviceCodeExpired,
    /// RFC 8628 §3.5 `slow_down`.
    #[error("poll no more than every 5 seconds")]
    SlowDown,
    /// RFC 8628 §3.5 `authorization_pending`.
    #[error("the person has not decided yet")]
    AuthorizationPending,
    /// RFC 8628 §3.5 `access_denied`.
    #[error("the person denied the request")]
    AccessDenied,
    /// The device code was exchanged before.
    #[error("the device code was already used")]
    DeviceCodeUsed,
    /// The grant is gone.
    #[error("the grant does not exist")]
    UnknownGrant,
    /// The person revoked the device.
    #[error("access for this device was revoked")]
    GrantRevoked,
    /// The account is disabled.
    #[error("the account is disabled")]
    UserDisabled,
    /// The identity source that proved the person says they are gone (removed or disabled
    /// there); their grants are revoked.
    #[error("the account is no longer known to its identity source")]
    UserGoneAtSource,
    /// RFC 6749 §3.3: the scope does not parse.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 6749 §6: a scope that was not granted.
    #[error("{0} was not granted")]
    ScopeNotGranted(String),
    /// RFC 8707 §2.2: a resource that was not granted.
    #[error("{0} was not granted to this device")]
    ResourceNotGranted(String),
    /// RFC 8707 §2.2: one resource per token.
    #[error("ask for one resource per token")]
    SeveralResources,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] RandomFailed),
    /// A stored record is corrupt or signing failed: a fault of ours.
    #[error("{0}")]
    Internal(String),
}

impl GrantError {
    /// The OAuth error code of this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::CodeBoundToAnotherKey
            | Self::RefreshTokenNeedsProof
            | Self::RefreshTokenBoundToAnotherKey => ErrorCode::InvalidDpopProof,
            Self::DeviceCodeExpired => ErrorCode::ExpiredToken,
            Self::SlowDown => ErrorCode::SlowDown,
            Self::AuthorizationPending => ErrorCode::AuthorizationPending,
            Self::AccessDenied => ErrorCode::AccessDenied,
            Self::InvalidScope(_) | Self::ScopeNotGranted(_) => ErrorCode::InvalidScope,
            Self::ResourceNotGranted(_) | Self::SeveralResources => ErrorCode::InvalidTarget,
            Self::Store(_) | Self::Random(_) | Self::Internal(_) => ErrorCode::ServerError,
            _ => ErrorCode::InvalidGrant,
        }
    }

    /// True for a fault of ours rather than a refusal of the request.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Random(_) | Self::Internal(_))
    }

    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

fn check_live(grant: &GrantRecord, user_disabled: bool) -> Result<(), GrantError> {
    if grant.revoked_at.is_some() {
        return Err(GrantError::GrantRevoked);
    }
    if user_disabled {
        return Err(GrantError::UserDisabled);
    }
    Ok(())
}

/// What a token request gets within what was granted: the rule is `letterlock-protocol`'s
/// ([`letterlock_protocol::token::narrow`]: a scope that may narrow but never widen, RFC 6749
/// §6; the one service named by `resource`, RFC 8707 §2.2, or without it every granted service
/// the scope reaches). Checked before anything is spent, so that a refused request does not
/// rotate a refresh token.
fn narrow(
    ask: &TokenAsk<'_>,
    granted_scope: &ScopeSet,
    granted_resources: &[String],
    services: &[Service],
) -> Result<(ScopeSet, Vec<String>), GrantError> {
    letterlock_protocol::token::narrow(
        ask.scope,
        &ask.resources,
        granted_scope,
        granted_resources,
        services,
    )
    .map_err(GrantError::from)
}

impl From<TokenRequestError> for GrantError {
    fn from(error: TokenRequestError) -> Self {
        match error {
            TokenRequestError::Scope(error) => Self::InvalidScope(error.to_string()),
            TokenRequestError::ScopeNotGranted(scope) => Self::ScopeNotGranted(scope),
            TokenRequestError::TargetNotGranted(resource) => Self::ResourceNotGranted(resource),
            TokenRequestError::OneResource => Self::SeveralResources,
            // Not a narrowing refusal: the endpoint reads the request before the core runs.
            other => Self::internal(other),
        }
    }
}
