//! Clients: checking a registration (metadata, software statement, keys) and opening a client
//! id, whichever of the three kinds it is (well-known, stateless sealed, stored).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use letterlock_jose::key::check_public_key;
use letterlock_jose::sealing::{OpenError, PREFIX};
use letterlock_jose::statement::{self, StatementError};
use letterlock_protocol::{
    ApplicationType, AuthMethod, ClientMetadata, ErrorCode, GrantType, Localized, RedirectUri,
    RegistrationError, ScopeSet,
};

use std::collections::HashMap;
use std::sync::Arc;

use letterlock_jose::sealing::Sealer;
use letterlock_jose::statement::TrustedVendor;
use letterlock_protocol::Issuer;
use letterlock_store::Store;

use crate::config::StatementPolicy;
use crate::random::Randomness;
use crate::settings::{PublicClient, RegistrationSettings, WebClient};

/// A trusted vendor that vouched for a client through a software statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    /// The vendor's `iss`.
    pub issuer: String,
    /// The publisher name shown to users.
    pub name: String,
}

/// Where a client id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOrigin {
    /// A well-known public client id from the configuration; needs no registration.
    WellKnown,
    /// One of the operator's confidential web applications (`[[web_clients]]`).
    Configured,
    /// A sealed registration.
    Stateless,
    /// A stored registration (RFC 7592).
    Stored,
}

/// An opened client id: what the authorization and token endpoints need to know.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client id as presented.
    pub client_id: String,
    /// Which kind of client id it is.
    pub origin: ClientOrigin,
    /// The verified metadata. A well-known client has no registered redirect URIs; see
    /// [`Client::accepts_any_native_redirect`].
    pub metadata: ClientMetadata,
    /// The vendor that vouched for it, if the vendor is still trusted.
    pub vendor: Option<Vendor>,
    /// When it was registered (`None` for well-known and configured ids).
    pub issued_at: Option<i64>,
    /// The operator's settings of a configured web client (its secret's hash, its methods, its
    /// PKCE exemption); `None` for every other kind.
    pub web: Option<WebClient>,
}

impl Client {
    /// The application's name to show people (its default-language `client_name`).
    pub fn display_name(&self) -> String {
        self.metadata
            .client_name
            .default_value()
            .map_or_else(|| "An application without a name".to_owned(), str::to_owned)
    }

    /// A well-known client id accepts any loopback or private-use redirect, and only those.
    pub fn accepts_any_native_redirect(&self) -> bool {
        self.origin == ClientOrigin::WellKnown
    }

    /// True when a code is useless without the installation's own key or secret, because the
    /// token endpoint makes the client prove it (`private_key_jwt`, `client_secret_basic`).
    /// RFC 8252 §8.6: only then may a request be answered without asking the person. A public
    /// client (`none`, every well-known id) can be any program that receives its redirect: a
    /// private-use scheme or a loopback port is open to every app on the device, and a
    /// `dpop_jkt` proves nothing, since the other program brings its own key.
    pub fn proves_its_identity(&self) -> bool {
        self.origin != ClientOrigin::WellKnown
            && matches!(
                self.metadata.token_endpoint_auth_method,
                AuthMethod::PrivateKeyJwt
                    | AuthMethod::ClientSecretBasic
                    | AuthMethod::ClientSecretPost
            )
    }

    /// True only for a configured web client whose operator set `require_pkce = false`: its
    /// authorization requests may then leave PKCE out (RFC 9700 §2.1.1: a confidential client
    /// may rely on its secret and the exact redirect instead). Never for a public or registered
    /// client.
    pub fn pkce_optional(&self) -> bool {
        self.origin == ClientOrigin::Configured
            && self.web.as_ref().is_some_and(|web| !web.require_pkce)
    }

