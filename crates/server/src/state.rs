//! The server's shared state, built once from the checked [`Settings`]. Its fields are private;
//! the endpoints and the grant core reach them through the accessors below, or through the views
//! ([`Clients`], [`Accounts`], [`DpopChecker`], [`Grants`]) that take only what they need.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use letterlock_jose::keyring::SigningKeyRing;
use letterlock_jose::sealing::Sealer;
use letterlock_jose::statement::TrustedVendor;
use letterlock_protocol::access_token::AccessTokenClaims;
use letterlock_protocol::{Issuer, Resource};
use letterlock_store::Store;

use crate::ServerError;
use crate::accounts::Accounts;
use crate::clients::Clients;
use crate::clock::Clock;
use crate::config::{Config, LimitsConfig, TokenTyp};
use crate::dpop::DpopChecker;
use crate::grants::Grants;
use crate::keys;
use crate::limits::{Limits, RetryAfter};
use crate::random::Randomness;
use crate::replay::ReplayCache;
use crate::settings::Settings;
pub use crate::settings::{Lifetimes, PublicClient, RegistrationSettings, ResourceServer};

/// Why an access token is not live, for the endpoints that take one from a client
/// (introspection, RFC 7662 §2.2; UserInfo, OpenID Connect Core §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLive {
    /// Not a token this server signed, or not an access token.
    NotOurs,
    /// Signed by this server's keys for another issuer.
    OtherIssuer,
    /// Past its `exp`.
    Expired,
    /// Revoked by its `jti` (RFC 7009), or without one.
    Revoked,
    /// Its grant no longer exists.
    DeviceGone,
    /// Its grant was revoked or its user disabled.
    DeviceRevoked,
}

impl NotLive {
    /// What to tell the client.
    pub fn description(self) -> &'static str {
        match self {
            Self::NotOurs => "the token is not an access token of this server",
            Self::OtherIssuer => "the token was issued by someone else",
            Self::Expired => "the token has expired",
            Self::Revoked => "the token was revoked",
            Self::DeviceGone => "the token's device is gone",
            Self::DeviceRevoked => "access for this device was revoked",
        }
    }
}

/// Everything the endpoints share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Store,
    signing: RwLock<Arc<SigningKeyRing>>,
    sealer: RwLock<Arc<Sealer>>,
    replay: ReplayCache,
    clock: Arc<dyn Clock>,
    random: Randomness,
}

impl AppState {
    /// Builds the state: checks the configuration, creates the first keys if there are none,
    /// and loads the key rings. The store must be migrated.
    pub async fn new(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServerError> {
        Self::with_randomness(config, store, clock, Randomness::system()).await
    }

    /// [`AppState::new`] with another source of secrets (tests of a failing generator).
    pub async fn with_randomness(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
        random: Randomness,
    ) -> Result<Self, ServerError> {
        let settings = Settings::from_config(config)?;
        keys::ensure_keys_with(&store, settings.algorithm, clock.now(), &random).await?;
        let replay = ReplayCache::for_store(&store);
        let signing = keys::load_signing_ring(&store, settings.lifetimes.access_token).await?;
        let sealer = keys::load_sealer(&store).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                store,
                signing: RwLock::new(Arc::new(signing)),
                sealer: RwLock::new(Arc::new(sealer)),
                replay,
                clock,
                random,
            }),
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.settings.issuer
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The identity sources people sign in with.
    pub fn identity(&self) -> &crate::identity::Sources {
        &self.inner.settings.identity
    }

    /// The RFC 8414 metadata document, serialized once.
    pub fn metadata_json(&self) -> Bytes {
        self.inner.settings.metadata_json.clone()
    }

