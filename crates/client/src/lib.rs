//! Letterlock's client: from a mail address to fresh per-service OAuth tokens, with no client id
//! to configure (draft-ietf-mailmaint-oauth-public, from the client's side).
//!
//! A [`Client`] holds no global state: its [`Storage`] (where registrations and tokens live) and
//! its [`Browser`] (how the sign-in page is shown) are passed in, so a mail program can embed it
//! with its own profile folder and its own window.
//!
//! ```no_run
//! use std::sync::Arc;
//! use letterlock_client::{Client, FileStorage, Login, Service, SystemBrowser};
//!
//! # async fn run() -> Result<(), letterlock_client::Error> {
//! let client = Client::new(Arc::new(FileStorage::for_user()?), Arc::new(SystemBrowser), Default::default())?;
//! // Once: discover the issuer, register this installation, sign in in the browser.
//! client.login(&Login::new("fay@example.com"), &|line: &str| eprintln!("{line}")).await?;
//! // Whenever a connection is made: a token for one service, refreshed when needed.
//! let token = client.token("fay@example.com", Service::Imap).await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! The steps, each in its own module:
//! - [`discover`]: the issuer, from the mail server's SASL failure ([`probe`]), a DAV server's
//!   RFC 9728 metadata, autoconfig, or the domain's well-known metadata; every answer checked
//!   (exact issuer, no redirects, `https` except on loopback). Servers come from the person,
//!   autoconfig, or DNS SRV records ([`srv`]).
//! - [`service`]: which services may receive the issuer's tokens (`protected_resources`, else
//!   the same registrable domain), under which resource indicator.
//! - [`oauth`]: registration with a key per installation (or, at an issuer without
//!   registration, the client id autoconfig publishes), the browser or device flow (or, when the
//!   issuer refuses loopback redirects, a private-use redirect pasted back), token requests with
//!   `private_key_jwt` and DPoP, revocation.
//! - [`store`]: where it is all kept, with a lock so that two programs refreshing at once do
//!   not both spend one rotating refresh token; [`keyring`] puts the secrets among them in the
//!   desktop's keyring (the Secret Service) where there is one.

pub mod browser;
pub mod discover;
mod error;
pub mod keyring;
pub mod loopback;
pub mod net;
pub mod oauth;
pub mod probe;
pub mod service;
pub mod srv;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use letterlock_protocol::{Issuer, scope};
use serde::{Deserialize, Serialize};

pub use browser::{Browser, PrintUrl, SystemBrowser};
pub use discover::{Address, Metadata};
pub use error::Error;
pub use keyring::{KeyringStorage, SecretService};
pub use net::NetOptions;
pub use oauth::{Registration, Software};
pub use service::{Endpoint, Service};
pub use store::{FileStorage, Kind, MemoryStorage, Storage};

/// An access token is used only while it has at least this many seconds left.
const EXPIRY_MARGIN: i64 = 60;

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How the installation presents itself at registration.
    pub software: Software,
    /// Trust roots, name overrides and timeouts.
    pub net: NetOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            software: Software {
                client_name: "Letterlock".into(),
                software_id: "org.letterlock.cli".into(),
                software_version: env!("CARGO_PKG_VERSION").into(),
                software_statement: None,
            },
            net: NetOptions::default(),
        }
    }
}

/// What `login` is given: the address, and optionally where its services are and who issues
/// their tokens.
#[derive(Debug, Clone)]
pub struct Login {
    /// The mail address.
    pub address: String,
    /// Services whose location the person knows; discovered when empty.
    pub endpoints: Vec<Endpoint>,
    /// The issuer, when the person knows it: no probing then.
    pub issuer: Option<String>,
    /// Use the device grant instead of a browser on this machine.
    pub device: bool,
}

impl Login {
    /// A login for `address` with everything discovered.
    pub fn new(address: &str) -> Self {
        Self { address: address.into(), endpoints: Vec::new(), issuer: None, device: false }
    }
}

