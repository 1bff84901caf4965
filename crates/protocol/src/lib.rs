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
//! - [`ErrorBody`]: the `{"error": ...}` JSON every endpoint answers with;
//! - [`address::AddressBlock`]: the block (an IPv4 address, an IPv6 /64) that per-address limits
//!   count a client by.
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

pub mod address;
pub mod base64url;
pub mod error;
pub mod issuer;
pub mod jwk;
pub mod metadata;
pub mod redirect;
pub mod registration;
pub mod resource;
pub mod scope;

pub use error::{ErrorBody, ErrorCode};
pub use issuer::{Issuer, IssuerError};
pub use jwk::{Curve, PublicJwk};
pub use metadata::AuthorizationServerMetadata;
pub use redirect::{RedirectKind, RedirectUri};
pub use registration::{
    ApplicationType, AuthMethod, ClientMetadata, GrantType, Localized, RegistrationError,
};
pub use resource::Resource;
pub use scope::ScopeSet;
