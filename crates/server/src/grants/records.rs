//! The stored records' JSON and strings as types: the one place a pending request, a code's
//! details, a device request, a device code's status or a grant's scopes and resources are
//! turned from what storage keeps into what the rules work with, and back.

use letterlock_protocol::ScopeSet;
pub use letterlock_store::DeviceStatus;
use letterlock_store::GrantRecord;
use serde::{Deserialize, Serialize};

use super::GrantError;

/// A request waiting for sign-in and consent, kept in storage so that any node can finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The client.
    pub client_id: String,
    /// Where the answer goes (checked against the registration).
    pub redirect_uri: String,
    /// The client's `state`, passed through.
    pub state: Option<String>,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// The services asked for.
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code will be bound to.
    pub dpop_jkt: Option<String>,
    /// The address to offer on the sign-in page.
    pub login_hint: Option<String>,
}

impl PendingRequest {
    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From storage.
    pub fn from_json(json: &str) -> Result<Self, GrantError> {
        serde_json::from_str(json).map_err(GrantError::internal)
    }
}

/// What a code stands for, stored (by the code's hash) until it is redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeDetails {
    /// The client the code was issued to.
    pub client_id: String,
    /// The authorization request's redirect URI.
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
    /// The scopes approved, space-separated.
    pub scope: String,
    /// The services approved.
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    /// The user who approved.
    pub user_id: String,
}

/// What a device asked for, stored with its codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// The client.
    pub client_id: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// The services asked for.
    pub resources: Vec<String>,
}

impl DeviceRequest {
    /// As stored.
    pub fn to_json(&self) -> Result<String, GrantError> {
        serde_json::to_string(self).map_err(GrantError::internal)
    }

    /// From storage.
    pub fn from_json(json: &str) -> Result<Self, GrantError> {
        serde_json::from_str(json).map_err(GrantError::internal)
    }
}

/// A grant's scopes.
pub fn granted_scope(grant: &GrantRecord) -> Result<ScopeSet, GrantError> {
    ScopeSet::parse(&grant.scope).map_err(GrantError::internal)
}

/// A grant's resources.
pub fn granted_resources(grant: &GrantRecord) -> Result<Vec<String>, GrantError> {
    serde_json::from_str(&grant.resources).map_err(GrantError::internal)
}

/// A grant's resources, or none if the record is corrupt (for display and comparisons).
pub fn resources_or_none(grant: &GrantRecord) -> Vec<String> {
    serde_json::from_str(&grant.resources).unwrap_or_default()
}

/// The redirect URIs the person approved for a grant, or none if the record is corrupt.
pub fn approved_redirects(grant: &GrantRecord) -> Vec<String> {
    serde_json::from_str(&grant.redirect_uris).unwrap_or_default()
}