    /// The current signing key ring.
    pub fn signing_keys(&self) -> Arc<SigningKeyRing> {
        self.inner
            .signing
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |ring| ring.clone())
    }

    /// The current sealing keys.
    pub fn sealer(&self) -> Arc<Sealer> {
        self.inner
            .sealer
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |sealer| sealer.clone())
    }

    /// Re-reads keys from storage, so that `letterlock keys rotate` reaches running servers.
    pub async fn reload_keys(&self) -> Result<(), ServerError> {
        let signing = Arc::new(
            keys::load_signing_ring(&self.inner.store, self.inner.settings.lifetimes.access_token)
                .await?,
        );
        let sealer = Arc::new(keys::load_sealer(&self.inner.store).await?);
        match self.inner.signing.write() {
            Ok(mut slot) => *slot = signing,
            Err(poisoned) => *poisoned.into_inner() = signing,
        }
        match self.inner.sealer.write() {
            Ok(mut slot) => *slot = sealer,
            Err(poisoned) => *poisoned.into_inner() = sealer,
        }
        Ok(())
    }

    /// Forgets rate-limiter entries that have refilled, so that the maps do not grow forever.
    pub fn prune_rate_limits(&self) {
        self.inner.settings.registration_limit.prune();
        self.inner.settings.address_limits.prune();
        self.inner.settings.sign_in.prune();
    }

    /// Where secrets come from.
    pub fn random(&self) -> &Randomness {
        &self.inner.random
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The block a client address is counted under by every per-address limit.
    pub fn address_block(&self, address: IpAddr) -> letterlock_protocol::address::AddressBlock {
        self.inner.settings.address_limits.block(address)
    }

    /// The per-address budgets of the HTTP endpoints.
    pub fn address_limits(&self) -> &Limits {
        &self.inner.settings.address_limits
    }

    /// Spends one registration from the address's budget.
    pub fn check_registration_budget(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.inner.settings.registration_limit.check(self.address_block(address))
    }

    /// `[limits]` as configured (body sizes, timeouts).
    pub fn limits(&self) -> &LimitsConfig {
        &self.inner.settings.limits
    }

    /// Registration settings.
    pub fn registration(&self) -> &RegistrationSettings {
        &self.inner.settings.registration
    }

    /// Vendors whose software statements are trusted.
    pub fn vendors(&self) -> &[TrustedVendor] {
        &self.inner.settings.vendors
    }

    /// Resource servers that may introspect and follow the revocation feed.
    pub fn resource_servers(&self) -> &[ResourceServer] {
        &self.inner.settings.resource_servers
    }

    /// The configured protected resources.
    pub fn resources(&self) -> &[Resource] {
        &self.inner.settings.resources
    }

    /// The `typ` header of access tokens for a resource.
    pub fn token_typ(&self, resource: &str) -> &'static str {
        token_typ(&self.inner.settings.token_typs, resource)
    }

    /// Verifies an access token this server signed, whatever `typ` its resource uses; the key
    /// ring signs nothing but access tokens.
    pub fn verify_access_token(
        &self,
        token: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.signing_keys().verify(token, &["at+jwt", "JWT"], self.now()).ok()
    }

    /// The claims of an access token this server signed for its own issuer, still within its
    /// lifetime (RFC 9068 §4), or why not.
    pub fn current_access_token(&self, token: &str) -> Result<AccessTokenClaims, NotLive> {
        let claims = self
            .verify_access_token(token)
            .and_then(|json| AccessTokenClaims::from_json(&json))
            .ok_or(NotLive::NotOurs)?;
        if claims.issuer != self.issuer().as_str() {
            return Err(NotLive::OtherIssuer);
        }
        if claims.expires_at <= self.now() {
            return Err(NotLive::Expired);
        }
        Ok(claims)
    }

    /// Whether a current access token still stands: not revoked by its `jti` (RFC 7009), its
    /// grant live and its user enabled; with the user's address. Introspection and UserInfo
    /// both ask this, with one read of the grant and its user.
    pub async fn access_token_standing(
        &self,
        claims: &AccessTokenClaims,
    ) -> Result<Result<String, NotLive>, letterlock_store::Error> {
        if claims.jti.is_empty() || self.store().access_token_revoked(&claims.jti).await? {
            return Ok(Err(NotLive::Revoked));
        }
        let Some((grant, address, disabled)) =
            self.store().grant_with_user(&claims.grant_id).await?
        else {
            return Ok(Err(NotLive::DeviceGone));
        };
        if grant.revoked_at.is_some() || disabled {
            return Ok(Err(NotLive::DeviceRevoked));
        }
        Ok(Ok(address))
    }

    /// Lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        self.inner.settings.lifetimes
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The replay cache of DPoP proofs and client assertions.
    pub fn replay(&self) -> &ReplayCache {
        &self.inner.replay
    }

    /// Registering and opening clients.
    pub fn clients(&self) -> Clients<'_> {
        let settings = &self.inner.settings;
        Clients::new(
            &self.inner.store,
            self.sealer(),
            &settings.issuer,
            &settings.public_clients,
            &settings.web_clients,
            &settings.vendors,
            &settings.registration,
            &self.inner.random,
            self.now(),
        )
    }

    /// Signing in and sessions.
    pub fn accounts(&self) -> Accounts<'_> {
        let settings = &self.inner.settings;
        Accounts::new(
            &self.inner.store,
            &settings.sign_in,
            &settings.identity,
            &settings.address_limits,
            self.inner.clock.as_ref(),
            &self.inner.random,
            settings.lifetimes.session,
        )
    }

    /// DPoP checks and nonces, now.
    pub fn dpop(&self) -> DpopChecker<'_> {
        DpopChecker::new(
            self.sealer(),
            &self.inner.replay,
            self.inner.settings.dpop_require_nonce,
            self.now(),
        )
    }

    /// The grant core: codes, refresh tokens, device codes, issuing, consent.
    pub fn grants(&self) -> Grants<'_> {
        let settings = &self.inner.settings;
        Grants::new(
            &self.inner.store,
            self.inner.clock.as_ref(),
            &self.inner.random,
            crate::grants::Issuer {
                issuer: &settings.issuer,
                keys: self.signing_keys(),
                lifetimes: settings.lifetimes,
                token_typs: &settings.token_typs,
                services: &settings.services,
            },
            &settings.identity,
        )
    }
}

/// The `typ` header of access tokens for a resource (RFC 9068 §2.1 `at+jwt` unless the resource
/// is configured for plain `JWT`).
pub(crate) fn token_typ(typs: &HashMap<String, TokenTyp>, resource: &str) -> &'static str {
    typs.get(resource).copied().unwrap_or_default().as_str()
}
