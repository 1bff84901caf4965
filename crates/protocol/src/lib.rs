//! Letterlock's OAuth wire types and rules, with no I/O, no clock and no randomness.
//!
//! Everything a network peer sends is parsed here into types that cannot hold an invalid value:
//!
//! - [`Issuer`]: an issuer identifier checked against draft-ietf-mailmaint-oauth-public §3.2,
//!   with the RFC 8414 §3.1 well-known URLs built from it;
//! - [`RedirectUri`]: loopback, private-use and https redirects per RFC 8252;
//! - [`ClientMetadata`]: RFC 7591 registration metadata after every check, and back to JSON;
//! - [`PublicJwk`]: an installation's P-256 or Ed25519 public key;
//! - [`ScopeSet`] and [`Resource`]: the interoperable mail scopes and the protected services;
//! - [`AuthorizationServerMetadata`]: the RFC 8414 document;
//! - [`ErrorBody`] and [`ErrorCode`]: the `{"error": ...}` JSON every endpoint answers with,
//!   read back by the client; [`BearerError`]: a resource's RFC 6750 §3.1 codes;
//! - [`Params`]: form and query parameters with the RFC 6749 §3.1 duplicate rule;
//! - [`AuthorizationRequest`] and [`AuthorizationResponse`] (RFC 6749 §4.1, RFC 9207), with
//!   PKCE's [`CodeVerifier`] and [`CodeChallenge`] (RFC 7636);
//! - [`TokenRequest`] and [`TokenResponse`] (RFC 6749 §4.1.3, §5.1, §6; RFC 8628 §3.4);
//! - [`DeviceAuthorizationRequest`] and [`DeviceAuthorizationResponse`] (RFC 8628 §3.1, §3.2);
//! - [`RevocationRequest`] (RFC 7009 §2.1); [`IntrospectionRequest`] and
//!   [`IntrospectionResponse`] (RFC 7662 §2.1, §2.2);
//! - [`AccessTokenClaims`]: the RFC 9068 claims of an access token;
//! - [`IdTokenClaims`] and [`UserInfo`]: OpenID Connect Core's ID token (§2) and UserInfo
//!   response (§5.3.2);
//! - [`urn`]: every `urn:ietf:params:oauth:...` name, once;
//! - [`webauthn`]: what a WebAuthn relying party parses (CBOR, COSE keys, authenticator data,
//!   attestation objects, client data, the ceremonies' JSON);
//! - [`address::AddressBlock`]: the block (an IPv4 address, an IPv6 /64) that per-address limits
//!   count a client by;
//! - [`ldap_filter`]: a typed name escaped into an LDAP search filter (RFC 4515), for the LDAP
//!   identity source.
//!
//! ```
//! use letterlock_protocol::{ClientMetadata, AuthMethod, registration::parse_request_body};
//!
//! let body = br#"{"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "Example Mail"}"#;
//! let request = parse_request_body(body).unwrap();
//! let metadata = ClientMetadata::from_json(&request).unwrap();
//! assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
//! ```
#![forbid(unsafe_code)]

pub mod access_token;
pub mod address;
pub mod authorization;
pub mod base64url;
pub mod bearer;
pub mod device;
pub mod error;
pub mod introspection;
pub mod issuer;
pub mod jwk;
pub mod ldap_filter;
pub mod metadata;
pub mod oidc;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod registration_request;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod token;
pub mod urn;
pub mod webauthn;

pub use access_token::AccessTokenClaims;
pub use authorization::{
    AuthorizationError, AuthorizationQuery, AuthorizationRequest, AuthorizationResponse,
};
pub use bearer::BearerError;
pub use device::{DeviceAuthorizationRequest, DeviceAuthorizationResponse};
pub use error::{ErrorBody, ErrorCode};
pub use introspection::{IntrospectionRequest, IntrospectionResponse};
pub use issuer::{Issuer, IssuerError};
pub use jwk::{Curve, PublicJwk};
pub use metadata::AuthorizationServerMetadata;
pub use oidc::{IdTokenClaims, UserInfo};
pub use params::{Params, ParamsError};
pub use pkce::{CodeChallenge, CodeVerifier};
pub use redirect::{RedirectKind, RedirectUri};
pub use registration::{
    ApplicationType, AuthMethod, ClientMetadata, GrantType, Localized, RegistrationError,
};
pub use registration_request::{RegistrationRequest, RegistrationResponse};
pub use resource::{Resource, Service};
pub use revocation::{RevocationRequest, TokenParameterError};
pub use scope::ScopeSet;
pub use token::{ClientAuthentication, Grant, TokenRequest, TokenRequestError, TokenResponse};
