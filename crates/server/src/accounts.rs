//! Accounts: Argon2id password hashes, sign-in with throttling, and sessions.

use std::net::IpAddr;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use letterlock_protocol::address::AddressBlock;
use letterlock_store::{LOCAL_SOURCE, SessionRecord, Store, UserRecord};
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::identity::{Attempt, PasswordSource, SignedInBy, Sources, Verdict};
use crate::limits::{Limits, RetryAfter};
use crate::random::{RandomFailed, Randomness};
use crate::secrets::hash_secret;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The address is not a plausible mail address.
    #[error("'{0}' is not a mail address")]
    Address(String),
    /// The password is too short or too long.
    #[error("the password must be between 10 and 1024 characters")]
    Password,
    /// An account with this address exists.
    #[error("an account for {0} exists already")]
    Exists(String),
    /// No account with this address.
    #[error("no account for {0}")]
    Unknown(String),
    /// The account has no device with this id.
    #[error("the account has no device {0}")]
    UnknownDevice(String),
    /// Hashing failed.
    #[error("password hashing failed")]
    Hashing,
    /// The random generator failed (for a salt or an id).
    #[error(transparent)]
    Random(#[from] RandomFailed),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
}

/// Normalizes a mail address for use as a user name: trimmed, lower-case, one `@` with text on
/// both sides, no spaces or control characters, at most 254 bytes (RFC 5321 §4.5.3.1.3).
pub fn normalize_address(address: &str) -> Result<String, AccountError> {
    let address = address.trim().to_lowercase();
    let plausible = address.len() <= 254
        && address.split('@').count() == 2
        && address.split('@').all(|part| !part.is_empty())
        && !address.chars().any(|character| character.is_whitespace() || character.is_control());
    if plausible {
        Ok(address)
    } else {
        Err(AccountError::Address(address.chars().take(80).collect()))
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let length = password.chars().count();
    if (10..=1024).contains(&length) { Ok(()) } else { Err(AccountError::Password) }
}

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, 2 passes, RFC 9106 §4's
/// second recommendation) and a random 16-byte salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    Randomness::system().fill(&mut salt)?;
    let hash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| AccountError::Hashing)?;
    Ok(hash.to_string())
}

/// True when the password matches the PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A hash of nothing anyone knows, checked when the address is unknown so that sign-in takes as
/// long for a missing account as for a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("letterlock-no-such-account").unwrap_or_default())
}

/// Adds a user (the CLI's `user add`).
pub async fn add_user(
    store: &Store,
    address: &str,
    password: &str,
    now: i64,
) -> Result<UserRecord, AccountError> {
    let address = normalize_address(address)?;
    check_password(password)?;
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| AccountError::Hashing)??;
    let user = UserRecord {
        id: Randomness::system().id()?,
        address: address.clone(),
        password_hash,
        disabled: false,
        created_at: now,
        password_changed_at: now,
        source: letterlock_store::LOCAL_SOURCE.to_owned(),
        checked_at: now,
    };
    match store.insert_user(&user).await {
        Err(letterlock_store::Error::Conflict) => Err(AccountError::Exists(address)),
        other => other.map(|()| user).map_err(AccountError::from),
    }
}

/// Changes a password (the CLI's `user passwd`); with `revoke_devices`, also revokes every grant.
pub async fn change_password(
    store: &Store,
    address: &str,
    password: &str,
    revoke_devices: bool,
    now: i64,
) -> Result<u64, AccountError> {
    let address = normalize_address(address)?;
    check_password(password)?;
    let user = store
        .user_by_address(&address)
        .await?
        .ok_or_else(|| AccountError::Unknown(address.clone()))?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| AccountError::Hashing)??;
    store.set_password(&user.id, &hash, now).await?;
    store.delete_sessions_of(&user.id).await?;
    if revoke_devices { Ok(store.revoke_grants_of_user(&user.id, now).await?) } else { Ok(0) }
}

/// Why a sign-in failed. The page shows the same words for wrong addresses, wrong passwords and
/// disabled accounts, so that it does not reveal which addresses have accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong address or password, or a disabled account.
    Invalid,
    /// Too many attempts for this account or from this address.
    Throttled,
    /// An identity source could not answer: sign-in is unavailable for now (and no later,
    /// weaker source was asked instead).
    Unavailable,
    /// A fault of ours (the random generator failed): no account was made.
    Internal,
}

/// Sign-in throttling and the bound on concurrent hashing.
///
/// An account's budget is counted twice (issue 14's class "limits keyed by unverified input"):
/// per account and address block, tightly, so that one address cannot guess at speed; and per
/// account from everywhere, loosely, so that guessing spread over many addresses stays slow. A
/// stranger who types someone's address from one place then spends only their own pair's budget,
/// and the person still signs in from anywhere else; locking them out takes the whole loose
/// budget, from many address blocks. Account names are kept as a keyed hash, so what a stranger
/// types costs the same few bytes whatever its length.
pub struct SignInGuard {
    per_account: governor::DefaultKeyedRateLimiter<u64>,
    per_account_and_address: governor::DefaultKeyedRateLimiter<(u64, AddressBlock)>,
    per_address: governor::DefaultKeyedRateLimiter<AddressBlock>,
    hashing: Arc<Semaphore>,
    account_keys: std::hash::RandomState,
}

