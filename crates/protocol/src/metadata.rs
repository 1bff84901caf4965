//! Authorization server metadata (RFC 8414 §2): built from what the server really offers, and
//! read back and checked by a client (RFC 8414 §3.3).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::issuer::Issuer;
use crate::registration::{AuthMethod, GrantType};
use crate::resource::Resource;
use crate::scope;

/// The metadata document (RFC 8414 §2): what the server serves at both well-known locations,
/// and what a client reads back. Optional members are left out when empty (RFC 8414 §3.2).
///
/// Reading is lenient as RFC 8414 §3.2 allows ("Claims that return multiple values are
/// represented as JSON arrays"; unknown members are ignored): a member of the wrong JSON type
/// reads as absent, and strings inside a list that are not strings are skipped, so that one odd
/// member of another server's document does not hide the rest. [`Self::checked`] then applies
/// the rules a client needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuthorizationServerMetadata {
    /// The issuer, exactly as configured (RFC 8414 §3.3: equal to the one asked for).
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer: Option<String>,
    /// RFC 6749 §3.1.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_endpoint: Option<String>,
    /// RFC 6749 §3.2.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_endpoint: Option<String>,
    /// RFC 8414 §2: the JWK Set of the keys that sign the server's tokens.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwks_uri: Option<String>,
    /// RFC 7591 §3: where clients register.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub registration_endpoint: Option<String>,
    /// The scopes, the interoperable mail scopes first (draft-ietf-mailmaint-oauth-public §3.9).
    #[serde(default, deserialize_with = "lenient::list")]
    pub scopes_supported: Vec<String>,
    /// Only the authorization code flow.
    #[serde(default, deserialize_with = "lenient::list")]
    pub response_types_supported: Vec<String>,
    /// `response_mode` values (RFC 8414 §2): only the query string.
    #[serde(default, deserialize_with = "lenient::list")]
    pub response_modes_supported: Vec<String>,
    /// Grant types a client may register. Absent means `authorization_code` and `implicit`
    /// (RFC 8414 §2; see [`Self::grant_types`]).
    #[serde(default, deserialize_with = "lenient::list")]
    pub grant_types_supported: Vec<String>,
    /// PKCE: `S256` only (RFC 7636; RFC 9700 §2.1.1).
    #[serde(default, deserialize_with = "lenient::list")]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods. Absent means `client_secret_basic` (RFC 8414 §2; see
    /// [`Self::token_endpoint_auth_methods`]).
    #[serde(default, deserialize_with = "lenient::list")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms accepted in `private_key_jwt` client assertions.
    #[serde(default, deserialize_with = "lenient::list")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8628 §4.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 7009.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation_endpoint: Option<String>,
    /// How clients authenticate at the revocation endpoint.
    #[serde(default, deserialize_with = "lenient::list")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662, for resource servers.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub introspection_endpoint: Option<String>,
    /// How resource servers authenticate at the introspection endpoint.
    #[serde(default, deserialize_with = "lenient::list")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1.
    #[serde(default, deserialize_with = "lenient::list")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 9728 §4: the services tokens may be issued for; `None` when not published (a
    /// member of another type counts as published and empty).
    #[serde(
        default,
        deserialize_with = "lenient::present_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub protected_resources: Option<Vec<String>>,
    /// OpenID Connect Discovery §3 `userinfo_endpoint` (OpenID Connect Core §5.3).
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub userinfo_endpoint: Option<String>,
    /// OpenID Connect Discovery §3 `subject_types_supported`: `public` (the `sub` is the
    /// address, the same for every client).
    #[serde(default, deserialize_with = "lenient::list", skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// OpenID Connect Discovery §3 `id_token_signing_alg_values_supported`: the algorithms of
    /// the server's signing keys.
    #[serde(default, deserialize_with = "lenient::list", skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// OpenID Connect Discovery §3 `claims_supported`: the claims of ID tokens and UserInfo.
    #[serde(default, deserialize_with = "lenient::list", skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// Where the operator documents the service.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
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
        let names = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        let auth_methods: Vec<String> =
            AuthMethod::ALL.iter().map(|method| method.as_str().to_owned()).collect();
        Self {
            issuer: Some(issuer.as_str().to_owned()),
            authorization_endpoint: Some(issuer.endpoint("/authorize")),
            token_endpoint: Some(issuer.endpoint("/token")),
            jwks_uri: Some(issuer.endpoint("/jwks.json")),
            registration_endpoint: Some(issuer.endpoint("/register")),
            scopes_supported: names(&scope::SUPPORTED),
            response_types_supported: names(&[crate::authorization::RESPONSE_TYPE_CODE]),
            response_modes_supported: names(&["query"]),
            grant_types_supported: GrantType::ALL
                .iter()
                .map(|grant| grant.as_str().to_owned())
                .collect(),
            code_challenge_methods_supported: names(&[crate::pkce::S256]),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: names(&SIGNING_ALGORITHMS),
            device_authorization_endpoint: Some(issuer.endpoint("/device_authorization")),
            revocation_endpoint: Some(issuer.endpoint("/revoke")),
            revocation_endpoint_auth_methods_supported: auth_methods,
            introspection_endpoint: Some(issuer.endpoint("/introspect")),
            introspection_endpoint_auth_methods_supported: names(&[
                AuthMethod::ClientSecretBasic.as_str()
            ]),
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: names(&SIGNING_ALGORITHMS),
            protected_resources: (!protected_resources.is_empty()).then(|| {
                protected_resources.iter().map(|resource| resource.as_str().to_owned()).collect()
            }),
            service_documentation,
            userinfo_endpoint: Some(issuer.endpoint(crate::oidc::USERINFO_PATH)),
            subject_types_supported: names(&["public"]),
            id_token_signing_alg_values_supported: names(&SIGNING_ALGORITHMS),
            claims_supported: names(&crate::oidc::CLAIMS_SUPPORTED),
        }
    }

    /// Reads a metadata document fetched for `issuer` and applies the rules a client needs,
    /// in this order: the document's `issuer` is exactly the one asked for (RFC 8414 §3.3,
    /// against mix-up: RFC 9700 §4.4); PKCE with S256 is offered (RFC 9700 §2.1.1); the
    /// authorization and token endpoints are there and pass `check_endpoint` (the caller's
    /// rule for where it may send requests); then the registration (RFC 7591), revocation and
    /// device authorization endpoints if they are there.
    pub fn checked<E>(
        issuer: &Issuer,
        document: &Map<String, Value>,
        check_endpoint: impl Fn(&str) -> Result<(), E>,
    ) -> Result<Self, MetadataError<E>> {
        let metadata: Self = serde_json::from_value(Value::Object(document.clone()))
            .unwrap_or_else(|_| Self::default());
        if metadata.issuer.as_deref() != Some(issuer.as_str()) {
            return Err(MetadataError::Issuer(metadata.issuer));
        }
        if !metadata
            .code_challenge_methods_supported
            .iter()
            .any(|method| method == crate::pkce::S256)
        {
            return Err(MetadataError::NoS256);
        }
        let endpoint = |name: &'static str, value: &Option<String>| match value {
            None => Err(MetadataError::Missing(name)),
            Some(url) => check_endpoint(url).map_err(MetadataError::Endpoint),
        };
        endpoint("authorization_endpoint", &metadata.authorization_endpoint)?;
        endpoint("token_endpoint", &metadata.token_endpoint)?;
        // RFC 8414 §2: `registration_endpoint` is optional; without it a client may still use a
        // client id the provider publishes (issue 16 point 7), but one that is there must pass.
        if metadata.registration_endpoint.is_some() {
            endpoint("registration_endpoint", &metadata.registration_endpoint)
                .map_err(|_| MetadataError::NoRegistration)?;
        }
        if metadata.revocation_endpoint.is_some() {
            endpoint("revocation_endpoint", &metadata.revocation_endpoint)?;
        }
        if metadata.device_authorization_endpoint.is_some() {
            endpoint("device_authorization_endpoint", &metadata.device_authorization_endpoint)?;
        }
        Ok(metadata)
    }

    /// The client authentication methods, with RFC 8414 §2's default (`client_secret_basic`)
    /// when the document lists none.
    pub fn token_endpoint_auth_methods(&self) -> Vec<String> {
        if self.token_endpoint_auth_methods_supported.is_empty() {
            vec![AuthMethod::ClientSecretBasic.as_str().to_owned()]
        } else {
            self.token_endpoint_auth_methods_supported.clone()
        }
    }

    /// The grant types, with RFC 8414 §2's default (`authorization_code` and `implicit`) when
    /// the document lists none.
    pub fn grant_types(&self) -> Vec<String> {
        if self.grant_types_supported.is_empty() {
            vec![GrantType::AuthorizationCode.as_str().to_owned(), "implicit".to_owned()]
        } else {
            self.grant_types_supported.clone()
        }
    }

    /// True when the document offers the client authentication method.
    pub fn offers_auth_method(&self, method: AuthMethod) -> bool {
        self.token_endpoint_auth_methods().iter().any(|offered| offered == method.as_str())
    }

    /// True when the document offers the grant type.
    pub fn offers_grant_type(&self, grant: GrantType) -> bool {
        self.grant_types().iter().any(|offered| offered == grant.as_str())
    }
}

