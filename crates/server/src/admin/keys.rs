//! `letterlock keys list|rotate|retire`: the signing keys (JWS, RFC 7515, published in the
//! JWKS) and the sealing keys of stateless client ids.

use letterlock_jose::Algorithm;
use letterlock_jose::keyring::KeyState;
use letterlock_store::Store;

use super::AdminError;
use crate::config::Config;
use crate::keys;
use crate::settings::seconds;

/// A signing key as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyView {
    /// Its key id (the RFC 7638 thumbprint).
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Where it is in its life at the time asked.
    pub state: KeyState,
    /// When it was made.
    pub created_at: i64,
    /// When it signs (or signed) from.
    pub activates_at: i64,
}

/// Where a sealing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealingState {
    /// The newest key not retired: new client ids are sealed under it.
    Sealing,
    /// Opens the client ids sealed under it; seals nothing new.
    OpeningOnly,
    /// Retired at this time: its client ids are refused.
    Retired(i64),
}

/// A sealing key as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealingKeyView {
    /// Its key id (the part after `ll1.` in a client id).
    pub kid: String,
    /// Its state.
    pub state: SealingState,
    /// When it was made.
    pub created_at: i64,
}

/// Every key, in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList {
    /// The signing keys.
    pub signing: Vec<SigningKeyView>,
    /// The sealing keys.
    pub sealing: Vec<SealingKeyView>,
}

/// Lists the keys and their states at `now`.
pub async fn list(store: &Store, config: &Config, now: i64) -> Result<KeyList, AdminError> {
    let lifetime = seconds(config.lifetimes.access_token_seconds);
    let ring = keys::load_signing_ring(store, lifetime).await?;
    let signing = ring
        .states(now)
        .map(|(key, state)| SigningKeyView {
            kid: key.kid.clone(),
            algorithm: key.key.algorithm(),
            state,
            created_at: key.created_at,
            activates_at: key.activates_at,
        })
        .collect();
    let records = store.sealing_keys().await?;
    // The newest key that is not retired seals; the server picks it the same way.
    let current = records.iter().rev().find(|key| key.retired_at.is_none()).map(|key| &key.kid);
    let sealing = records
        .iter()
        .map(|key| SealingKeyView {
            kid: key.kid.clone(),
            state: match key.retired_at {
                Some(at) => SealingState::Retired(at),
                None if Some(&key.kid) == current => SealingState::Sealing,
                None => SealingState::OpeningOnly,
            },
            created_at: key.created_at,
        })
        .collect();
    Ok(KeyList { signing, sealing })
}

/// A new signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigningKey {
    /// Its key id.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// When it starts signing.
    pub activates_at: i64,
}

/// Adds a signing key, published at once. It signs after `[keys] activation_delay_seconds`, so
/// that verifiers holding a cached JWKS learn it first, or at once with `immediately` (an
/// emergency: those verifiers refuse its tokens until they refetch). `algorithm` is a name
/// (`ES256`, `EdDSA`); `None` takes `[keys] algorithm`.
pub async fn rotate_signing(
    store: &Store,
    config: &Config,
    algorithm: Option<&str>,
    immediately: bool,
    now: i64,
) -> Result<NewSigningKey, AdminError> {
    let name = algorithm.unwrap_or(&config.keys.algorithm);
    let algorithm =
        Algorithm::parse(name).ok_or_else(|| AdminError::UnknownAlgorithm(name.to_owned()))?;
    let delay = seconds(config.keys.activation_delay_seconds);
    let activates_at = if immediately { now } else { now.saturating_add(delay) };
    let kid = keys::add_signing_key(store, algorithm, now, activates_at).await?;
    Ok(NewSigningKey { kid, algorithm, activates_at })
}

/// Adds a sealing key: it seals new client ids at once; older ids keep opening under their own
/// key until it is retired. Returns its key id.
pub async fn rotate_sealing(store: &Store, now: i64) -> Result<String, AdminError> {
    Ok(keys::add_sealing_key(store, now).await?)
}

/// What retiring a sealing key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// How many grants of the client ids sealed under it were revoked.
    pub revoked: u64,
    /// The key made because no unretired key was left, so that registration keeps working.
    pub fresh: Option<String>,
}

/// Retires a sealing key: its client ids are refused from the next key reload and their grants
/// are revoked. Retiring the last unretired key makes a fresh one, so that registration keeps
/// working.
pub async fn retire(store: &Store, kid: &str, now: i64) -> Result<Retired, AdminError> {
    let revoked = keys::retire_sealing_key(store, kid, now)
        .await?
        .ok_or_else(|| AdminError::NoSuchSealingKey(kid.to_owned()))?;
    let fresh = if store.sealing_keys().await?.iter().all(|key| key.retired_at.is_some()) {
        Some(keys::add_sealing_key(store, now).await?)
    } else {
        None
    };
    Ok(Retired { revoked, fresh })
}
