//! `letterlock user add|passwd|list|show|devices|revoke|disable|enable`: accounts, whose user
//! name is the mail address.
//! Every command normalises the address the same way ([`accounts::normalize_address`]) and
//! fails the same way for an unknown one ([`AccountError::Unknown`]).

use letterlock_store::{GrantRecord, Store, UserRecord};

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

/// The account of `address`, or [`AccountError::Unknown`].
async fn find(store: &Store, address: &str) -> Result<UserRecord, AccountError> {
    let address = accounts::normalize_address(address)?;
    store.user_by_address(&address).await?.ok_or(AccountError::Unknown(address))
}

/// Enables a disabled account again: it may sign in; its revoked devices stay revoked.
pub async fn enable(store: &Store, address: &str) -> Result<UserRecord, AccountError> {
    let user = find(store, address).await?;
    store.set_disabled(&user.id, false).await?;
    Ok(UserRecord { disabled: false, ..user })
}

/// One account and its devices (grants, live and revoked), for `user show` and `user devices`.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The account.
    pub user: UserRecord,
    /// Its devices, live first, most recently used first.
    pub devices: Vec<GrantRecord>,
}

/// An account and its devices.
pub async fn show(store: &Store, address: &str) -> Result<Shown, AccountError> {
    let user = find(store, address).await?;
    let devices = store.grants_of_user(&user.id).await?;
    Ok(Shown { user, devices })
}

/// What `user revoke` revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// One device, by its id (as `user devices` lists it).
    Device(&'a str),
    /// Every device of the account.
    All,
}

/// Revokes one device of an account, or all of them: their refresh tokens stop working and the
/// front doors hear of it on the revocation feed. Returns how many were live; revoking a device
/// of another account, or an unknown one, is [`AccountError::UnknownDevice`].
pub async fn revoke(
    store: &Store,
    address: &str,
    which: Revoke<'_>,
    now: i64,
) -> Result<u64, AccountError> {
    let user = find(store, address).await?;
    match which {
        Revoke::All => Ok(store.revoke_grants_of_user(&user.id, now).await?),
        Revoke::Device(id) => {
            let owned = store.grants_of_user(&user.id).await?.iter().any(|grant| grant.id == id);
            if !owned {
                return Err(AccountError::UnknownDevice(id.chars().take(80).collect()));
            }
            Ok(u64::from(store.revoke_grant(id, Some(&user.id), now).await?))
        }
    }
}