/// A service of an account and the resource indicator its tokens are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceGrant {
    /// Where the service is.
    pub endpoint: Endpoint,
    /// Its resource indicator at the issuer.
    pub resource: String,
}

/// The services of an account that one issuer serves: one registration, one consent, one
/// refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerGrant {
    /// The issuer.
    pub issuer: String,
    /// Its services.
    pub services: Vec<ServiceGrant>,
    /// The scope granted.
    #[serde(default)]
    pub scope: String,
}

/// A signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The mail address.
    pub address: String,
    /// Its services, by issuer.
    pub grants: Vec<IssuerGrant>,
}

impl Account {
    fn find(&self, service: Service) -> Option<(&IssuerGrant, &ServiceGrant)> {
        self.grants.iter().find_map(|grant| {
            grant
                .services
                .iter()
                .find(|item| item.endpoint.service == service)
                .map(|item| (grant, item))
        })
    }
}

/// A token for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// `Bearer`.
    pub token_type: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// What [`Client::logout`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    /// Issuers that confirmed the revocation.
    pub revoked: Vec<String>,
    /// Issuers that could not be told, with why; the local copy is gone anyway.
    pub not_revoked: Vec<(String, String)>,
}

/// The issuer found for each service, before registration.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The address.
    pub address: Address,
    /// Services grouped by issuer, with how each issuer was found.
    pub issuers: Vec<(Metadata, Vec<ServiceGrant>, String)>,
}

/// The client. Cheap to share; every method takes `&self`.
pub struct Client {
    storage: Arc<dyn Storage>,
    browser: Arc<dyn Browser>,
    options: Options,
    http: net::Http,
    random: SystemRandom,
    nonces: Mutex<HashMap<String, String>>,
}

impl Client {
    /// A client keeping its records in `storage` and showing pages with `browser`.
    pub fn new(
        storage: Arc<dyn Storage>,
        browser: Arc<dyn Browser>,
        options: Options,
    ) -> Result<Self, Error> {
        let http = net::Http::new(&options.net)?;
        Ok(Self {
            storage,
            browser,
            options,
            http,
            random: SystemRandom::new(),
            nonces: Mutex::default(),
        })
    }

