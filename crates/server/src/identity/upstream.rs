//! An upstream OpenID Connect provider as an identity source ("Sign in with ..."):
//! `[[sign_in.upstream]]`.
//!
//! The person signs in at the provider (Keycloak, Authentik, Entra, Google Workspace, ...) with
//! the authorization code flow (OpenID Connect Core §3.1), PKCE S256 (RFC 7636) and a nonce;
//! this server is a confidential client there (`client_secret_basic`, RFC 6749 §2.3.1). The
//! provider's ID token is verified against its JWKS ([`letterlock_jose::upstream`]: issuer,
//! audience, nonce, lifetime, signature, never `alg: none` or HMAC), and one configured claim
//! (`email` by default, with `email_verified`) names the mail account, which must be in one of
//! the provider's configured `domains`. When the ID token does not carry the claim (a provider
//! may keep scope claims for UserInfo when it also issues an access token, Core §5.4), it is
//! read from the UserInfo response, whose `sub` must be the ID token's (Core §5.3.4).
//!
//! The provider's metadata (OpenID Connect Discovery §4) and JWKS are fetched on first use and
//! kept ([`METADATA_SECONDS`]); the JWKS is fetched again when a token names an unknown `kid`
//! (a key rotation), at most every [`KEYS_REFETCH_SECONDS`]. Every request to the provider has
//! the configured timeout and waits for one of [`CONCURRENT_REQUESTS`] permits: a provider that
//! is slow or down makes sign-in with it *unavailable*, never a hang.
//!
//! The browser side (the routes, the state kept between the redirect and the answer, the
//! cookie that binds it to the browser) is `crate::endpoints::upstream`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use letterlock_jose::upstream::{Expected, UpstreamKeys, UpstreamTokenError, verify_id_token};
use letterlock_protocol::Issuer;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{RwLock, Semaphore};

use super::Standing;
use crate::accounts::normalize_address;
use crate::config::ConfigError;

/// How long the provider's metadata is used before it is fetched again: an hour.
pub const METADATA_SECONDS: i64 = 3600;
/// The shortest time between two fetches of the JWKS for an unknown `kid`, so that tokens
/// naming made-up keys cannot make this server hammer the provider.
pub const KEYS_REFETCH_SECONDS: i64 = 10;
/// Requests to one provider at once (discovery, JWKS, token, UserInfo).
pub const CONCURRENT_REQUESTS: usize = 16;
/// The largest answer read from a provider: 256 KiB (a metadata document or JWKS is a few KiB).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// `[[sign_in.upstream]]`: one upstream OpenID provider. Its `Debug` hides the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its name: in the sign-in URLs (`/sign-in/upstream/{name}`), `users.source` and logs.
    pub name: String,
    /// The button's words after "Sign in with ".
    pub label: String,
    /// The provider's issuer identifier, exactly as its discovery document says.
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// The client secret (or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret (trailing line breaks ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The scopes asked for; must hold `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The claim that names the mail account.
    #[serde(default = "default_claim")]
    pub claim: String,
    /// With `claim = "email"`: the provider must say `email_verified: true`.
    #[serde(default = "default_true")]
    pub require_email_verified: bool,
    /// The mail domains this provider may name; an address elsewhere is refused.
    pub domains: Vec<String>,
    /// Seconds each request to the provider may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Days a person's word from the provider stands: a refresh once this long after their last
    /// sign-in here revokes their devices, so that they sign in at the provider again (which
    /// refuses a person removed there). 0: never.
    #[serde(default = "default_sign_in_again_after_days")]
    pub sign_in_again_after_days: u64,
}

fn default_sign_in_again_after_days() -> u64 {
    30
}

fn default_scopes() -> String {
    "openid email".to_owned()
}