/// Why a metadata document was refused by [`AuthorizationServerMetadata::checked`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError<E> {
    /// RFC 8414 §3.3: the document names another issuer (or none).
    #[error("the document names the issuer {}; it must be the same", .0.as_deref().unwrap_or("(none)"))]
    Issuer(Option<String>),
    /// No PKCE with S256 (RFC 9700 §2.1.1).
    #[error("PKCE with S256 is not offered")]
    NoS256,
    /// A required endpoint is missing.
    #[error("the metadata has no {0}")]
    Missing(&'static str),
    /// A registration endpoint the caller may not use (RFC 7591).
    #[error("the registration endpoint cannot be used")]
    NoRegistration,
    /// An endpoint failed the caller's check.
    #[error("an endpoint was refused")]
    Endpoint(E),
}

/// The lenient readers of RFC 8414 §3.2 documents (see [`AuthorizationServerMetadata`]).
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub(super) fn string<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) => Some(text),
            _ => None,
        })
    }

    pub(super) fn list<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        Ok(strings(Value::deserialize(deserializer)?))
    }

    pub(super) fn present_list<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Some(strings(Value::deserialize(deserializer)?)))
    }

    pub(super) fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        Ok(matches!(Value::deserialize(deserializer)?, Value::Bool(true)))
    }

    fn strings(value: Value) -> Vec<String> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn issuer() -> Issuer {
        Issuer::parse("https://auth.example.com").unwrap()
    }

    fn fine(_: &str) -> Result<(), ()> {
        Ok(())
    }

    #[test]
    fn the_servers_document_reads_back_and_passes_the_checks() {
        let resources = [Resource::parse("imaps://mail.example.com").unwrap()];
        let metadata = AuthorizationServerMetadata::new(&issuer(), &resources, None);
        let json = serde_json::to_value(&metadata).unwrap();
        assert_eq!(json["issuer"], "https://auth.example.com");
        assert_eq!(json["protected_resources"], json!(["imaps://mail.example.com"]));
        assert!(json.get("service_documentation").is_none());
        let Value::Object(document) = json.clone() else { panic!() };
        let read = AuthorizationServerMetadata::checked(&issuer(), &document, fine).unwrap();
        assert_eq!(read, metadata);
        assert!(read.offers_auth_method(AuthMethod::PrivateKeyJwt));
        assert!(read.offers_grant_type(GrantType::DeviceCode));
        // OpenID Connect Discovery §3: the members an OpenID Provider must publish.
        assert_eq!(json["userinfo_endpoint"], "https://auth.example.com/userinfo");
        assert_eq!(json["subject_types_supported"], json!(["public"]));
        assert_eq!(json["id_token_signing_alg_values_supported"], json!(["ES256", "EdDSA"]));
        assert_eq!(json["response_types_supported"], json!(["code"]));
        assert!(read.scopes_supported.iter().any(|scope| scope == "openid"));
        assert!(read.claims_supported.iter().any(|claim| claim == "email_verified"));
        let none = AuthorizationServerMetadata::new(&issuer(), &[], None);
        assert!(serde_json::to_value(&none).unwrap().get("protected_resources").is_none());
    }

    #[test]
    fn every_refusal() {
        let base = json!({
            "issuer": "https://auth.example.com",
            "authorization_endpoint": "https://auth.example.com/authorize",
            "token_endpoint": "https://auth.example.com/token",
            "registration_endpoint": "https://auth.example.com/register",
            "code_challenge_methods_supported": ["S256"],
        });
        let check = |changes: Value| {
            let mut document = base.as_object().unwrap().clone();
            for (name, value) in changes.as_object().unwrap() {
                if value.is_null() {
                    document.remove(name);
                } else {
                    document.insert(name.clone(), value.clone());
                }
            }
            AuthorizationServerMetadata::checked(&issuer(), &document, |url: &str| {
                if url.starts_with("https://") { Ok(()) } else { Err(url.to_owned()) }
            })
        };
        let read = check(json!({})).unwrap();
        assert_eq!(read.token_endpoint_auth_methods(), ["client_secret_basic"]);
        assert_eq!(read.grant_types(), ["authorization_code", "implicit"]);
        assert_eq!(read.protected_resources, None);
        assert_eq!(
            check(json!({"issuer": "https://evil.example"})),
            Err(MetadataError::Issuer(Some("https://evil.example".into())))
        );
        assert_eq!(
            check(json!({"issuer": null})).unwrap_err().to_string(),
            "the document names the issuer (none); it must be the same"
        );
        assert_eq!(
            check(json!({"code_challenge_methods_supported": ["plain"]})),
            Err(MetadataError::NoS256)
        );
        assert_eq!(
            check(json!({"token_endpoint": 7})),
            Err(MetadataError::Missing("token_endpoint"))
        );
        assert_eq!(
            check(json!({"authorization_endpoint": "http://x"})),
            Err(MetadataError::Endpoint("http://x".into()))
        );
        assert_eq!(
            check(json!({"registration_endpoint": "http://x"})),
            Err(MetadataError::NoRegistration)
        );
        // Issue 16 point 7: no registration endpoint is allowed (a published client id may
        // serve); a bad one is still refused, above.
        assert!(check(json!({"registration_endpoint": null})).is_ok());
        assert_eq!(
            check(json!({"revocation_endpoint": "http://x"})),
            Err(MetadataError::Endpoint("http://x".into()))
        );
        let odd = check(json!({"protected_resources": "x", "scopes_supported": ["a", 1],
            "authorization_response_iss_parameter_supported": "yes"}))
        .unwrap();
        assert_eq!(odd.protected_resources, Some(vec![]));
        assert_eq!(odd.scopes_supported, ["a"]);
        assert!(!odd.authorization_response_iss_parameter_supported);
    }
}