    /// True when a redirect URI presented in an authorization request is one this client may
    /// use: a configured web client's only byte for byte (no loopback port is left open), every
    /// other client's as [`letterlock_protocol::RedirectUri::matches`] says.
    pub fn redirect_is_exact(&self, presented: &str) -> bool {
        match &self.web {
            Some(web) => web.redirect_uris.iter().any(|uri| uri.as_str() == presented),
            None => true,
        }
    }

    /// True when many programs share this client id (a well-known public id): each approval is
    /// then a device of its own, so that revoking one program leaves the others, and scopes
    /// granted to one never reach another.
    pub fn is_shared(&self) -> bool {
        self.origin == ClientOrigin::WellKnown
    }
}

/// Why a client id does not open. Every variant is `invalid_client` at the edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdError {
    /// The sealed id is malformed, altered, or under an unknown or retired key.
    #[error(transparent)]
    Sealed(#[from] OpenError),
    /// The sealed id is older than `registration.client_id_max_age_seconds`.
    #[error("the client id has expired; register again")]
    Expired,
    /// The sealed registration no longer passes today's checks.
    #[error("the client's registration is no longer acceptable; register again")]
    Outdated,
    /// No stored client has this id.
    #[error("unknown client id")]
    Unknown,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Storage(#[from] letterlock_store::Error),
}

/// What a stateless client id seals. Short member names: the id travels in every URL.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    /// The registered metadata in RFC 7591 form.
    m: Map<String, Value>,
    /// Issue time.
    t: i64,
    /// The vouching vendor's `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
    /// True when the vendor's statement named the redirect URIs (and keys, if any) sealed in
    /// `m`. Ids sealed before statements had to (issue 14) carry `v` without it: a statement
    /// copied out of a vendor's app could vouch there for anyone's redirects, so their `v` is
    /// not believed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    r: bool,
}

/// A registration that passed every check, ready to be issued.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The metadata, statement values applied.
    pub metadata: ClientMetadata,
    /// The statement that was verified and used, to echo unchanged.
    pub software_statement: Option<String>,
    /// The vendor that signed it.
    pub vendor: Option<Vendor>,
}

/// Why a registration is refused, or could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// RFC 7591 §3.2.2: the request is refused with this error code.
    #[error("{description}")]
    Refused {
        /// The RFC 7591 error code.
        code: ErrorCode,
        /// Why.
        description: String,
    },
    /// Sealing the registration failed (a fault of ours).
    #[error("sealing the registration failed: {0}")]
    Internal(String),
}

impl RegisterError {
    fn refused(code: ErrorCode, description: impl Into<String>) -> Self {
        Self::Refused { code, description: description.into() }
    }
}

impl From<RegistrationError> for RegisterError {
    fn from(error: RegistrationError) -> Self {
        Self::refused(error.code(), error.to_string())
    }
}

/// Registering and opening clients, over what they need of the shared state (see
/// [`crate::AppState::clients`]).
pub struct Clients<'a> {
    store: &'a Store,
    sealer: Arc<Sealer>,
    issuer: &'a Issuer,
    public_clients: &'a HashMap<String, PublicClient>,
    web_clients: &'a HashMap<String, WebClient>,
    vendors: &'a [TrustedVendor],
    registration: &'a RegistrationSettings,
    random: &'a Randomness,
    now: i64,
}

impl<'a> Clients<'a> {
    /// The clients of one issuer at `now`.
    #[allow(clippy::too_many_arguments)] // reason: the pieces of the shared state it reads
    pub fn new(
        store: &'a Store,
        sealer: Arc<Sealer>,
        issuer: &'a Issuer,
        public_clients: &'a HashMap<String, PublicClient>,
        web_clients: &'a HashMap<String, WebClient>,
        vendors: &'a [TrustedVendor],
        registration: &'a RegistrationSettings,
        random: &'a Randomness,
        now: i64,
    ) -> Self {
        Self {
            store,
            sealer,
            issuer,
            public_clients,
            web_clients,
            vendors,
            registration,
            random,
            now,
        }
    }

