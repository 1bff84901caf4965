//! The server's keys in storage: creating the first ones, rotating, retiring, loading.

use letterlock_jose::keyring::{SigningKey, SigningKeyRing};
use letterlock_jose::sealing::{Sealer, SealingKey};
use letterlock_jose::{Algorithm, PrivateKey, key::thumbprint};
use letterlock_protocol::base64url;
use letterlock_store::{SealingKeyRecord, SigningKeyRecord, Store};

use crate::ServerError;
use crate::random::Randomness;

/// Makes a signing key and stores it; it signs from `activates_at`. Returns its key id.
pub async fn add_signing_key(
    store: &Store,
    algorithm: Algorithm,
    now: i64,
    activates_at: i64,
) -> Result<String, ServerError> {
    add_signing_key_with(store, algorithm, now, activates_at, &Randomness::system()).await
}

/// [`add_signing_key`] with the key drawn from `random`. aws-lc-rs generates the key from its
/// own `SecureRandom` (a trait it seals), so the draw goes through
/// [`Randomness::for_crypto`], the system generator, which fails closed.
pub async fn add_signing_key_with(
    store: &Store,
    algorithm: Algorithm,
    now: i64,
    activates_at: i64,
    random: &Randomness,
) -> Result<String, ServerError> {
    let key = PrivateKey::generate(algorithm, random.for_crypto())?;
    let kid = thumbprint(&key.public_jwk(None));
    store
        .insert_signing_key(&SigningKeyRecord {
            kid: kid.clone(),
            algorithm: algorithm.as_str().to_owned(),
            private_key: key.pkcs8_der().to_vec(),
            created_at: now,
            activates_at,
        })
        .await?;
    Ok(kid)
}

/// Makes a sealing key and stores it; it seals from now on. Returns its key id.
pub async fn add_sealing_key(store: &Store, now: i64) -> Result<String, ServerError> {
    add_sealing_key_with(store, now, &Randomness::system()).await
}

/// [`add_sealing_key`] with the key material drawn from `random`.
pub async fn add_sealing_key_with(
    store: &Store,
    now: i64,
    random: &Randomness,
) -> Result<String, ServerError> {
    let mut material = [0u8; SealingKey::LEN];
    let mut kid = [0u8; 6];
    random.fill(&mut material)?;
    random.fill(&mut kid)?;
    let kid = base64url::encode(kid);
    store
        .insert_sealing_key(&SealingKeyRecord {
            kid: kid.clone(),
            material: material.to_vec(),
            created_at: now,
            retired_at: None,
        })
        .await?;
    Ok(kid)
}

/// Retires a sealing key (`letterlock keys retire`): the client ids it sealed stop opening, and
/// the grants of those clients are revoked and fed to the front doors at once. Their refresh
/// tokens are dead anyway (the client cannot authenticate any more); without the feed their
/// access tokens would keep opening sessions until they expire. Returns how many grants were
/// revoked, or `None` if there is no such key that is not retired already.
pub async fn retire_sealing_key(
    store: &Store,
    kid: &str,
    now: i64,
) -> Result<Option<u64>, ServerError> {
    if !store.retire_sealing_key(kid, now).await? {
        return Ok(None);
    }
    let sealed_under = format!("{}.{kid}.", letterlock_jose::sealing::PREFIX);
    Ok(Some(store.revoke_grants_of_clients_starting_with(&sealed_under, now).await?))
}

/// On first start: a signing key that signs at once and a sealing key, if there are none.
pub async fn ensure_keys(store: &Store, algorithm: Algorithm, now: i64) -> Result<(), ServerError> {
    ensure_keys_with(store, algorithm, now, &Randomness::system()).await
}

/// [`ensure_keys`] with new keys drawn from `random`.
pub async fn ensure_keys_with(
    store: &Store,
    algorithm: Algorithm,
    now: i64,
    random: &Randomness,
) -> Result<(), ServerError> {
    if store.signing_keys().await?.is_empty() {
        let kid = add_signing_key_with(store, algorithm, now, now, random).await?;
        tracing::info!(kid, %algorithm, "created the first signing key");
    }
    if store.sealing_keys().await?.iter().all(|key| key.retired_at.is_some()) {
        let kid = add_sealing_key_with(store, now, random).await?;
        tracing::info!(kid, "created a sealing key for client ids");
    }
    Ok(())
}

/// Loads the signing key ring.
pub async fn load_signing_ring(
    store: &Store,
    max_token_lifetime: i64,
) -> Result<SigningKeyRing, ServerError> {
    let mut keys = Vec::new();
    for record in store.signing_keys().await? {
        let algorithm = Algorithm::parse(&record.algorithm)
            .ok_or_else(|| ServerError::CorruptKey(record.kid.clone()))?;
        let key = PrivateKey::from_pkcs8(algorithm, &record.private_key)
            .map_err(|_| ServerError::CorruptKey(record.kid.clone()))?;
        keys.push(SigningKey {
            kid: record.kid,
            key,
            created_at: record.created_at,
            activates_at: record.activates_at,
        });
    }
    Ok(SigningKeyRing::new(keys, max_token_lifetime))
}

/// Loads the sealing keys.
pub async fn load_sealer(store: &Store) -> Result<Sealer, ServerError> {
    let mut keys = Vec::new();
    for record in store.sealing_keys().await? {
        let key = SealingKey::new(&record.kid, &record.material, record.retired_at.is_some())
            .map_err(|_| ServerError::CorruptKey(record.kid.clone()))?;
        keys.push(key);
    }
    Ok(Sealer::new(keys))
}