fn default_claim() -> String {
    "email".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    10
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("claim", &self.claim)
            .field("require_email_verified", &self.require_email_verified)
            .field("domains", &self.domains)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("sign_in_again_after_days", &self.sign_in_again_after_days)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in at the provider did not prove an address. The endpoint turns each into the
/// page the person sees; the details go to the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The provider could not be asked (down, slow, a broken metadata document): sign-in with
    /// it is unavailable, and no other source is asked instead.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer did not check out (its token endpoint refused the code, or the ID
    /// token failed a check).
    #[error("the provider's answer was refused: {0}")]
    Refused(String),
    /// The ID token failed a check (OpenID Connect Core §3.1.3.7).
    #[error("the ID token was refused: {0}")]
    IdToken(UpstreamTokenError),
    /// Neither the ID token nor UserInfo carries the configured claim as a mail address.
    #[error("the provider did not name a mail address in '{0}'")]
    NoAddress(String),
    /// `email_verified` is not true.
    #[error("the provider has not verified {0}")]
    Unverified(String),
    /// The address is outside the provider's configured domains.
    #[error("{0} is outside the provider's domains")]
    OtherDomain(String),
}

/// The parts of the provider's metadata that a sign-in uses (OpenID Connect Discovery §3).
#[derive(Debug, Clone, Deserialize)]
struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    /// RFC 9207 §3: the provider puts `iss` in its authorization responses.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// The metadata and keys, as last fetched.
struct Discovered {
    metadata: ProviderMetadata,
    fetched_at: i64,
    keys: UpstreamKeys,
    keys_fetched_at: i64,
}

/// One upstream OpenID provider, ready to send people to and to hear back from.
pub struct UpstreamProvider {
    name: String,
    label: String,
    issuer: String,
    discovery_url: String,
    client_id: String,
    secret: String,
    scopes: String,
    claim: String,
    require_email_verified: bool,
    domains: Vec<String>,
    timeout: Duration,
    /// Seconds after a sign-in at which the person is taken as gone; `None`: never.
    sign_in_again_after: Option<i64>,
    http: reqwest::Client,
    permits: Semaphore,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

/// What the callback hands over to finish a sign-in at the provider.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The authorization code from the callback.
    pub code: &'a str,
    /// The `iss` parameter of the callback, if any (RFC 9207 §2).
    pub iss: Option<&'a str>,
    /// The redirect URI that was sent (RFC 6749 §4.1.3 wants it again).
    pub redirect_uri: &'a str,
    /// The PKCE code verifier of this sign-in.
    pub code_verifier: &'a str,
    /// The nonce of this sign-in.
    pub nonce: &'a str,
    /// Now, by the server's clock.
    pub now: i64,
}

