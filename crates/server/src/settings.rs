//! The configuration, checked once, up front, into the typed values the server runs on.
//!
//! [`Settings::from_config`] is the only place a [`Config`] is validated: the issuer and
//! resources parse, the key algorithm is known, secrets are long enough, public client ids are
//! well formed, limits are positive. Everything after it works with these types and never sees a
//! raw string from the file again. It does no I/O beyond reading a vendor's `jwks_file`.

use std::collections::HashMap;

use axum::body::Bytes;
use letterlock_jose::statement::TrustedVendor;
use letterlock_jose::{Algorithm, VerifyingKey};
use letterlock_protocol::{AuthorizationServerMetadata, Issuer, Resource, Service, jwk};

use crate::accounts::SignInGuard;
use crate::config::{
    Config, ConfigError, LimitsConfig, RegistrationMode, StatementPolicy, TokenTyp, VendorConfig,
};
use crate::limits::{AddressLimit, Limits, positive};

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

/// The checked configuration. The rate limiters are built here too, since building them is
/// where their numbers are checked.
pub struct Settings {
    /// The issuer.
    pub issuer: Issuer,
    /// The RFC 8414 metadata document, serialized once.
    pub metadata_json: Bytes,
    /// The algorithm of new signing keys.
    pub algorithm: Algorithm,
    /// Vendors whose software statements are trusted.
    pub vendors: Vec<TrustedVendor>,
    /// Registration.
    pub registration: RegistrationSettings,
    /// Well-known public client ids.
    pub public_clients: HashMap<String, PublicClient>,
    /// The per-address budget of registrations.
    pub registration_limit: AddressLimit,
    /// `[limits]` as configured (sizes and timeouts).
    pub limits: LimitsConfig,
    /// The per-address budgets of the HTTP endpoints.
    pub address_limits: Limits,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
    /// The protected resources.
    pub resources: Vec<Resource>,
    /// The protected resources with the scopes that reach them.
    pub services: Vec<Service>,
    /// The `typ` of access tokens, per resource.
    pub token_typs: HashMap<String, TokenTyp>,
    /// Resource servers that may introspect and follow the feed.
    pub resource_servers: Vec<ResourceServer>,
    /// Sign-in throttling.
    pub sign_in: SignInGuard,
    /// RFC 9449 §8: whether DPoP proofs must carry a server nonce.
    pub dpop_require_nonce: bool,
}

impl Settings {
    /// Checks the configuration.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let issuer = Issuer::parse(config.issuer_text())
            .map_err(|error| ConfigError::invalid("issuer", error.to_string()))?;
        let resources = config
            .resources
            .iter()
            .map(|resource| Resource::parse(&resource.uri))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ConfigError::invalid("resources.uri", error.to_string()))?;
        let mut services: Vec<Service> = Vec::new();
        for (resource, configured) in resources.iter().zip(&config.resources) {
            if services.iter().any(|service| service.resource == *resource) {
                return Err(ConfigError::invalid(
                    "resources.uri",
                    format!("{resource} names a service listed before (RFC 3986 §6.2.3)"),
                ));
            }
            if let Some(scopes) = &configured.scopes
                && let Some(unknown) = scopes
                    .iter()
                    .find(|scope| !letterlock_protocol::scope::SUPPORTED.contains(&scope.as_str()))
            {
                return Err(ConfigError::invalid(
                    "resources.scopes",
                    format!("{unknown} is not a scope this server issues"),
                ));
            }
            services.push(Service::new(resource.clone(), configured.scopes.clone()));
        }
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
            ));
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
                ));
            }
            public_clients.insert(id.clone(), PublicClient { name: client.name.clone() });
        }
        let lifetimes = Lifetimes {
            access_token: seconds(config.lifetimes.access_token_seconds),
            refresh_token: seconds(config.lifetimes.refresh_token_seconds),
            code: seconds(config.lifetimes.code_seconds),
            request: seconds(config.lifetimes.authorization_request_seconds),
            session: seconds(config.lifetimes.session_seconds),
        };
        let mut resource_servers = Vec::new();
        for server in &config.resource_servers {
            if server.secret.len() < 16 {
                return Err(ConfigError::invalid(
                    "resource_servers.secret",
                    "must be at least 16 characters",
                ));
            }
            resource_servers.push(ResourceServer {
                client_id: server.client_id.clone(),
                secret: server.secret.clone(),
                resources: server.resources.clone(),
            });
        }
        let sign_in = SignInGuard::new(
            config.sign_in.attempts_per_minute_per_account_everywhere,
            config.sign_in.attempts_per_minute_per_account,
            config.sign_in.attempts_per_minute_per_address,
            config.sign_in.concurrent_password_checks,
        );
        let max_age = registration.client_id_max_age_seconds;
        Ok(Self {
            issuer,
            metadata_json,
            algorithm,
            vendors,
            registration: RegistrationSettings {
                mode: registration.mode,
                statements: registration.software_statements,
                initial_access_token: registration.initial_access_token.clone(),
                client_id_max_age: (max_age > 0).then(|| seconds(max_age)),
            },
            public_clients,
            registration_limit,
            limits: config.limits.clone(),
            address_limits,
            lifetimes,
            resources,
            services,
            token_typs: config
                .resources
                .iter()
                .map(|resource| (resource.uri.clone(), resource.token_typ))
                .collect(),
            resource_servers,
            sign_in,
            dpop_require_nonce: config.dpop.require_nonce,
        })
    }
}

/// Seconds from the file as the `i64` times are kept in; a value past `i64::MAX` means "never".
pub(crate) fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn vendor(config: &VendorConfig) -> Result<TrustedVendor, ConfigError> {
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
        _ => return Err(key("give exactly one of jwks and jwks_file".into())),
    };
    let keys = jwk::parse_key_set(&jwks)
        .map_err(|error| key(error.to_string()))?
        .iter()
        .map(VerifyingKey::from_jwk)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| key(error.to_string()))?;
    Ok(TrustedVendor { issuer: config.issuer.clone(), name: config.name.clone(), keys })
}