impl SignInGuard {
    /// A guard allowing `per_account` attempts per minute for one account from everywhere,
    /// `per_account_and_address` for one account from one address block, `per_address` from one
    /// address block for any account (each with an equal burst), and `concurrent_hashes`
    /// password checks at once.
    pub fn new(
        per_account: u32,
        per_account_and_address: u32,
        per_address: u32,
        concurrent_hashes: usize,
    ) -> Self {
        let quota = |per_minute: u32| {
            let per_minute =
                std::num::NonZeroU32::new(per_minute.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
            governor::Quota::per_minute(per_minute)
        };
        Self {
            per_account: governor::RateLimiter::keyed(quota(per_account)),
            per_account_and_address: governor::RateLimiter::keyed(quota(per_account_and_address)),
            per_address: governor::RateLimiter::keyed(quota(per_address)),
            hashing: Arc::new(Semaphore::new(concurrent_hashes.max(1))),
            account_keys: std::hash::RandomState::new(),
        }
    }

    /// Spends one attempt on `account` (normalized) from `block`; false when a budget is spent.
    fn attempt(&self, account: &str, block: AddressBlock) -> bool {
        use std::hash::BuildHasher as _;
        let account = self.account_keys.hash_one(account);
        self.per_address.check_key(&block).is_ok()
            && self.per_account_and_address.check_key(&(account, block)).is_ok()
            && self.per_account.check_key(&account).is_ok()
    }

    /// Forgets entries that have refilled.
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_account_and_address.retain_recent();
        self.per_address.retain_recent();
    }
}

/// Signing in and sessions, over what they need of the shared state (see
/// [`crate::AppState::accounts`]).
pub struct Accounts<'a> {
    store: &'a Store,
    guard: &'a SignInGuard,
    sources: &'a Sources,
    limits: &'a Limits,
    clock: &'a dyn Clock,
    random: &'a Randomness,
    session_lifetime: i64,
}

/// Why a session could not be started: storage or the random generator failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// The random generator failed, so no session id was made.
    #[error(transparent)]
    Random(#[from] RandomFailed),
}

impl<'a> Accounts<'a> {
    /// Sign-in over a store, a throttling guard, the address limits (for the address block), a
    /// clock, a random source, and the session lifetime in seconds.
    pub fn new(
        store: &'a Store,
        guard: &'a SignInGuard,
        sources: &'a Sources,
        limits: &'a Limits,
        clock: &'a dyn Clock,
        random: &'a Randomness,
        session_lifetime: i64,
    ) -> Self {
        Self { store, guard, sources, limits, clock, random, session_lifetime }
    }

    fn address_block(&self, address: IpAddr) -> AddressBlock {
        self.limits.block(address)
    }

    /// Checks a name and password against the identity sources in their order (see
    /// [`crate::identity`]), throttled per account and per client address before any source is
    /// asked: the user, and which source proved them.
    pub async fn sign_in(
        &self,
        typed: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<(UserRecord, SignedInBy), SignInError> {
        let typed = typed.trim();
        let normalized = normalize_address(typed).unwrap_or_else(|_| typed.to_lowercase());
        if !self.guard.attempt(&normalized, self.address_block(peer)) {
            return Err(SignInError::Throttled);
        }
        let attempt = Attempt { typed, password, peer };
        for source in self.sources.password() {
            let verdict = match source {
                PasswordSource::Local => self.check_local(&normalized, password).await,
                PasswordSource::Dovecot(source) => source.check(&attempt).await,
                PasswordSource::Ldap(source) => source.check(&attempt).await,
            };
            match verdict {
                Verdict::Proven { address } => return self.proven(source.name(), &address).await,
                Verdict::Refused => {}
                Verdict::Unavailable { reason } => {
                    // Not a fall-through: a later source may be a weaker one (an old local
                    // password), and an outage must not hand it the decision.
                    tracing::warn!(
                        source = source.name(),
                        reason,
                        "an identity source did not answer; sign-in is unavailable"
                    );
                    return Err(SignInError::Unavailable);
                }
            }
        }
        Err(SignInError::Invalid)
    }

    /// The local table's verdict: an Argon2id check, as long for an unknown address as for a
    /// wrong password. A disabled account is refused after the source proves it.
    async fn check_local(&self, normalized: &str, password: &str) -> Verdict {
        let user = match self.store.user_by_address(normalized).await {
            Ok(user) => user,
            Err(error) => return Verdict::Unavailable { reason: error.to_string() },
        };
        let hash = user
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |user| user.password_hash.clone());
        let matches = self.verify_bounded(password, hash).await;
        match user {
            Some(user) if matches => Verdict::Proven { address: user.address },
            _ => Verdict::Refused,
        }
    }

