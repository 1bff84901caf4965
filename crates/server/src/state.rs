//! The server's shared state, built once from the configuration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use letterlock_jose::keyring::SigningKeyRing;
use letterlock_jose::sealing::Sealer;
use letterlock_jose::statement::TrustedVendor;
use letterlock_jose::{Algorithm, VerifyingKey};
use letterlock_protocol::{AuthorizationServerMetadata, Issuer, Resource, jwk};
use letterlock_store::Store;

use crate::ServerError;
use crate::clock::Clock;
use crate::config::{
    Config, ConfigError, LimitsConfig, RegistrationMode, StatementPolicy, VendorConfig,
};
use crate::keys;
use crate::limits::{AddressLimit, Limits, positive};
use crate::random::Randomness;

/// Registration settings after checking.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Stateless or stored.
    pub mode: RegistrationMode,
    /// What to do with software statements.
    pub statements: StatementPolicy,
    /// The token web and confidential clients must present, if any.
    pub initial_access_token: Option<String>,
    /// The oldest a stateless client id may be, in seconds (`None`: no limit).
    pub client_id_max_age: Option<i64>,
}

/// Lifetimes in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens.
    pub access_token: i64,
    /// Refresh tokens, from their issue.
    pub refresh_token: i64,
    /// Authorization codes.
    pub code: i64,
    /// Pending authorization requests.
    pub request: i64,
    /// Sign-in sessions.
    pub session: i64,
}

/// A resource server allowed to introspect tokens and follow the revocation feed.
#[derive(Debug, Clone)]
pub struct ResourceServer {
    /// Its Basic user name.
    pub client_id: String,
    /// Its Basic password.
    pub secret: String,
    /// The audiences it serves.
    pub resources: Vec<String>,
}

/// A client id that needs no registration.
#[derive(Debug, Clone)]
pub struct PublicClient {
    /// The name to show, always as unverified.
    pub name: Option<String>,
}

