//! The authorization server's sections of the configuration file (TOML; unknown keys are
//! errors) and their defaults. Every key is documented in `docs/CONFIGURATION.md`;
//! `letterlock serve` runs with none of them.
//!
//! The file itself, with the front doors' sections beside these, is the `letterlock` binary's
//! (`crates/cli/src/file.rs`): the authorization server knows no front door.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The address `letterlock serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The issuer by default: the default listener, so the tour in the README works as written.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The data folder by default.
pub const DEFAULT_DATA_DIR: &str = "./letterlock-data";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is well-typed but unacceptable.
    #[error("configuration key '{key}': {message}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.to_owned(), message: message.into() }
    }
}

/// The authorization server's sections: every top-level key of the file except `[gateway]`,
/// `[[imap]]`, `[[smtp]]`, `[[pop3]]` and `[[dav]]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (`https://...`; `http://` only on a loopback host).
    pub issuer: Option<String>,
    /// The address to listen on.
    pub listen: Option<SocketAddr>,
    /// Where the SQLite database and other state live.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://path` or `postgres://user@host/db`; by default a SQLite file in `data_dir`.
    pub database: Option<String>,
    /// A URL of the operator's documentation, published as `service_documentation`.
    pub service_documentation: Option<String>,
    /// TLS on the listener.
    pub tls: Option<TlsConfig>,
    /// Client registration.
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// Client vendors whose software statements are trusted.
    #[serde(default)]
    pub vendors: Vec<VendorConfig>,
    /// Client ids that need no registration.
    #[serde(default)]
    pub public_clients: Vec<PublicClientConfig>,
    /// The operator's own confidential web applications (a webmail).
    #[serde(default)]
    pub web_clients: Vec<WebClientConfig>,
    /// The provider's protected services.
    #[serde(default)]
    pub resources: Vec<ResourceConfig>,
    /// Signing and sealing keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Token lifetimes.
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Sign-in throttling.
    #[serde(default)]
    pub sign_in: SignInConfig,
    /// Resource servers allowed to introspect tokens and follow the revocation feed.
    #[serde(default)]
    pub resource_servers: Vec<ResourceServerConfig>,
    /// DPoP (RFC 9449).
    #[serde(default)]
    pub dpop: DpopConfig,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[sign_in]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Attempts per minute for one account from one address block.
    pub attempts_per_minute_per_account: u32,
    /// Attempts per minute for one account from all addresses together.
    pub attempts_per_minute_per_account_everywhere: u32,
    /// Attempts per minute from one client address, for any account.
    pub attempts_per_minute_per_address: u32,
    /// Password checks (Argon2id, about 19 MiB each) running at once.
    pub concurrent_password_checks: usize,
    /// `[[sign_in.sources]]`: the password sources, asked in this order; none means the local
    /// table alone (see [`crate::identity`]).
    pub sources: Vec<crate::identity::SourceConfig>,
    /// `[[sign_in.upstream]]`: upstream OpenID providers, a "Sign in with ..." button each.
    pub upstream: Vec<crate::identity::upstream::UpstreamConfig>,
    /// Password sign-ins (local or a directory) need a second factor.
    pub require_second_factor: bool,
    /// Seconds a source's word on a person stands before a refresh asks the source again.
    pub recheck_seconds: u64,
    /// Offer passkeys: "Sign in with a passkey" and "Add a passkey" (when the issuer's host is
    /// a domain, which a WebAuthn RP ID must be).
    pub passkeys: bool,
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            attempts_per_minute_per_account: 5,
            attempts_per_minute_per_account_everywhere: 30,
            attempts_per_minute_per_address: 30,
            concurrent_password_checks: 2,
            sources: Vec::new(),
            upstream: Vec::new(),
            require_second_factor: false,
            recheck_seconds: 900,
            passkeys: true,
        }
    }
}