    /// Checks a registration request object (RFC 7591 §3.1): the software statement per the
    /// configured policy, then the metadata, then the installation's keys.
    pub fn check_registration(
        &self,
        mut request: Map<String, Value>,
    ) -> Result<Registration, RegisterError> {
        let presented = match request.remove("software_statement") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                return Err(RegisterError::refused(
                    ErrorCode::InvalidSoftwareStatement,
                    "software_statement must be a string",
                ));
            }
        };
        let policy = self.registration.statements;
        let mut software_statement = None;
        let mut vendor = None;
        match (policy, presented) {
            (StatementPolicy::Ignore, _) | (StatementPolicy::Prefer, None) => {}
            (StatementPolicy::Require, None) => {
                return Err(RegisterError::refused(
                    ErrorCode::UnapprovedSoftwareStatement,
                    "this server registers only software vouched for by a trusted vendor: send a software_statement",
                ));
            }
            (StatementPolicy::Require | StatementPolicy::Prefer, Some(text)) => {
                match statement::verify(&text, self.vendors, self.now) {
                    Ok(verified) => match binds(&verified.metadata, &request) {
                        Ok(()) => {
                            // RFC 7591 §2.3: the statement's values take precedence.
                            request.extend(verified.metadata);
                            vendor = Some(Vendor {
                                issuer: verified.vendor_issuer,
                                name: verified.vendor_name,
                            });
                            software_statement = Some(text);
                        }
                        // Like an unknown vendor's statement: neither applied nor echoed.
                        Err(_) if policy == StatementPolicy::Prefer => {}
                        Err(reason) => {
                            return Err(RegisterError::refused(
                                ErrorCode::UnapprovedSoftwareStatement,
                                reason,
                            ));
                        }
                    },
                    Err(StatementError::UnknownVendor(_)) if policy == StatementPolicy::Prefer => {}
                    Err(error @ StatementError::UnknownVendor(_)) => {
                        return Err(RegisterError::refused(
                            ErrorCode::UnapprovedSoftwareStatement,
                            error.to_string(),
                        ));
                    }
                    Err(error) => {
                        return Err(RegisterError::refused(
                            ErrorCode::InvalidSoftwareStatement,
                            error.to_string(),
                        ));
                    }
                }
            }
        }
        let metadata = ClientMetadata::from_json(&request)?;
        // RFC 8252 §7.1: a provider may take only private-use (reverse-DNS) schemes from
        // installed programs, as some large ones do; the client then uses one of those.
        if !self.registration.loopback_redirects
            && metadata
                .redirect_uris
                .iter()
                .any(|uri| uri.kind() == letterlock_protocol::redirect::RedirectKind::Loopback)
        {
            return Err(RegisterError::refused(
                ErrorCode::InvalidRedirectUri,
                "this server does not take loopback redirect URIs: register a private-use URI \
                 scheme named after your domain, such as com.example.app:/callback (RFC 8252 §7.1)",
            ));
        }
        for key in &metadata.jwks {
            check_public_key(key).map_err(|error| {
                RegisterError::refused(ErrorCode::InvalidClientMetadata, format!("jwks: {error}"))
            })?;
        }
        Ok(Registration { metadata, software_statement, vendor })
    }

    /// Seals a registration into a stateless client id.
    pub fn seal(
        &self,
        registration: &Registration,
        issued_at: i64,
    ) -> Result<String, RegisterError> {
        let sealed = Sealed {
            m: registration.metadata.to_json(),
            t: issued_at,
            v: registration.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
            r: registration.vendor.is_some(),
        };
        let plaintext = serde_json::to_vec(&sealed)
            .map_err(|error| RegisterError::Internal(error.to_string()))?;
        self.sealer
            .seal(&plaintext, self.issuer.as_str(), self.random.for_crypto())
            .map_err(|error| RegisterError::Internal(error.to_string()))
    }

    /// Opens a client id, or says exactly why not: the operation every endpoint that receives
    /// a `client_id` starts with.
    pub async fn open(&self, client_id: &str) -> Result<Client, ClientIdError> {
        if let Some(public) = self.public_clients.get(client_id) {
            let metadata = configured_metadata(
                Vec::new(),
                AuthMethod::None,
                GrantType::ALL.to_vec(),
                ApplicationType::Native,
                public.name.clone().map(Localized::untagged).unwrap_or_default(),
            );
            return Ok(Client {
                client_id: client_id.to_owned(),
                origin: ClientOrigin::WellKnown,
                metadata,
                vendor: None,
                issued_at: None,
                web: None,
            });
        }
        if let Some(web) = self.web_clients.get(client_id) {
            return Ok(configured_client(client_id, web));
        }
        if client_id.starts_with(PREFIX) && client_id.as_bytes().get(PREFIX.len()) == Some(&b'.') {
            return self.open_stateless(client_id);
        }
        let record = self.store.client(client_id).await?.ok_or(ClientIdError::Unknown)?;
        let object: Map<String, Value> =
            serde_json::from_str(&record.metadata).map_err(|_| ClientIdError::Outdated)?;
        let metadata = ClientMetadata::from_json(&object).map_err(|_| ClientIdError::Outdated)?;
        // A record stored before statements had to name the redirect URIs may hold a copied
        // statement's vendor: the statement kept with it says whether it vouches for these.
        let vouched = record
            .software_statement
            .as_deref()
            .is_some_and(|statement| names_these_redirects(statement, &object));
        Ok(Client {
            client_id: record.client_id,
            origin: ClientOrigin::Stored,
            metadata,
            vendor: record
                .vendor
                .filter(|_| vouched)
                .and_then(|issuer| self.trusted_vendor(&issuer)),
            issued_at: Some(record.issued_at),
            web: None,
        })
    }

    fn open_stateless(&self, client_id: &str) -> Result<Client, ClientIdError> {
        let plaintext = self.sealer.open(client_id, self.issuer.as_str())?;
        let sealed: Sealed =
            serde_json::from_slice(&plaintext).map_err(|_| ClientIdError::Outdated)?;
        if let Some(max_age) = self.registration.client_id_max_age
            && self.now.saturating_sub(sealed.t) > max_age
        {
            return Err(ClientIdError::Expired);
        }
        let metadata = ClientMetadata::from_json(&sealed.m).map_err(|_| ClientIdError::Outdated)?;
        Ok(Client {
            client_id: client_id.to_owned(),
            origin: ClientOrigin::Stateless,
            metadata,
            vendor: sealed.v.filter(|_| sealed.r).and_then(|issuer| self.trusted_vendor(&issuer)),
            issued_at: Some(sealed.t),
            web: None,
        })
    }

    /// The trusted vendor with this `iss`, if it is still trusted.
    pub fn trusted_vendor(&self, issuer: &str) -> Option<Vendor> {
        self.vendors
            .iter()
            .find(|vendor| vendor.issuer == issuer)
            .map(|vendor| Vendor { issuer: vendor.issuer.clone(), name: vendor.name.clone() })
    }
}

