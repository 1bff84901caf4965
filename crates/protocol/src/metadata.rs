//! Authorization server metadata (RFC 8414 §2), built from what the server really offers.

use serde::Serialize;

use crate::issuer::Issuer;
use crate::registration::{AuthMethod, GrantType};
use crate::resource::Resource;
use crate::scope;

/// The metadata document served at both well-known locations. Optional members are left out
/// when empty (RFC 8414 §3.2).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthorizationServerMetadata {
    /// The issuer, exactly as configured.
    pub issuer: String,
    /// RFC 6749 §3.1.
    pub authorization_endpoint: String,
    /// RFC 6749 §3.2.
    pub token_endpoint: String,
    /// RFC 8414 §2: the JWK Set of the keys that sign the server's tokens.
    pub jwks_uri: String,
    /// RFC 7591 §3: where clients register.
    pub registration_endpoint: String,
    /// The scopes, the interoperable mail scopes first (draft-ietf-mailmaint-oauth-public §3.9).
    pub scopes_supported: Vec<&'static str>,
    /// Only the authorization code flow.
    pub response_types_supported: Vec<&'static str>,
    /// `response_mode` values (RFC 8414 §2): only the query string.
    pub response_modes_supported: Vec<&'static str>,
    /// Grant types a client may register.
    pub grant_types_supported: Vec<&'static str>,
    /// PKCE: `S256` only (RFC 7636; RFC 9700 §2.1.1).
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Client authentication methods.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms accepted in `private_key_jwt` client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 7662, for resource servers.
    pub introspection_endpoint: String,
    /// How resource servers authenticate at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9728 §4: the services tokens may be issued for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protected_resources: Vec<String>,
    /// Where the operator documents the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}

/// The JWS algorithms Letterlock signs and verifies with: ES256 first, then EdDSA.
pub const SIGNING_ALGORITHMS: [&str; 2] = ["ES256", "EdDSA"];

impl AuthorizationServerMetadata {
    /// The metadata for an issuer and its configured protected resources.
    pub fn new(
        issuer: &Issuer,
        protected_resources: &[Resource],
        service_documentation: Option<String>,
    ) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.endpoint("/authorize"),
            token_endpoint: issuer.endpoint("/token"),
            jwks_uri: issuer.endpoint("/jwks.json"),
            registration_endpoint: issuer.endpoint("/register"),
            scopes_supported: scope::SUPPORTED.to_vec(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: GrantType::ALL.iter().map(|grant| grant.as_str()).collect(),
            code_challenge_methods_supported: vec!["S256"],
            token_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|method| method.as_str())
                .collect(),
            token_endpoint_auth_signing_alg_values_supported: SIGNING_ALGORITHMS.to_vec(),
            device_authorization_endpoint: issuer.endpoint("/device_authorization"),
            revocation_endpoint: issuer.endpoint("/revoke"),
            revocation_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|method| method.as_str())
                .collect(),
            introspection_endpoint: issuer.endpoint("/introspect"),
            introspection_endpoint_auth_methods_supported: vec!["client_secret_basic"],
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: SIGNING_ALGORITHMS.to_vec(),
            protected_resources: protected_resources
                .iter()
                .map(|resource| resource.as_str().to_owned())
                .collect(),
            service_documentation,
        }
    }
}
