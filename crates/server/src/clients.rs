//! Clients: checking a registration (metadata, software statement, keys) and opening a client
//! id, whichever of the three kinds it is (well-known, stateless sealed, stored).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use letterlock_jose::key::check_public_key;
use letterlock_jose::sealing::{OpenError, PREFIX};
use letterlock_jose::statement::{self, StatementError};
use letterlock_protocol::{
    ApplicationType, AuthMethod, ClientMetadata, ErrorCode, GrantType, Localized,
    RegistrationError, ScopeSet,
};

use crate::config::StatementPolicy;
use crate::error::ApiError;
use crate::state::AppState;

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
    /// When it was registered (`None` for well-known ids).
    pub issued_at: Option<i64>,
}

impl Client {
    /// A well-known client id accepts any loopback or private-use redirect, and only those.
    pub fn accepts_any_native_redirect(&self) -> bool {
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

impl AppState {
    /// Checks a registration request object (RFC 7591 §3.1): the software statement per the
    /// configured policy, then the metadata, then the installation's keys.
    pub fn check_registration(
        &self,
        mut request: Map<String, Value>,
    ) -> Result<Registration, ApiError> {
        let presented = match request.remove("software_statement") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidSoftwareStatement,
                    "software_statement must be a string",
                ));
            }
        };
        let policy = self.0.registration.statements;
        let mut software_statement = None;
        let mut vendor = None;
        match (policy, presented) {
            (StatementPolicy::Ignore, _) | (StatementPolicy::Prefer, None) => {}
            (StatementPolicy::Require, None) => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnapprovedSoftwareStatement,
                    "this server registers only software vouched for by a trusted vendor: send a software_statement",
                ));
            }
            (StatementPolicy::Require | StatementPolicy::Prefer, Some(text)) => {
                match statement::verify(&text, &self.0.vendors, self.now()) {
                    Ok(verified) => {
                        // RFC 7591 §2.3: the statement's values take precedence.
                        request.extend(verified.metadata);
                        vendor = Some(Vendor {
                            issuer: verified.vendor_issuer,
                            name: verified.vendor_name,
                        });
                        software_statement = Some(text);
                    }
                    Err(StatementError::UnknownVendor(_)) if policy == StatementPolicy::Prefer => {}
                    Err(error @ StatementError::UnknownVendor(_)) => {
                        return Err(ApiError::bad_request(
                            ErrorCode::UnapprovedSoftwareStatement,
                            error.to_string(),
                        ));
                    }
                    Err(error) => {
                        return Err(ApiError::bad_request(
                            ErrorCode::InvalidSoftwareStatement,
                            error.to_string(),
                        ));
                    }
                }
            }
        }
        let metadata = ClientMetadata::from_json(&request).map_err(registration_error)?;
        for key in &metadata.jwks {
            check_public_key(key).map_err(|error| {
                ApiError::bad_request(ErrorCode::InvalidClientMetadata, format!("jwks: {error}"))
            })?;
        }
        Ok(Registration { metadata, software_statement, vendor })
    }

    /// Seals a registration into a stateless client id.
    pub fn seal_client_id(
        &self,
        registration: &Registration,
        issued_at: i64,
    ) -> Result<String, ApiError> {
        let sealed = Sealed {
            m: registration.metadata.to_json(),
            t: issued_at,
            v: registration.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
        };
        let plaintext = serde_json::to_vec(&sealed).map_err(|error| ApiError::internal(&error))?;
        self.sealer()
            .seal(&plaintext, self.issuer().as_str(), self.random().for_crypto())
            .map_err(|error| ApiError::internal(&error))
    }

    /// Opens a client id, or says exactly why not: the operation every endpoint that receives
    /// a `client_id` starts with.
    pub async fn open_client(&self, client_id: &str) -> Result<Client, ClientIdError> {
        if let Some(public) = self.0.public_clients.get(client_id) {
            let metadata = ClientMetadata {
                redirect_uris: Vec::new(),
                token_endpoint_auth_method: AuthMethod::None,
                grant_types: GrantType::ALL.to_vec(),
                application_type: ApplicationType::Native,
                scope: ScopeSet::all(),
                jwks: Vec::new(),
                client_name: public.name.clone().map(Localized::untagged).unwrap_or_default(),
                client_uri: Localized::default(),
                logo_uri: Localized::default(),
                tos_uri: Localized::default(),
                policy_uri: Localized::default(),
                contacts: Vec::new(),
                software_id: None,
                software_version: None,
                dpop_bound_access_tokens: false,
            };
            return Ok(Client {
                client_id: client_id.to_owned(),
                origin: ClientOrigin::WellKnown,
                metadata,
                vendor: None,
                issued_at: None,
            });
        }
        if client_id.starts_with(PREFIX) && client_id.as_bytes().get(PREFIX.len()) == Some(&b'.') {
            return self.open_stateless(client_id);
        }
        let record = self.store().client(client_id).await?.ok_or(ClientIdError::Unknown)?;
        let object: Map<String, Value> =
            serde_json::from_str(&record.metadata).map_err(|_| ClientIdError::Outdated)?;
        let metadata = ClientMetadata::from_json(&object).map_err(|_| ClientIdError::Outdated)?;
        Ok(Client {
            client_id: record.client_id,
            origin: ClientOrigin::Stored,
            metadata,
            vendor: record.vendor.and_then(|issuer| self.trusted_vendor(&issuer)),
            issued_at: Some(record.issued_at),
        })
    }

    fn open_stateless(&self, client_id: &str) -> Result<Client, ClientIdError> {
        let plaintext = self.sealer().open(client_id, self.issuer().as_str())?;
        let sealed: Sealed =
            serde_json::from_slice(&plaintext).map_err(|_| ClientIdError::Outdated)?;
        if let Some(max_age) = self.0.registration.client_id_max_age
            && self.now().saturating_sub(sealed.t) > max_age
        {
            return Err(ClientIdError::Expired);
        }
        let metadata = ClientMetadata::from_json(&sealed.m).map_err(|_| ClientIdError::Outdated)?;
        Ok(Client {
            client_id: client_id.to_owned(),
            origin: ClientOrigin::Stateless,
            metadata,
            vendor: sealed.v.and_then(|issuer| self.trusted_vendor(&issuer)),
            issued_at: Some(sealed.t),
        })
    }

    fn trusted_vendor(&self, issuer: &str) -> Option<Vendor> {
        self.0
            .vendors
            .iter()
            .find(|vendor| vendor.issuer == issuer)
            .map(|vendor| Vendor { issuer: vendor.issuer.clone(), name: vendor.name.clone() })
    }
}

/// A metadata error as RFC 7591 §3.2.2 JSON.
pub fn registration_error(error: RegistrationError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}