/// `[[resource_servers]]`: a front door or mail server that may introspect tokens. Its `Debug`
/// hides the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    /// Its name, used as the user name in HTTP Basic authentication.
    pub client_id: String,
    /// Its secret (at least 16 characters), the Basic password.
    pub secret: String,
    /// The resources it serves: tokens for other audiences introspect as inactive.
    pub resources: Vec<String>,
}

/// What `Debug` shows instead of a configured secret.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for ResourceServerConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { client_id, secret: _, resources } = self;
        formatter
            .debug_struct("ResourceServerConfig")
            .field("client_id", client_id)
            .field("secret", &REDACTED)
            .field("resources", resources)
            .finish()
    }
}

/// `[dpop]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Require a server nonce in DPoP proofs (RFC 9449 §8), which bounds the replay window
    /// without a shared cache.
    pub require_nonce: bool,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self { require_nonce: true }
    }
}

/// `[tls]`: PEM files for the listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// How registrations are kept.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// The client id is the sealed registration; nothing is stored.
    #[default]
    Stateless,
    /// Clients are stored, with RFC 7592 management.
    Stored,
}

/// What to do with software statements.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StatementPolicy {
    /// Refuse registrations without a statement from a trusted vendor.
    Require,
    /// Verify statements from trusted vendors; register others as unverified.
    #[default]
    Prefer,
    /// Do not look at statements.
    Ignore,
}

/// `[registration]`. Its `Debug` hides the initial access token.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// `stateless` or `stored`.
    pub mode: RegistrationMode,
    /// `require`, `prefer` or `ignore`.
    pub software_statements: StatementPolicy,
    /// When set, web and confidential clients must present it as a Bearer token. Native public
    /// clients never need one.
    pub initial_access_token: Option<String>,
    /// Stateless client ids older than this are refused (`0`: no limit).
    pub client_id_max_age_seconds: u64,
    /// Registrations allowed per client address per minute, after the burst.
    pub rate_limit_per_minute: u32,
    /// Registrations allowed at once from one address.
    pub rate_limit_burst: u32,
    /// Whether `POST /register` is offered at all (RFC 7591); `false` leaves only the
    /// `[[public_clients]]`.
    pub enabled: bool,
    /// Whether installed programs may register loopback redirect URIs (RFC 8252 §7.3);
    /// `false` leaves them private-use schemes (§7.1) and claimed `https` URIs (§7.2).
    pub loopback_redirects: bool,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Stateless,
            software_statements: StatementPolicy::Prefer,
            initial_access_token: None,
            client_id_max_age_seconds: 0,
            rate_limit_per_minute: 30,
            rate_limit_burst: 10,
            enabled: true,
            loopback_redirects: true,
        }
    }
}

impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            mode,
            software_statements,
            initial_access_token,
            client_id_max_age_seconds,
            rate_limit_per_minute,
            rate_limit_burst,
            enabled,
            loopback_redirects,
        } = self;
        formatter
            .debug_struct("RegistrationConfig")
            .field("mode", mode)
            .field("software_statements", software_statements)
            .field("initial_access_token", &initial_access_token.as_ref().map(|_| REDACTED))
            .field("client_id_max_age_seconds", client_id_max_age_seconds)
            .field("rate_limit_per_minute", rate_limit_per_minute)
            .field("rate_limit_burst", rate_limit_burst)
            .field("enabled", enabled)
            .field("loopback_redirects", loopback_redirects)
            .finish()
    }
}

/// `[[vendors]]`: one trusted client vendor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// The `iss` of the vendor's statements.
    pub issuer: String,
    /// The publisher name shown to users.
    pub name: String,
    /// The vendor's public keys, inline (`{ keys = [...] }`).
    pub jwks: Option<toml::Table>,
    /// Or a file holding the JWK Set as JSON.
    pub jwks_file: Option<PathBuf>,
}

/// `[[public_clients]]`: a client id anyone may use without registering.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicClientConfig {
    /// The client id, for example `open`.
    pub client_id: String,
    /// A name to show; always marked unverified.
    pub name: Option<String>,
}

