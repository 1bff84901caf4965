//! `letterlock user add|passwd|list|disable`: accounts, whose user name is the mail address.
//! Every command normalises the address the same way ([`accounts::normalize_address`]) and
//! fails the same way for an unknown one ([`AccountError::Unknown`]).

use letterlock_store::{Store, UserRecord};

use crate::accounts::{self, AccountError};

/// Adds an account.
pub async fn add(
    store: &Store,
    address: &str,
    password: &str,
    now: i64,
) -> Result<UserRecord, AccountError> {
    accounts::add_user(store, address, password, now).await
}

/// Changes an account's password; its sessions end. With `revoke_devices`, every grant of the
/// account is revoked too. Returns how many were.
pub async fn passwd(
    store: &Store,
    address: &str,
    password: &str,
    revoke_devices: bool,
    now: i64,
) -> Result<u64, AccountError> {
    accounts::change_password(store, address, password, revoke_devices, now).await
}

/// Every account.
pub async fn list(store: &Store) -> Result<Vec<UserRecord>, AccountError> {
    Ok(store.users().await?)
}

/// A disabled account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// The normalised address.
    pub address: String,
    /// How many grants (devices) were revoked.
    pub revoked: u64,
}

/// Disables an account: it cannot sign in, its sessions end, and every grant (device) of it is
/// revoked.
pub async fn disable(store: &Store, address: &str, now: i64) -> Result<Disabled, AccountError> {
    let address = accounts::normalize_address(address)?;
    let user = store
        .user_by_address(&address)
        .await?
        .ok_or_else(|| AccountError::Unknown(address.clone()))?;
    store.set_disabled(&user.id, true).await?;
    let revoked = store.revoke_grants_of_user(&user.id, now).await?;
    Ok(Disabled { address, revoked })
}