    /// The storage in use.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    fn oauth(&self) -> oauth::Exchanges<'_> {
        oauth::Exchanges { http: &self.http, random: &self.random, nonces: &self.nonces }
    }

    /// Finds the services of an address and the issuer of each, and checks that each service
    /// may receive that issuer's tokens. Sends no token and registers nothing.
    pub async fn discover(&self, login: &Login, progress: &dyn Fn(&str)) -> Result<Plan, Error> {
        let address = Address::parse(&login.address)?;
        let mut endpoints = login.endpoints.clone();
        // Autoconfig is fetched only when it is needed: for the servers here, or later for the
        // issuer of a service that does not name one.
        let mut autoconfig = None;
        if endpoints.is_empty() {
            autoconfig = discover::autoconfig(&self.http, &address).await?;
            endpoints =
                autoconfig.as_ref().map(|found| found.endpoints.clone()).unwrap_or_default();
            if endpoints.is_empty() {
                progress(&format!("Asking DNS for {}'s mail servers (SRV)…", address.domain()));
                let dns = srv::Dns::new(self.options.net.dns_server, self.options.net.timeout)?;
                endpoints = dns.endpoints(&address, progress).await?;
            }
            if endpoints.is_empty() {
                return Err(Error::Discovery(format!(
                    "no mail servers found for {} (neither autoconfig nor SRV records): name \
                     them (--imap, --smtp, --carddav …)",
                    address.domain()
                )));
            }
        }
        // The issuer for services that name none, looked for once: `None` until then.
        let mut fallback: Option<Option<(Metadata, String)>> = None;
        let mut groups: Vec<(Metadata, Vec<ServiceGrant>, String)> = Vec::new();
        for endpoint in endpoints {
            let mut found = None;
            if login.issuer.is_none() {
                progress(&format!("Asking {} where to sign in…", endpoint.url));
                let asked = if endpoint.service.is_sasl() {
                    discover::from_sasl(&self.http, &endpoint, &self.options.net).await.map(
                        |found| {
                            found.map(|metadata| {
                                (metadata, format!("the SASL challenge of {}", endpoint.url), None)
                            })
                        },
                    )
                } else {
                    discover::from_protected_resource(&self.http, &endpoint).await.map(|found| {
                        found.map(|(metadata, resource)| {
                            let via = format!("the resource metadata of {}", endpoint.url);
                            (metadata, via, Some(resource))
                        })
                    })
                };
                found = match asked {
                    Ok(found) => found,
                    // A server that cannot be reached now may still be named by autoconfig or
                    // the domain; a server that answered wrongly stops everything.
                    Err(Error::Discovery(why) | Error::Network(why)) => {
                        progress(&format!("{} did not say: {why}", endpoint.url));
                        None
                    }
                    Err(error) => return Err(error),
                };
            }
            let (metadata, via, resource) = match found {
                Some(found) => found,
                None => {
                    if fallback.is_none() {
                        let found =
                            self.fallback_issuer(login, &address, autoconfig.take()).await?;
                        fallback = Some(found);
                    }
                    let (metadata, via) = fallback.clone().flatten().ok_or_else(|| {
                        Error::Discovery(format!(
                            "{} does not say where to sign in, and neither autoconfig nor \
                             {}'s well-known metadata names an issuer (try --issuer)",
                            endpoint.url,
                            address.domain()
                        ))
                    })?;
                    (metadata, via, None)
                }
            };
            let allowed = metadata.resource_for(&endpoint)?;
            let resource =
                resource.filter(|_| metadata.protected_resources.is_some()).unwrap_or(allowed);
            let service = ServiceGrant { endpoint, resource };
            match groups.iter_mut().find(|(known, _, _)| known.issuer == metadata.issuer) {
                Some((_, services, _)) => services.push(service),
                None => groups.push((metadata, vec![service], via)),
            }
        }
        Ok(Plan { address, issuers: groups })
    }

    /// The issuer for services that do not name one: `--issuer`, autoconfig's (fetched now
    /// unless `autoconfig` already holds it), or the domain's own well-known metadata.
    async fn fallback_issuer(
        &self,
        login: &Login,
        address: &Address,
        autoconfig: Option<discover::Autoconfig>,
    ) -> Result<Option<(Metadata, String)>, Error> {
        let parse = |text: &str| {
            Issuer::parse(text).map_err(|error| Error::Refused(format!("issuer {text:?}: {error}")))
        };
        if let Some(issuer) = &login.issuer {
            let issuer = parse(issuer)?;
            return Ok(Some((discover::metadata(&self.http, &issuer).await?, "--issuer".into())));
        }
        let autoconfig = match autoconfig {
            Some(found) => Some(found),
            None => discover::autoconfig(&self.http, address).await?,
        };
        if let Some(issuer) = autoconfig.as_ref().and_then(|found| found.issuer.as_deref()) {
            let issuer = parse(issuer)?;
            return Ok(Some((discover::metadata(&self.http, &issuer).await?, "autoconfig".into())));
        }
        let issuer = parse(&format!("https://{}", address.domain()))?;
        match discover::metadata(&self.http, &issuer).await {
            Ok(metadata) => {
                Ok(Some((metadata, format!("{}'s well-known metadata", address.domain()))))
            }
            Err(Error::Network(_) | Error::Discovery(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Discovers, registers (once per installation and issuer), and signs in: one consent per
    /// issuer for all of its services. Returns the account as stored.
    pub async fn login(&self, login: &Login, progress: &dyn Fn(&str)) -> Result<Account, Error> {
        let plan = self.discover(login, progress).await?;
        let mut account = Account { address: plan.address.as_str().to_owned(), grants: Vec::new() };
        for (metadata, services, via) in &plan.issuers {
            progress(&format!(
                "{} issues tokens for {} (found by {via})",
                metadata.issuer,
                names(services)
            ));
            let registration = self.registration(metadata, &plan.address, progress).await?;
            let mut scopes: Vec<&str> = Vec::new();
            for service in services {
                let wanted = service.endpoint.service.scope();
                if !scopes.contains(&wanted) {
                    scopes.push(wanted);
                }
            }
            scopes.push(scope::OFFLINE_ACCESS);
            if !metadata.scopes_supported.is_empty() {
                scopes.retain(|wanted| {
                    metadata.scopes_supported.iter().any(|offered| offered == wanted)
                });
            }
            let mut resources: Vec<String> = Vec::new();
            for service in services {
                if !resources.contains(&service.resource) {
                    resources.push(service.resource.clone());
                }
            }
            let request = oauth::Request {
                scope: scopes.join(" "),
                resources,
                login_hint: plan.address.as_str(),
            };
            // RFC 8252 §7.1: an issuer that took only a private-use redirect cannot answer to a
            // listener here; the device grant needs none, else the person pastes the answer.
            let device_instead =
                registration.private_use_redirect.is_some() && oauth::offers_device_grant(metadata);
            if device_instead && !login.device {
                progress(&format!(
                    "{} does not take loopback redirects; approving with a code instead (RFC 8628)",
                    metadata.issuer
                ));
            }
            let response = if login.device || device_instead {
                self.oauth()
                    .authorize_on_another_device(metadata, &registration, &request, progress)
                    .await?
            } else {
                let browser = self.browser.as_ref();
                self.oauth()
                    .authorize_in_browser(metadata, &registration, &request, browser, progress)
                    .await?
            };
            check_token_type(&response)?;
            let refresh = response.refresh_token.clone().ok_or_else(|| {
                Error::Authorization(format!(
                    "{} gave no refresh token (offline_access)",
                    metadata.issuer
                ))
            })?;
            let key = grant_key(plan.address.as_str(), metadata.issuer.as_str());
            let _lock = self.lock(&key).await?;
            self.storage.write(Kind::RefreshToken, &key, &refresh)?;
            self.storage.remove(Kind::AccessTokens, &key)?;
            account.grants.push(IssuerGrant {
                issuer: metadata.issuer.as_str().to_owned(),
                services: services.clone(),
                scope: response.scope.clone().unwrap_or_else(|| request.scope.clone()),
            });
        }
        let text = serde_json::to_string_pretty(&account)
            .map_err(|error| Error::storage("account", error))?;
        self.storage.write(Kind::Account, &account.address.to_ascii_lowercase(), &text)?;
        Ok(account)
    }

    /// The stored registration at an issuer, checked to be still valid, or a new one; at an
    /// issuer without dynamic registration, the client id the address's autoconfig publishes.
    async fn registration(
        &self,
        metadata: &Metadata,
        address: &Address,
        progress: &dyn Fn(&str),
    ) -> Result<Registration, Error> {
        let issuer = metadata.issuer.as_str();
        let _lock = self.lock(&format!("registration {issuer}")).await?;
        if let Some(stored) = self.read_registration(issuer)? {
            if self.oauth().still_registered(&stored).await? {
                return Ok(stored);
            }
            progress(&format!("{issuer} no longer knows this installation; registering again"));
        }
        let registration = match metadata.registration_endpoint {
            Some(_) => {
                progress(&format!("Registering this installation at {issuer}…"));
                self.oauth().register(metadata, &self.options.software, progress).await?
            }
            None => {
                let client_id = self.published_client_id(metadata, address).await?;
                progress(&format!(
                    "{issuer} offers no registration; using the client id {client_id} that \
                     {}'s autoconfig publishes",
                    address.domain()
                ));
                self.oauth().published(metadata, &client_id)?
            }
        };
        let text = serde_json::to_string(&registration)
            .map_err(|error| Error::storage("registration", error))?;
        self.storage.write(Kind::Registration, issuer, &text)?;
        Ok(registration)
    }

    /// The `<clientID>` of the address's autoconfig, when that autoconfig names this issuer or
    /// none: a client id published for another issuer is not used here.
    async fn published_client_id(
        &self,
        metadata: &Metadata,
        address: &Address,
    ) -> Result<String, Error> {
        let autoconfig = discover::autoconfig(&self.http, address).await?.unwrap_or_default();
        let same_issuer = autoconfig.issuer.as_deref().is_none_or(|named| {
            Issuer::parse(named).is_ok_and(|named| named.as_str() == metadata.issuer.as_str())
        });
        match autoconfig.client_id {
            Some(client_id) if same_issuer => Ok(client_id),
            _ => Err(Error::Discovery(format!(
                "{} offers no dynamic client registration (RFC 7591), and {}'s autoconfig \
                 publishes no client id for it",
                metadata.issuer,
                address.domain()
            ))),
        }
    }

    fn read_registration(&self, issuer: &str) -> Result<Option<Registration>, Error> {
        match self.storage.read(Kind::Registration, issuer)? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| Error::storage(format!("the registration at {issuer}"), error)),
            None => Ok(None),
        }
    }

    /// Every stored account.
    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        let mut accounts = Vec::new();
        for key in self.storage.keys(Kind::Account)? {
            if let Some(account) = self.account(&key)? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// One stored account.
    pub fn account(&self, address: &str) -> Result<Option<Account>, Error> {
        let key = address.trim().to_ascii_lowercase();
        match self.storage.read(Kind::Account, &key)? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| Error::storage(format!("the account {address}"), error)),
            None => Ok(None),
        }
    }

    /// A token for one service of an account: the cached one while it has a minute left, else
    /// a new one by refresh with the service's `resource` and scope (RFC 8707), under a lock
    /// shared by every process using this storage.
    pub async fn token(&self, address: &str, service: Service) -> Result<AccessToken, Error> {
        let account = self.account(address)?.ok_or_else(|| {
            Error::SignInAgain(format!("{address} is not signed in"), address.to_owned())
        })?;
        let (grant, item) = account.find(service).ok_or_else(|| {
            Error::Usage(format!(
                "{address} has no {service} service; it has {}",
                account
                    .grants
                    .iter()
                    .map(|grant| names(&grant.services))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let key = grant_key(&account.address, &grant.issuer);
        if let Some(token) = self.cached(&key, &item.resource)? {
            return Ok(token);
        }
        let _lock = self.lock(&key).await?;
        // Another process may have refreshed while this one waited.
        if let Some(token) = self.cached(&key, &item.resource)? {
            return Ok(token);
        }
        let sign_in_again = |why: &str| Error::SignInAgain(why.to_owned(), account.address.clone());
        let refresh = self
            .storage
            .read(Kind::RefreshToken, &key)?
            .ok_or_else(|| sign_in_again("no refresh token is stored"))?;
        let registration = self
            .read_registration(&grant.issuer)?
            .ok_or_else(|| sign_in_again("this installation is not registered"))?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("resource", item.resource.as_str()),
            ("scope", service.scope()),
        ];
        let response = match self.oauth().token_request(&registration, &form).await {
            Ok(response) => response,
            Err(Error::Server {
                error: letterlock_protocol::ErrorCode::InvalidGrant,
                description,
            }) => {
                self.storage.remove(Kind::RefreshToken, &key)?;
                self.storage.remove(Kind::AccessTokens, &key)?;
                let why = description.unwrap_or_else(|| "the grant is no longer valid".into());
                return Err(sign_in_again(&format!("{} refused the refresh: {why}", grant.issuer)));
            }
            Err(Error::Server { error: letterlock_protocol::ErrorCode::InvalidClient, .. }) => {
                self.storage.remove(Kind::Registration, &grant.issuer)?;
                return Err(sign_in_again(&format!(
                    "{} no longer knows this installation",
                    grant.issuer
                )));
            }
            Err(error) => return Err(error),
        };
        check_token_type(&response)?;
        if let Some(rotated) = &response.refresh_token {
            self.storage.write(Kind::RefreshToken, &key, rotated)?;
        }
        let token = AccessToken {
            token: response.access_token,
            token_type: response.token_type,
            expires_at: oauth::now() + response.expires_in.unwrap_or(300),
        };
        let mut cache = self.cache(&key)?;
        cache.retain(|_, cached| cached.expires_at > oauth::now());
        cache.insert(item.resource.clone(), token.clone());
        let text =
            serde_json::to_string(&cache).map_err(|error| Error::storage("token cache", error))?;
        self.storage.write(Kind::AccessTokens, &key, &text)?;
        Ok(token)
    }

    fn cache(&self, key: &str) -> Result<BTreeMap<String, AccessToken>, Error> {
        Ok(self
            .storage
            .read(Kind::AccessTokens, key)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    fn cached(&self, key: &str, resource: &str) -> Result<Option<AccessToken>, Error> {
        let now = oauth::now();
        Ok(self.cache(key)?.remove(resource).filter(|token| token.expires_at - EXPIRY_MARGIN > now))
    }

    /// Revokes the account's grants at their issuers (RFC 7009) and forgets the account. The
    /// local copy is removed even if an issuer cannot be reached; the result says which were
    /// told.
    pub async fn logout(&self, address: &str) -> Result<Logout, Error> {
        let account = self
            .account(address)?
            .ok_or_else(|| Error::Usage(format!("{address} is not signed in")))?;
        let mut report = Logout { revoked: Vec::new(), not_revoked: Vec::new() };
        for grant in &account.grants {
            let key = grant_key(&account.address, &grant.issuer);
            let _lock = self.lock(&key).await?;
            let refresh = self.storage.read(Kind::RefreshToken, &key)?;
            let registration = self.read_registration(&grant.issuer)?;
            let outcome = match (refresh, registration) {
                (Some(refresh), Some(registration)) => {
                    self.oauth().revoke(&registration, &refresh).await
                }
                _ => Err(Error::Usage("no refresh token was stored".into())),
            };
            match outcome {
                Ok(()) => report.revoked.push(grant.issuer.clone()),
                Err(error) => report.not_revoked.push((grant.issuer.clone(), error.to_string())),
            }
            self.storage.remove(Kind::RefreshToken, &key)?;
            self.storage.remove(Kind::AccessTokens, &key)?;
        }
        self.storage.remove(Kind::Account, &account.address.to_ascii_lowercase())?;
        Ok(report)
    }

    /// Takes a storage lock without blocking the runtime.
    async fn lock(&self, name: &str) -> Result<store::LockGuard, Error> {
        let storage = Arc::clone(&self.storage);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || storage.lock(&name))
            .await
            .map_err(|error| Error::Storage(format!("lock: {error}")))?
    }
}

/// The key of an account's records at one issuer.
fn grant_key(address: &str, issuer: &str) -> String {
    format!("{} {issuer}", address.to_ascii_lowercase())
}

fn names(services: &[ServiceGrant]) -> String {
    services.iter().map(|item| item.endpoint.service.name()).collect::<Vec<_>>().join(", ")
}

/// The client asks for plain bearer tokens: SASL cannot carry DPoP proofs.
fn check_token_type(response: &oauth::TokenResponse) -> Result<(), Error> {
    if response.token_type.eq_ignore_ascii_case("bearer") {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "the issuer returned a {} token, not Bearer",
            response.token_type
        )))
    }
}