impl UpstreamProvider {
    /// Checks the configuration (and reads the secret file).
    pub fn new(config: &UpstreamConfig) -> Result<Self, ConfigError> {
        let key = |field: &str| format!("sign_in.upstream.{field}");
        let name_ok = !config.name.is_empty()
            && config.name.len() <= 64
            && config
                .name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(ConfigError::invalid(
                &key("name"),
                format!("'{}' must be 1 to 64 letters, digits, '-', '_' or '.'", config.name),
            ));
        }
        if config.label.trim().is_empty() {
            return Err(ConfigError::invalid(&key("label"), "must not be empty"));
        }
        // The same rules as this server's own issuer: https, or http on a loopback address
        // (development and tests); no query or fragment (OpenID Connect Discovery §3).
        let issuer = Issuer::parse(&config.issuer)
            .map_err(|error| ConfigError::invalid(&key("issuer"), error.to_string()))?;
        if config.client_id.is_empty() {
            return Err(ConfigError::invalid(&key("client_id"), "must not be empty"));
        }
        let secret = match (&config.client_secret, &config.client_secret_file) {
            (Some(secret), None) => secret.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|error| {
                    ConfigError::invalid(
                        &key("client_secret_file"),
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            _ => {
                return Err(ConfigError::invalid(
                    &key("client_secret"),
                    "give client_secret or client_secret_file (one of them)",
                ));
            }
        };
        if secret.is_empty() {
            return Err(ConfigError::invalid(&key("client_secret"), "must not be empty"));
        }
        // OpenID Connect Core §3.1.2.1: `openid` MUST be among the scopes.
        if !config.scopes.split(' ').any(|scope| scope == "openid") {
            return Err(ConfigError::invalid(&key("scopes"), "must include openid"));
        }
        if config.claim.is_empty() {
            return Err(ConfigError::invalid(&key("claim"), "must not be empty"));
        }
        let domains: Vec<String> = config
            .domains
            .iter()
            .map(|domain| domain.trim().trim_end_matches('.').to_lowercase())
            .collect();
        if domains.is_empty()
            || domains.iter().any(|domain| domain.is_empty() || domain.contains('@'))
        {
            return Err(ConfigError::invalid(
                &key("domains"),
                "list the mail domains this provider may name (at least one, without '@')",
            ));
        }
        if !(1..=60).contains(&config.timeout_seconds) {
            return Err(ConfigError::invalid(&key("timeout_seconds"), "must be 1 to 60"));
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("letterlock/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ConfigError::invalid(&key("issuer"), format!("HTTP client: {error}"))
            })?;
        Ok(Self {
            name: config.name.clone(),
            label: config.label.trim().to_owned(),
            issuer: issuer.as_str().to_owned(),
            discovery_url: issuer.openid_configuration_url(),
            client_id: config.client_id.clone(),
            secret,
            scopes: config.scopes.clone(),
            claim: config.claim.clone(),
            require_email_verified: config.require_email_verified,
            domains,
            timeout,
            sign_in_again_after: i64::try_from(config.sign_in_again_after_days)
                .ok()
                .and_then(|days| days.checked_mul(86_400))
                .filter(|seconds| *seconds > 0),
            http,
            permits: Semaphore::new(CONCURRENT_REQUESTS),
            discovered: RwLock::new(None),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The button's words after "Sign in with ".
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The provider's issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether a person this provider proved `since` seconds ago is still there. OpenID
    /// Connect gives a relying party no way to ask about a person without their tokens, and
    /// this server keeps none of the provider's, so the answer is the provider's last word and
    /// its age: once `sign_in_again_after_days` have passed since the person last signed in
    /// through the provider, they are taken as gone (their devices are revoked, and the next
    /// sign-in asks the provider, which refuses a person removed there); before that,
    /// [`Standing::Unknown`].
    pub fn standing(&self, since: i64) -> Standing {
        match self.sign_in_again_after {
            Some(limit) if since >= limit => Standing::Gone,
            _ => Standing::Unknown,
        }
    }

    /// Where to send the browser: the provider's authorization endpoint with this sign-in's
    /// `state`, `nonce` and PKCE challenge (OpenID Connect Core §3.1.2.1, RFC 7636 §4.3).
    pub async fn authorization_url(
        &self,
        now: i64,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, UpstreamError> {
        let discovered = self.discovered(now).await?;
        let mut url =
            url::Url::parse(&discovered.metadata.authorization_endpoint).map_err(|error| {
                UpstreamError::Unavailable(format!("authorization_endpoint: {error}"))
            })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Finishes a sign-in from the provider's answer: the code exchange, the ID token's checks,
    /// and the mail address it names (normalized, in one of the provider's domains).
    pub async fn finish(&self, answer: &Answer<'_>) -> Result<String, UpstreamError> {
        let discovered = self.discovered(answer.now).await?;
        // RFC 9207 §2.4: an `iss` in the answer must be this provider's; a provider that says
        // it sends one must have sent it (a mix-up defence beside the per-provider callback).
        match answer.iss {
            Some(iss) if iss != self.issuer => {
                return Err(UpstreamError::Refused(format!(
                    "the answer's iss '{}' is not the provider's",
                    letterlock_jose::shown(iss)
                )));
            }
            None if discovered.metadata.authorization_response_iss_parameter_supported => {
                return Err(UpstreamError::Refused("the answer has no iss".to_owned()));
            }
            _ => {}
        }
        let tokens = self.exchange(&discovered.metadata, answer).await?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Refused("the token response has no id_token".into()))?;
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce: answer.nonce,
            now: answer.now,
        };
        let claims = match verify_id_token(id_token, &discovered.keys, &expected) {
            Err(UpstreamTokenError::UnknownKey(_))
                if answer.now - discovered.keys_fetched_at >= KEYS_REFETCH_SECONDS =>
            {
                let refreshed = self.refetch_keys(&discovered, answer.now).await?;
                verify_id_token(id_token, &refreshed.keys, &expected)
            }
            verified => verified,
        }
        .map_err(UpstreamError::IdToken)?;
        let address_claims = if claims.contains_key(&self.claim) {
            claims
        } else {
            self.userinfo(&discovered.metadata, &tokens, &claims).await?
        };
        self.address(&address_claims)
    }

    /// The configured claim as a mail address in one of the provider's domains.
    fn address(&self, claims: &Map<String, Value>) -> Result<String, UpstreamError> {
        let Some(text) = claims.get(&self.claim).and_then(Value::as_str) else {
            return Err(UpstreamError::NoAddress(self.claim.clone()));
        };
        let address =
            normalize_address(text).map_err(|_| UpstreamError::NoAddress(self.claim.clone()))?;
        // OpenID Connect Core §5.1: `email_verified` true means the provider took steps to make
        // sure the address was controlled by the person; without it, anyone could type the
        // address of someone else's mailbox into their profile there.
        if self.claim == "email" && self.require_email_verified {
            let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
                || claims.get("email_verified").and_then(Value::as_str) == Some("true");
            if !verified {
                return Err(UpstreamError::Unverified(address));
            }
        }
        let domain = address.rsplit('@').next().unwrap_or_default();
        if !self.domains.iter().any(|allowed| allowed == domain) {
            return Err(UpstreamError::OtherDomain(address));
        }
        Ok(address)
    }

    /// The domains this provider may name, for the refusal page.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// RFC 6749 §4.1.3 with RFC 7636 §4.5, authenticated with `client_secret_basic`.
    async fn exchange(
        &self,
        metadata: &ProviderMetadata,
        answer: &Answer<'_>,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", answer.code)
            .append_pair("redirect_uri", answer.redirect_uri)
            .append_pair("code_verifier", answer.code_verifier)
            .finish();
        // RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic's base64.
        let encode =
            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(&self.client_id),
            encode(&self.secret)
        ));
        let request = self
            .http
            .post(fetchable(&metadata.token_endpoint).map_err(UpstreamError::Unavailable)?)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("authorization", format!("Basic {basic}"))
            .body(body);
        let (status, json) = self.send(request, "token endpoint").await?;
        if status != 200 {
            let error = json.get("error").and_then(Value::as_str).unwrap_or("(no error code)");
            return Err(UpstreamError::Refused(format!(
                "the token endpoint answered {status} {}",
                letterlock_jose::shown(error)
            )));
        }
        Ok(json)
    }

    /// OpenID Connect Core §5.3: the claims from UserInfo, whose `sub` must be the ID token's
    /// (§5.3.4, against token substitution).
    async fn userinfo(
        &self,
        metadata: &ProviderMetadata,
        tokens: &Map<String, Value>,
        id_claims: &Map<String, Value>,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let no_address = || UpstreamError::NoAddress(self.claim.clone());
        let endpoint = metadata.userinfo_endpoint.as_deref().ok_or_else(no_address)?;
        let access_token =
            tokens.get("access_token").and_then(Value::as_str).ok_or_else(no_address)?;
        let request = self
            .http
            .get(fetchable(endpoint).map_err(UpstreamError::Unavailable)?)
            .header("accept", "application/json")
            .header("authorization", format!("Bearer {access_token}"));
        let (status, claims) = self.send(request, "UserInfo").await?;
        if status != 200 {
            return Err(UpstreamError::Refused(format!("UserInfo answered {status}")));
        }
        if claims.get("sub") != id_claims.get("sub") {
            return Err(UpstreamError::Refused("UserInfo's sub is not the ID token's".into()));
        }
        Ok(claims)
    }

    /// The metadata and keys: kept ones while fresh; else fetched, and kept ones again when the
    /// fetch fails (a provider's short outage need not stop sign-ins whose tokens verify).
    async fn discovered(&self, now: i64) -> Result<Arc<Discovered>, UpstreamError> {
        let kept = self.discovered.read().await.clone();
        if let Some(kept) = &kept
            && now - kept.fetched_at < METADATA_SECONDS
        {
            return Ok(kept.clone());
        }
        match self.discover(now).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.discovered.write().await = Some(fresh.clone());
                Ok(fresh)
            }
            Err(error) => match kept {
                Some(kept) => {
                    tracing::warn!(provider = self.name, %error, "keeping the provider's metadata");
                    Ok(kept)
                }
                None => Err(error),
            },
        }
    }