/// `[[web_clients]]`: a confidential web application the operator runs itself, such as a
/// webmail, that signs people in and reads their mail. Unlike a registered client it is known
/// by its configured name (the consent page says the provider vouches for it) and may be
/// exempted from PKCE. Its `Debug` hides the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebClientConfig {
    /// The client id, for example `webmail`.
    pub client_id: String,
    /// The name shown on the consent page.
    pub name: String,
    /// Where codes may go, each compared exactly: `https://`, or `http://` on a loopback host.
    pub redirect_uris: Vec<String>,
    /// The client secret (at least 16 characters), or
    pub secret: Option<String>,
    /// a file holding it (one line; a final newline is not part of it).
    pub secret_file: Option<PathBuf>,
    /// How it authenticates at the token endpoint: `client_secret_basic` and/or
    /// `client_secret_post` (RFC 6749 §2.3.1).
    #[serde(default = "default_web_client_auth_methods")]
    pub token_endpoint_auth_methods: Vec<String>,
    /// `false` lets its authorization requests leave PKCE out (RFC 9700 §2.1.1 allows it for a
    /// confidential client; see docs/SECURITY.md for the cost). A challenge it sends is still
    /// checked.
    #[serde(default = "default_require_pkce")]
    pub require_pkce: bool,
}

fn default_web_client_auth_methods() -> Vec<String> {
    vec!["client_secret_basic".to_owned()]
}

fn default_require_pkce() -> bool {
    true
}

impl std::fmt::Debug for WebClientConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            client_id,
            name,
            redirect_uris,
            secret,
            secret_file,
            token_endpoint_auth_methods,
            require_pkce,
        } = self;
        formatter
            .debug_struct("WebClientConfig")
            .field("client_id", client_id)
            .field("name", name)
            .field("redirect_uris", redirect_uris)
            .field("secret", &secret.as_ref().map(|_| REDACTED))
            .field("secret_file", secret_file)
            .field("token_endpoint_auth_methods", token_endpoint_auth_methods)
            .field("require_pkce", require_pkce)
            .finish()
    }
}

/// `[[resources]]`: one protected service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Its resource identifier, for example `imaps://mail.example.com`.
    pub uri: String,
    /// The `typ` header of its access tokens: `at+jwt` (RFC 9068, the default) or `JWT` for a
    /// service that Dovecot 2.3's oauth2 passdb validates itself (it refuses `at+jwt`).
    #[serde(default)]
    pub token_typ: TokenTyp,
    /// The scopes whose tokens it accepts. A token asked without `resource` names this service
    /// in `aud` when its scope holds one of them. Left out: the mail scope for the mail
    /// protocols' schemes (`imap`, `imaps`, `pop3`, `pop3s`, `smtp`, `smtps`, `submission`,
    /// `submissions`), contacts and calendars for `http` and `https`.
    pub scopes: Option<Vec<String>>,
}

/// The `typ` header of access tokens for one resource.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
pub enum TokenTyp {
    /// RFC 9068 §2.1.
    #[default]
    #[serde(rename = "at+jwt")]
    AtJwt,
    /// Plain `JWT`, for Dovecot 2.3's local validation.
    #[serde(rename = "JWT")]
    Jwt,
}

impl TokenTyp {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtJwt => "at+jwt",
            Self::Jwt => "JWT",
        }
    }
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// `ES256` or `EdDSA`, for new signing keys.
    pub algorithm: String,
    /// How long a new signing key is published before it signs.
    pub activation_delay_seconds: u64,
    /// How often a running server reloads keys from storage.
    pub reload_interval_seconds: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithm: "ES256".into(),
            activation_delay_seconds: 3600,
            reload_interval_seconds: 60,
        }
    }
}

