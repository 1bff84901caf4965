//! The stored requests as types: a pending authorization request, a code's details and a device
//! request are kept by the store as JSON text and become these types here, in one place. (A
//! grant's scopes, resources and approved redirects, and a device code's status, are typed by
//! the store itself.)

pub use letterlock_store::DeviceStatus;
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
    /// The PKCE challenge (S256); `None` only for a configured web client exempted from PKCE.
    pub code_challenge: Option<String>,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// The services asked for.
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code will be bound to.
    pub dpop_jkt: Option<String>,
    /// The address to offer on the sign-in page.
    pub login_hint: Option<String>,
    /// OpenID Connect Core §3.1.2.1 `nonce`, returned in the ID token (§3.1.3.6). Absent in
    /// requests stored before OpenID Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
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
    /// The PKCE challenge (S256); `None` only for a configured web client exempted from PKCE.
    pub code_challenge: Option<String>,
    /// The scopes approved, space-separated.
    pub scope: String,
    /// The services approved.
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    /// The user who approved.
    pub user_id: String,
    /// OpenID Connect Core §3.1.2.1 `nonce` of the authorization request, for the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// OpenID Connect Core §2 `auth_time`: when the person signed in (their session began).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl CodeDetails {
    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From storage.
    pub fn from_json(json: &str) -> Result<Self, GrantError> {
        serde_json::from_str(json).map_err(GrantError::internal)
    }
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