    /// OpenID Connect Discovery §4: the document at the issuer's well-known URL, whose `issuer`
    /// must be exactly the configured one (§4.3), and the JWKS it names.
    async fn discover(&self, now: i64) -> Result<Discovered, UpstreamError> {
        let json = self.get_json(&self.discovery_url, "discovery").await?;
        let metadata: ProviderMetadata = serde_json::from_value(Value::Object(json))
            .map_err(|error| UpstreamError::Unavailable(format!("discovery document: {error}")))?;
        if metadata.issuer != self.issuer {
            return Err(UpstreamError::Unavailable(format!(
                "the discovery document names the issuer '{}'",
                letterlock_jose::shown(&metadata.issuer)
            )));
        }
        for endpoint in
            [&metadata.authorization_endpoint, &metadata.token_endpoint, &metadata.jwks_uri]
                .into_iter()
                .chain(metadata.userinfo_endpoint.as_ref())
        {
            fetchable(endpoint).map_err(UpstreamError::Unavailable)?;
        }
        let keys = self.fetch_keys(&metadata.jwks_uri).await?;
        Ok(Discovered { metadata, fetched_at: now, keys, keys_fetched_at: now })
    }

    async fn refetch_keys(
        &self,
        discovered: &Discovered,
        now: i64,
    ) -> Result<Arc<Discovered>, UpstreamError> {
        let keys = self.fetch_keys(&discovered.metadata.jwks_uri).await?;
        let refreshed = Arc::new(Discovered {
            metadata: discovered.metadata.clone(),
            fetched_at: discovered.fetched_at,
            keys,
            keys_fetched_at: now,
        });
        *self.discovered.write().await = Some(refreshed.clone());
        Ok(refreshed)
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<UpstreamKeys, UpstreamError> {
        let jwks = self.get_json(jwks_uri, "JWKS").await?;
        let keys = UpstreamKeys::from_jwks(&Value::Object(jwks));
        if keys.is_empty() {
            return Err(UpstreamError::Unavailable("the JWKS has no usable signing key".into()));
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Map<String, Value>, UpstreamError> {
        let request = self
            .http
            .get(fetchable(url).map_err(UpstreamError::Unavailable)?)
            .header("accept", "application/json");
        match self.send(request, what).await? {
            (200, json) => Ok(json),
            (status, _) => {
                Err(UpstreamError::Unavailable(format!("{what} at {url} answered {status}")))
            }
        }
    }

    /// Sends a request under the provider's concurrency bound and timeout; the answer's status
    /// and its JSON object (empty when the body is not one). A redirect is an answer like any
    /// other, never followed.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(u16, Map<String, Value>), UpstreamError> {
        let unavailable = |error: String| UpstreamError::Unavailable(format!("{what}: {error}"));
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("too many requests to the provider at once".into()))?
            .map_err(|_| unavailable("closed".into()))?;
        let exchange = async {
            let mut response = request.send().await.map_err(|error| unavailable(chain(&error)))?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) =
                response.chunk().await.map_err(|error| unavailable(chain(&error)))?
            {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(unavailable(format!("more than {MAX_ANSWER_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            let json = match serde_json::from_slice(&body) {
                Ok(Value::Object(json)) => json,
                _ => Map::new(),
            };
            Ok((status, json))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unavailable(format!("no answer within {} s", self.timeout.as_secs())))?
    }
}

/// `https`, or `http` to a loopback address (development and tests), like this server's own
/// issuer: a provider's endpoints are never fetched in plain text over a network.
fn fetchable(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("'{url}': {error}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        _ => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("'{url}' is neither https nor http on a loopback address")),
    }
}

/// An error with its causes: reqwest's own message hides the interesting part (TLS, DNS).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(changes: &str) -> Result<UpstreamProvider, ConfigError> {
        let text = format!(
            "name = \"corp\"\nlabel = \"Example Corp\"\nissuer = \"https://id.example.com\"\n\
             client_id = \"letterlock\"\nclient_secret = \"s3cret\"\ndomains = [\"Example.com\"]\n{changes}"
        );
        UpstreamProvider::new(&toml::from_str::<UpstreamConfig>(&text).unwrap())
    }

    #[test]
    fn the_configuration_is_checked() {
        let provider = config("").unwrap();
        assert_eq!(provider.domains(), ["example.com"]);
        assert!(
            !format!(
                "{:?}",
                toml::from_str::<UpstreamConfig>(
                    "name = \"a\"\nlabel = \"A\"\nissuer = \"https://a\"\nclient_id = \"c\"\n\
             client_secret = \"hidden-value\"\ndomains = [\"a\"]\n"
                )
                .unwrap()
            )
            .contains("hidden-value")
        );
        for (changes, key) in [
            ("scopes = \"email\"", "scopes"),
            ("timeout_seconds = 0", "timeout_seconds"),
            ("client_secret_file = \"/nonexistent\"", "client_secret"),
        ] {
            let error = config(changes).err().unwrap().to_string();
            assert!(error.contains(key), "{changes}: {error}");
        }
        let bad = |text: &str| {
            UpstreamProvider::new(&toml::from_str::<UpstreamConfig>(text).unwrap()).is_err()
        };
        let base = "label = \"A\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        assert!(bad(&format!("name = \"a/b\"\nissuer = \"https://a\"\ndomains = [\"a\"]\n{base}")));
        assert!(bad(&format!(
            "name = \"a\"\nissuer = \"http://id.example.com\"\ndomains = [\"a\"]\n{base}"
        )));
        assert!(bad(&format!("name = \"a\"\nissuer = \"https://a\"\ndomains = []\n{base}")));
        assert!(toml::from_str::<UpstreamConfig>("name = \"a\"\nunknown = 1\n").is_err());
    }

    #[test]
    fn the_claim_names_an_address_in_the_domains() {
        let provider = config("").unwrap();
        let claims = |value: Value| value.as_object().unwrap().clone();
        assert_eq!(
            provider.address(&claims(json!({"email": " Fay@Example.com", "email_verified": true}))),
            Ok("fay@example.com".into())
        );
        assert_eq!(
            provider.address(&claims(json!({"email": "fay@example.org", "email_verified": true}))),
            Err(UpstreamError::OtherDomain("fay@example.org".into()))
        );
        assert_eq!(
            provider
                .address(&claims(json!({"email": "fay@sub.example.com", "email_verified": true}))),
            Err(UpstreamError::OtherDomain("fay@sub.example.com".into()))
        );
        assert_eq!(
            provider.address(&claims(json!({"email": "fay@example.com", "email_verified": false}))),
            Err(UpstreamError::Unverified("fay@example.com".into()))
        );
        assert_eq!(
            provider.address(&claims(json!({"email": "fay@example.com"}))),
            Err(UpstreamError::Unverified("fay@example.com".into()))
        );
        assert_eq!(
            provider.address(&claims(json!({"email": "not an address", "email_verified": true}))),
            Err(UpstreamError::NoAddress("email".into()))
        );
        let upn = config("claim = \"upn\"").unwrap();
        assert_eq!(
            upn.address(&claims(json!({"upn": "fay@example.com"}))),
            Ok("fay@example.com".into())
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        assert!(fetchable("https://id.example.com/jwks").is_ok());
        assert!(fetchable("http://127.0.0.1:8080/jwks").is_ok());
        assert!(fetchable("http://[::1]/jwks").is_ok());
        assert!(fetchable("http://localhost/jwks").is_err());
        assert!(fetchable("http://id.example.com/jwks").is_err());
        assert!(fetchable("file:///etc/passwd").is_err());
    }
}