/// Everything the endpoints share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub issuer: Issuer,
    pub metadata_json: Bytes,
    pub store: Store,
    pub signing: RwLock<Arc<SigningKeyRing>>,
    pub sealer: RwLock<Arc<Sealer>>,
    pub vendors: Vec<TrustedVendor>,
    pub registration: RegistrationSettings,
    pub public_clients: HashMap<String, PublicClient>,
    pub registration_limit: AddressLimit,
    pub limits: LimitsConfig,
    pub address_limits: Limits,
    pub max_token_lifetime: i64,
    pub lifetimes: Lifetimes,
    pub resources: Vec<Resource>,
    pub token_typs: HashMap<String, crate::config::TokenTyp>,
    pub resource_servers: Vec<ResourceServer>,
    pub sign_in: crate::accounts::SignInGuard,
    pub dpop_require_nonce: bool,
    pub replay: crate::replay::ReplayCache,
    pub clock: Arc<dyn Clock>,
    pub random: Randomness,
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
        let issuer = Issuer::parse(config.issuer_text())
            .map_err(|error| ConfigError::invalid("issuer", error.to_string()))?;
        let resources = config
            .resources
            .iter()
            .map(|resource| Resource::parse(&resource.uri))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ConfigError::invalid("resources.uri", error.to_string()))?;
        let metadata = AuthorizationServerMetadata::new(
            &issuer,
            &resources,
            config.service_documentation.clone(),
        );
        let metadata_json = Bytes::from(
            serde_json::to_vec(&metadata)
                .map_err(|error| ConfigError::invalid("issuer", error.to_string()))?,
        );
        let algorithm = Algorithm::parse(&config.keys.algorithm)
            .ok_or_else(|| ConfigError::invalid("keys.algorithm", "must be ES256 or EdDSA"))?;
        let vendors = config.vendors.iter().map(vendor).collect::<Result<Vec<_>, _>>()?;
        let registration = &config.registration;
        if registration.initial_access_token.as_ref().is_some_and(|token| token.len() < 16) {
            return Err(ConfigError::invalid(
                "registration.initial_access_token",
                "must be at least 16 characters",
            )
            .into());
        }
        let registration_limit = AddressLimit::with_burst(
            positive("registration.rate_limit_per_minute", registration.rate_limit_per_minute)?,
            positive("registration.rate_limit_burst", registration.rate_limit_burst)?,
            None,
        );
        let address_limits = Limits::new(&config.limits)?;
        let mut public_clients = HashMap::new();
        for client in &config.public_clients {
            let id = &client.client_id;
            if id.is_empty()
                || id.len() > 100
                || id.starts_with(letterlock_jose::sealing::PREFIX)
                || !id.bytes().all(|byte| byte.is_ascii_graphic())
            {
                return Err(ConfigError::invalid(
                    "public_clients.client_id",
                    format!(
                        "'{id}' must be 1 to 100 printable characters and not start with 'll1'"
                    ),
                )
                .into());
            }
            public_clients.insert(id.clone(), PublicClient { name: client.name.clone() });
        }
        let seconds = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let lifetimes = Lifetimes {
            access_token: seconds(config.lifetimes.access_token_seconds),
            refresh_token: seconds(config.lifetimes.refresh_token_seconds),
            code: seconds(config.lifetimes.code_seconds),
            request: seconds(config.lifetimes.authorization_request_seconds),
            session: seconds(config.lifetimes.session_seconds),
        };
        let max_token_lifetime = lifetimes.access_token;
        let mut resource_servers = Vec::new();
        for server in &config.resource_servers {
            if server.secret.len() < 16 {
                return Err(ConfigError::invalid(
                    "resource_servers.secret",
                    "must be at least 16 characters",
                )
                .into());
            }
            resource_servers.push(ResourceServer {
                client_id: server.client_id.clone(),
                secret: server.secret.clone(),
                resources: server.resources.clone(),
            });
        }
        let sign_in = crate::accounts::SignInGuard::new(
            config.sign_in.attempts_per_minute_per_account_everywhere,
            config.sign_in.attempts_per_minute_per_account,
            config.sign_in.attempts_per_minute_per_address,
            config.sign_in.concurrent_password_checks,
        );
        keys::ensure_keys(&store, algorithm, clock.now()).await?;
        let replay = crate::replay::ReplayCache::for_store(&store);
        let signing = keys::load_signing_ring(&store, max_token_lifetime).await?;
        let sealer = keys::load_sealer(&store).await?;
        let max_age = registration.client_id_max_age_seconds;
        Ok(Self(Arc::new(Inner {
            issuer,
            metadata_json,
            store,
            signing: RwLock::new(Arc::new(signing)),
            sealer: RwLock::new(Arc::new(sealer)),
            vendors,
            registration: RegistrationSettings {
                mode: registration.mode,
                statements: registration.software_statements,
                initial_access_token: registration.initial_access_token.clone(),
                client_id_max_age: (max_age > 0)
                    .then(|| i64::try_from(max_age).unwrap_or(i64::MAX)),
            },
            public_clients,
            registration_limit,
            limits: config.limits.clone(),
            address_limits,
            max_token_lifetime,
            lifetimes,
            resources,
            token_typs: config
                .resources
                .iter()
                .map(|resource| (resource.uri.clone(), resource.token_typ))
                .collect(),
            resource_servers,
            sign_in,
            dpop_require_nonce: config.dpop.require_nonce,
            replay,
            clock,
            random,
        })))
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.0.issuer
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The current signing key ring.
    pub fn signing_keys(&self) -> Arc<SigningKeyRing> {
        self.0
            .signing
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |ring| ring.clone())
    }

    /// The current sealing keys.
    pub fn sealer(&self) -> Arc<Sealer> {
        self.0
            .sealer
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |sealer| sealer.clone())
    }

    /// Re-reads keys from storage, so that `letterlock keys rotate` reaches running servers.
    pub async fn reload_keys(&self) -> Result<(), ServerError> {
        let signing =
            Arc::new(keys::load_signing_ring(&self.0.store, self.0.max_token_lifetime).await?);
        let sealer = Arc::new(keys::load_sealer(&self.0.store).await?);
        match self.0.signing.write() {
            Ok(mut slot) => *slot = signing,
            Err(poisoned) => *poisoned.into_inner() = signing,
        }
        match self.0.sealer.write() {
            Ok(mut slot) => *slot = sealer,
            Err(poisoned) => *poisoned.into_inner() = sealer,
        }
        Ok(())
    }

    /// Forgets rate-limiter entries that have refilled, so that the maps do not grow forever.
    pub fn prune_rate_limits(&self) {
        self.0.registration_limit.prune();
        self.0.address_limits.prune();
        self.0.sign_in.prune();
    }

    /// Where secrets come from.
    pub fn random(&self) -> &Randomness {
        &self.0.random
    }

    /// The block a client address is counted under by every per-address limit.
    pub fn address_block(&self, address: IpAddr) -> letterlock_protocol::address::AddressBlock {
        self.0.address_limits.block(address)
    }

    /// The configured protected resources.
    pub fn resources(&self) -> &[Resource] {
        &self.0.resources
    }

    /// The `typ` header of access tokens for a resource.
    pub fn token_typ(&self, resource: &str) -> &'static str {
        self.0.token_typs.get(resource).copied().unwrap_or_default().as_str()
    }

    /// Verifies an access token this server signed, whatever `typ` its resource uses; the key
    /// ring signs nothing but access tokens.
    pub fn verify_access_token(
        &self,
        token: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.signing_keys().verify(token, &["at+jwt", "JWT"], self.now()).ok()
    }

    /// Lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        self.0.lifetimes
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }
}

fn vendor(config: &VendorConfig) -> Result<TrustedVendor, ServerError> {
    let key =
        |message: String| ConfigError::invalid(&format!("vendors[{}]", config.issuer), message);
    let jwks: serde_json::Value = match (&config.jwks, &config.jwks_file) {
        (Some(inline), None) => {
            serde_json::to_value(inline).map_err(|error| key(error.to_string()))?
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| key(format!("cannot read {}: {error}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|error| key(format!("{} is not JSON: {error}", path.display())))?
        }
        _ => return Err(key("give exactly one of jwks and jwks_file".into()).into()),
    };
    let keys = jwk::parse_key_set(&jwks)
        .map_err(|error| key(error.to_string()))?
        .iter()
        .map(VerifyingKey::from_jwk)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| key(error.to_string()))?;
    Ok(TrustedVendor { issuer: config.issuer.clone(), name: config.name.clone(), keys })
}
