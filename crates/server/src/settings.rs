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
use letterlock_protocol::{
    AuthMethod, AuthorizationServerMetadata, Issuer, RedirectUri, Resource, Service, jwk,
};

use crate::accounts::SignInGuard;
use crate::config::{
    Config, ConfigError, LimitsConfig, RegistrationMode, StatementPolicy, TokenTyp, VendorConfig,
    WebClientConfig,
};
use crate::limits::{AddressLimit, Limits, positive};
use crate::secrets::hash_secret;

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
    /// Whether dynamic registration is offered (RFC 7591).
    pub enabled: bool,
    /// Whether loopback redirect URIs may be registered (RFC 8252 §7.3).
    pub loopback_redirects: bool,
}

/// Lifetimes in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens.
    pub access_token: i64,
    /// Refresh tokens, from their issue.
    pub refresh_token: i64,
    /// How long after its rotation a refresh token may be retried by the same installation for
    /// the same answer; 0: never.
    pub refresh_retry_window: i64,
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

/// One of the operator's confidential web applications (`[[web_clients]]`), checked.
#[derive(Clone)]
pub struct WebClient {
    /// The name shown on the consent page, vouched for by the provider.
    pub name: String,
    /// The redirect URIs, each compared exactly.
    pub redirect_uris: Vec<RedirectUri>,
    /// `hash_secret` of the secret: compared as registered clients' secrets are, hashed and in
    /// constant time.
    pub secret_hash: String,
    /// `client_secret_basic` and/or `client_secret_post`.
    pub auth_methods: Vec<AuthMethod>,
    /// False when its authorization requests may leave PKCE out (RFC 9700 §2.1.1).
    pub require_pkce: bool,
}

impl std::fmt::Debug for WebClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebClient")
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_methods", &self.auth_methods)
            .field("require_pkce", &self.require_pkce)
            .finish_non_exhaustive()
    }
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
    /// The operator's confidential web applications, by client id.
    pub web_clients: HashMap<String, WebClient>,
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
    /// The identity sources people sign in with.
    pub identity: crate::identity::Sources,
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
        let mut metadata = AuthorizationServerMetadata::new(
            &issuer,
            &resources,
            config.service_documentation.clone(),
        );
        if !config.registration.enabled {
            // RFC 8414 §2: `registration_endpoint` is omitted when registration is not offered.
            metadata.registration_endpoint = None;
        }
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
            if !configured_client_id(id) {
                return Err(ConfigError::invalid(
                    "public_clients.client_id",
                    format!(
                        "'{id}' must be 1 to 100 printable characters and not start with 'll1'"
                    ),
                ));
            }
            public_clients.insert(id.clone(), PublicClient { name: client.name.clone() });
        }
        // A retry window is for a lost response, seconds long; a longer one would keep a
        // rotated-out token usable and delay reuse detection (RFC 9700 §4.14.2).
        if config.lifetimes.refresh_retry_window_seconds > MAX_REFRESH_RETRY_WINDOW {
            return Err(ConfigError::invalid(
                "lifetimes.refresh_retry_window_seconds",
                format!("must be at most {MAX_REFRESH_RETRY_WINDOW} (0 turns retries off)"),
            ));
        }
        let mut web_clients = HashMap::new();
        for client in &config.web_clients {
            let id = &client.client_id;
            if !configured_client_id(id) || public_clients.contains_key(id) {
                return Err(ConfigError::invalid(
                    "web_clients.client_id",
                    format!(
                        "'{id}' must be 1 to 100 printable characters, not start with 'll1', \
                         and not be a public client's id"
                    ),
                ));
            }
            if web_clients.insert(id.clone(), web_client(client)?).is_some() {
                return Err(ConfigError::invalid(
                    "web_clients.client_id",
                    format!("'{id}' is configured twice"),
                ));
            }
        }
        let lifetimes = Lifetimes {
            access_token: seconds(config.lifetimes.access_token_seconds),
            refresh_token: seconds(config.lifetimes.refresh_token_seconds),
            refresh_retry_window: seconds(config.lifetimes.refresh_retry_window_seconds),
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
                enabled: registration.enabled,
                loopback_redirects: registration.loopback_redirects,
            },
            public_clients,
            web_clients,
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
            identity: {
                crate::identity::Sources::check_timeouts(
                    &config.sign_in,
                    config.limits.request_timeout_seconds,
                )?;
                crate::identity::Sources::new(&config.sign_in)?
            },
            dpop_require_nonce: config.dpop.require_nonce,
        })
    }
}

/// The longest refresh retry window accepted, in seconds: a lost response is retried within
/// seconds, and every second more is a second in which a stolen token's reuse goes unnoticed.
pub const MAX_REFRESH_RETRY_WINDOW: u64 = 300;

/// Seconds from the file as the `i64` times are kept in; a value past `i64::MAX` means "never".
pub(crate) fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A client id the operator may configure: printable, at most 100 characters, and never
/// mistaken for a sealed registration (`ll1.`).
fn configured_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with(letterlock_jose::sealing::PREFIX)
        && id.bytes().all(|byte| byte.is_ascii_graphic())
}

/// Checks one `[[web_clients]]` entry: its secret (inline or from a file, at least 16
/// characters), its redirect URIs (`https://`, or `http://` on a loopback host: a code sent in
/// the clear to another host could be read on the way) and its authentication methods.
fn web_client(config: &WebClientConfig) -> Result<WebClient, ConfigError> {
    let key = |name: &str, message: String| {
        ConfigError::invalid(&format!("web_clients[{}].{name}", config.client_id), message)
    };
    if config.name.trim().is_empty() {
        return Err(key("name", "must not be empty".into()));
    }
    let secret = match (&config.secret, &config.secret_file) {
        (Some(secret), None) => secret.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                key("secret_file", format!("cannot read {}: {error}", path.display()))
            })?;
            text.strip_suffix('\n')
                .map_or(text.clone(), |line| line.trim_end_matches('\r').to_owned())
        }
        _ => return Err(key("secret", "give exactly one of secret and secret_file".into())),
    };
    if secret.len() < 16 {
        return Err(key("secret", "must be at least 16 characters".into()));
    }
    if config.redirect_uris.is_empty() {
        return Err(key("redirect_uris", "name at least one".into()));
    }
    let mut redirect_uris = Vec::new();
    for text in &config.redirect_uris {
        let uri =
            RedirectUri::parse(text).map_err(|error| key("redirect_uris", error.to_string()))?;
        let loopback_http = uri.is_native() && text.starts_with("http://");
        if !text.starts_with("https://") && !loopback_http {
            return Err(key(
                "redirect_uris",
                format!("'{text}' must be https://, or http:// on a loopback host"),
            ));
        }
        redirect_uris.push(uri);
    }
    let mut auth_methods = Vec::new();
    for name in &config.token_endpoint_auth_methods {
        // RFC 6749 §2.3.1: the two ways of presenting a client secret.
        match AuthMethod::parse(name) {
            Some(method @ (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)) => {
                auth_methods.push(method);
            }
            _ => {
                return Err(key(
                    "token_endpoint_auth_methods",
                    format!("'{name}' must be client_secret_basic or client_secret_post"),
                ));
            }
        }
    }
    if auth_methods.is_empty() {
        return Err(key("token_endpoint_auth_methods", "name at least one".into()));
    }
    Ok(WebClient {
        name: config.name.clone(),
        redirect_uris,
        secret_hash: hash_secret(&secret),
        auth_methods,
        require_pkce: config.require_pkce,
    })
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