/// `[lifetimes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimesConfig {
    /// The lifetime of access tokens; a retired signing key stays published this long.
    pub access_token_seconds: u64,
    /// How long a refresh token lives unused; each use issues a new one with a fresh lifetime.
    pub refresh_token_seconds: u64,
    /// How long after a rotation the same installation may present the rotated-out refresh
    /// token again and get the same answer (a lost response, RFC 9700 §4.14.2); 0 turns it off.
    pub refresh_retry_window_seconds: u64,
    /// How long an authorization code may wait to be redeemed.
    pub code_seconds: u64,
    /// How long a user has to sign in and decide on the consent page.
    pub authorization_request_seconds: u64,
    /// How long a sign-in session lasts.
    pub session_seconds: u64,
}

impl Default for LifetimesConfig {
    fn default() -> Self {
        Self {
            access_token_seconds: 600,
            refresh_token_seconds: 90 * 86_400,
            refresh_retry_window_seconds: 60,
            code_seconds: 60,
            authorization_request_seconds: 600,
            session_seconds: 12 * 3600,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// The longest a request may take, body included.
    pub request_timeout_seconds: u64,
    /// The longest a client may take to send the request head.
    pub header_read_timeout_seconds: u64,
    /// How long a connection may stay open with no request in flight (HTTP/1.1 keep-alive and
    /// HTTP/2) before the server closes it.
    pub idle_timeout_seconds: u64,
    /// Open connections at once, in total; further clients wait in the listen queue.
    pub max_connections: u32,
    /// Open connections at once from one address block; more are closed at once.
    pub connections_per_address: u32,
    /// How many leading bits of an IPv6 address name one client for every per-address limit.
    pub ipv6_prefix_length: u8,
    /// `GET /authorize` requests (each stores a pending request) per minute per address block.
    pub authorization_requests_per_minute_per_address: u32,
    /// `GET /authorize` requests per minute from all addresses together.
    pub authorization_requests_per_minute: u32,
    /// `POST /device_authorization` requests (each stores a device code) per minute per address
    /// block.
    pub device_authorizations_per_minute_per_address: u32,
    /// `POST /device_authorization` requests per minute from all addresses together.
    pub device_authorizations_per_minute: u32,
    /// `POST /token` and `POST /revoke` requests per minute per address block.
    pub token_requests_per_minute_per_address: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout_seconds: 10,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 4096,
            connections_per_address: 64,
            ipv6_prefix_length: 64,
            authorization_requests_per_minute_per_address: 60,
            authorization_requests_per_minute: 1200,
            device_authorizations_per_minute_per_address: 20,
            device_authorizations_per_minute: 300,
            token_requests_per_minute_per_address: 120,
        }
    }
}

impl Config {
    /// Parses TOML text holding only the authorization server's sections (tests and embedding;
    /// the `letterlock` binary reads the whole file with the front doors' sections).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The listen address.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The database URL: the configured one, or `letterlock.db` in the data folder.
    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir().join("letterlock.db").display())
        })
    }

    /// The issuer text.
    pub fn issuer_text(&self) -> &str {
        self.issuer.as_deref().unwrap_or(DEFAULT_ISSUER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.listen_address().to_string(), DEFAULT_LISTEN);
        assert_eq!(config.issuer_text(), DEFAULT_ISSUER);
        assert_eq!(config.database_url(), "sqlite://./letterlock-data/letterlock.db");
        assert_eq!(config.registration.mode, RegistrationMode::Stateless);
        assert_eq!(config.registration.software_statements, StatementPolicy::Prefer);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = Config::parse("isser = \"https://x\"").unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
        let error = Config::parse("[registration]\nmode = \"sometimes\"").unwrap_err();
        assert!(error.contains("unknown variant"), "{error}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::parse(
            "[registration]\ninitial_access_token = \"registration-secret\"\n\
             [[resource_servers]]\nclient_id = \"dovecot\"\nsecret = \"introspection-secret\"\n\
             resources = [\"imaps://m.example\"]\n",
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("registration-secret"), "{shown}");
        assert!(!shown.contains("introspection-secret"), "{shown}");
        assert!(shown.contains("dovecot") && shown.contains(REDACTED), "{shown}");
    }
}