/// The metadata of a client the operator configured rather than registered: the given
/// redirects, method, grants, kind and name, every scope, and nothing else (no keys, links or
/// contacts to show).
fn configured_metadata(
    redirect_uris: Vec<RedirectUri>,
    token_endpoint_auth_method: AuthMethod,
    grant_types: Vec<GrantType>,
    application_type: ApplicationType,
    client_name: Localized,
) -> ClientMetadata {
    ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        application_type,
        scope: ScopeSet::all(),
        jwks: Vec::new(),
        client_name,
        client_uri: Localized::default(),
        logo_uri: Localized::default(),
        tos_uri: Localized::default(),
        policy_uri: Localized::default(),
        contacts: Vec::new(),
        software_id: None,
        software_version: None,
        dpop_bound_access_tokens: false,
    }
}

/// A configured web client as the endpoints see a client: a confidential web application with
/// the operator's redirect URIs and name, allowed the code and refresh grants. Its metadata's
/// one method is the first configured; [`Client::web`] holds them all.
fn configured_client(client_id: &str, web: &WebClient) -> Client {
    let metadata = configured_metadata(
        web.redirect_uris.clone(),
        web.auth_methods.first().copied().unwrap_or(AuthMethod::ClientSecretBasic),
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        ApplicationType::Web,
        Localized::untagged(web.name.clone()),
    );
    Client {
        client_id: client_id.to_owned(),
        origin: ClientOrigin::Configured,
        metadata,
        vendor: None,
        issued_at: None,
        web: Some(web.clone()),
    }
}