    /// The row of the person `source` proved (made on a first sign-in), unless disabled here.
    /// A local sign-in of a local account writes nothing; another source's records when it
    /// vouched, for the refresh re-check.
    async fn proven(
        &self,
        source: &str,
        address: &str,
    ) -> Result<(UserRecord, SignedInBy), SignInError> {
        let address = normalize_address(address).map_err(|_| SignInError::Invalid)?;
        let unavailable = |error: letterlock_store::Error| {
            tracing::error!(%error, "could not record a sign-in");
            SignInError::Unavailable
        };
        let now = self.clock.now();
        let user = match self.store.user_by_address(&address).await.map_err(unavailable)? {
            Some(user) if source == LOCAL_SOURCE && user.source == LOCAL_SOURCE => user,
            Some(user) => self
                .store
                .user_proven_by(&address, source, &user.id, now)
                .await
                .map_err(unavailable)?,
            None => {
                let id = self.random.id().map_err(|_| SignInError::Internal)?;
                self.store.user_proven_by(&address, source, &id, now).await.map_err(unavailable)?
            }
        };
        if user.disabled {
            return Err(SignInError::Invalid);
        }
        Ok((user, SignedInBy::Password { source: source.to_owned() }))
    }

    /// Checks a signed-in user's current password (before a change) under the same guard as
    /// signing in: the account's attempt budget, and the bound on Argon2id checks at once.
    /// Otherwise a session, or a stolen cookie, could guess it at full speed and run any
    /// number of 19 MiB checks together.
    pub async fn check_current_password(
        &self,
        user: &UserRecord,
        password: &str,
        peer: IpAddr,
    ) -> Result<(), SignInError> {
        if !self.guard.attempt(&user.address, self.address_block(peer)) {
            return Err(SignInError::Throttled);
        }
        if self.verify_bounded(password, user.password_hash.clone()).await {
            Ok(())
        } else {
            Err(SignInError::Invalid)
        }
    }

    /// Spends one attempt of the account's sign-in budget on a second-factor code (issue 17):
    /// the same budgets as passwords, so that six digits cannot be guessed faster than a
    /// password. False when a budget is spent.
    pub fn allow_second_factor_attempt(&self, user: &UserRecord, peer: IpAddr) -> bool {
        self.guard.attempt(&user.address, self.address_block(peer))
    }

    /// An Argon2id check on a blocking thread, at most `concurrent_password_checks` at once.
    async fn verify_bounded(&self, password: &str, hash: String) -> bool {
        let Ok(permit) = self.guard.hashing.clone().acquire_owned().await else {
            return false;
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&password, &hash)
        })
        .await
        .unwrap_or(false)
    }

    /// Counts a device code look-up (typed, followed from a link, or decided on) against the
    /// address's sign-in budget, so that codes cannot be guessed by any path; the wait when the
    /// budget is spent.
    pub fn allow_code_entry(&self, peer: IpAddr) -> Result<(), RetryAfter> {
        self.guard
            .per_address
            .check_key(&self.address_block(peer))
            .map_err(|not_until| RetryAfter::from_not_until(&not_until))
    }

    /// Starts a session for a user; returns the cookie value.
    pub async fn start_session(&self, user: &UserRecord) -> Result<String, SessionError> {
        let id = self.random.token(32)?;
        let csrf = self.random.token(24)?;
        let now = self.clock.now();
        self.store
            .insert_session(&SessionRecord {
                id_hash: hash_secret(&id),
                user_id: user.id.clone(),
                csrf,
                created_at: now,
                expires_at: now + self.session_lifetime,
            })
            .await?;
        Ok(id)
    }

    /// The signed-in user and session from a cookie value, if the session is live and the
    /// account enabled.
    pub async fn session(
        &self,
        cookie: &str,
    ) -> Result<Option<(UserRecord, SessionRecord)>, letterlock_store::Error> {
        let Some(session) = self.store.session(&hash_secret(cookie), self.clock.now()).await?
        else {
            return Ok(None);
        };
        match self.store.user(&session.user_id).await? {
            Some(user) if !user.disabled => Ok(Some((user, session))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let first = hash_password("correct horse battery").unwrap();
        let second = hash_password("correct horse battery").unwrap();
        assert_ne!(first, second, "salted");
        assert!(first.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &first));
        assert!(!verify_password("correct horse battery!", &first));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(normalize_address("  Alice@Example.COM ").unwrap(), "alice@example.com");
        for bad in ["alice", "@example.com", "alice@", "a@b@c", "al ice@example.com", ""] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
    }
}