/// Whether a trusted statement vouches for this registration request, or why not. A statement
/// is copied easily (it ships inside the vendor's public app), so what it vouches for must be
/// where the codes go: it must name `redirect_uris`, and the request may leave them out or name
/// exactly the same; when the statement names `jwks`, the request's keys, if any, must be the
/// same too. A statement without `jwks` leaves each installation its own key.
fn binds(statement: &Map<String, Value>, request: &Map<String, Value>) -> Result<(), String> {
    let Some(named) = statement.get("redirect_uris") else {
        return Err("the software statement names no redirect_uris, so it cannot vouch for \
                    where this client's codes go"
            .into());
    };
    if let Some(requested) = request.get("redirect_uris")
        && !same_strings(requested, named)
    {
        return Err("the request's redirect_uris differ from the software statement's".into());
    }
    if let (Some(named), Some(requested)) = (statement.get("jwks"), request.get("jwks"))
        && named != requested
    {
        return Err("the request's jwks differ from the software statement's".into());
    }
    Ok(())
}

/// True when a stored (already verified) statement names exactly the redirect URIs of the
/// stored metadata.
fn names_these_redirects(statement: &str, metadata: &Map<String, Value>) -> bool {
    let Ok(jws) = letterlock_jose::jws::UnverifiedJws::parse(statement) else { return false };
    match (jws.unverified_claims().get("redirect_uris"), metadata.get("redirect_uris")) {
        (Some(named), Some(registered)) => same_strings(named, registered),
        _ => false,
    }
}

/// Two JSON arrays of strings holding the same strings, in any order.
fn same_strings(left: &Value, right: &Value) -> bool {
    let strings = |value: &Value| -> Option<std::collections::BTreeSet<String>> {
        value.as_array()?.iter().map(|item| item.as_str().map(str::to_owned)).collect()
    };
    match (strings(left), strings(right)) {
        (Some(left), Some(right)) => !left.is_empty() && left == right,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_statement_binds_only_the_redirects_and_keys_it_names() {
        let statement = object(serde_json::json!({"redirect_uris": ["a:/1", "b:/2"]}));
        assert!(binds(&statement, &object(serde_json::json!({}))).is_ok());
        assert!(
            binds(&statement, &object(serde_json::json!({"redirect_uris": ["b:/2", "a:/1"]})))
                .is_ok()
        );
        for request in [
            serde_json::json!({"redirect_uris": ["a:/1"]}),
            serde_json::json!({"redirect_uris": ["a:/1", "b:/2", "c:/3"]}),
            serde_json::json!({"redirect_uris": "a:/1"}),
            serde_json::json!({"redirect_uris": []}),
        ] {
            assert!(binds(&statement, &object(request.clone())).is_err(), "{request}");
        }
        assert!(binds(&object(serde_json::json!({"client_name": "x"})), &Map::new()).is_err());
        let with_keys = object(
            serde_json::json!({"redirect_uris": ["a:/1"], "jwks": {"keys": [{"kty": "EC"}]}}),
        );
        assert!(binds(&with_keys, &object(serde_json::json!({"redirect_uris": ["a:/1"]}))).is_ok());
        assert!(
            binds(&with_keys, &object(serde_json::json!({"jwks": {"keys": [{"kty": "OKP"}]}})))
                .is_err()
        );
    }
}
