//! Token requests (RFC 6749 §4.1.3 and §6, RFC 8628 §3.4) with the client authentication they
//! carry in the form (RFC 7523 §2.2 assertions, or a public client's `client_id`), and token
//! responses (RFC 6749 §5.1). Both directions: the server reads requests and writes
//! responses; the client writes requests and reads responses.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorBody, ErrorCode};
use crate::params::Params;
use crate::registration::GrantType;
use crate::resource::{self, Resource, Service};
use crate::scope::{ScopeError, ScopeSet};
use crate::urn;

/// Why the form's client authentication was refused. Every variant is `invalid_client`, sent
/// with HTTP 401 (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthenticationError {
    /// RFC 7523 §2.2: the only assertion type is the JWT bearer URN.
    #[error("client_assertion_type must be {}", urn::JWT_BEARER_ASSERTION)]
    AssertionType,
    /// `client_assertion_type` without `client_assertion`.
    #[error("client_assertion is missing")]
    AssertionMissing,
    /// Neither an assertion nor a `client_id` (RFC 6749 §3.2.1).
    #[error("the client did not identify itself")]
    Anonymous,
}

impl ClientAuthenticationError {
    /// `invalid_client` (RFC 6749 §5.2).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidClient
    }
}

/// How a client authenticates in the form of a token, revocation or device authorization
/// request. HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1) is a header, read by the
/// server's HTTP layer before this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `private_key_jwt` (RFC 7523 §2.2): a signed assertion, with an optional `client_id` that
    /// must then equal the assertion's `iss` and `sub` (RFC 7523 §3).
    Assertion {
        /// The JWT.
        assertion: String,
        /// `client_id`, if sent.
        client_id: Option<String>,
    },
    /// `none`: a public client names itself (RFC 6749 §2.1, PKCE proves the rest).
    ClientId(String),
}

impl ClientAuthentication {
    /// Reads the form's client authentication: an assertion if `client_assertion_type` is
    /// present, else the `client_id`.
    pub fn from_params(params: &Params) -> Result<Self, ClientAuthenticationError> {
        if let Some(assertion_type) = params.single("client_assertion_type") {
            if assertion_type != urn::JWT_BEARER_ASSERTION {
                return Err(ClientAuthenticationError::AssertionType);
            }
            let assertion = params
                .single("client_assertion")
                .ok_or(ClientAuthenticationError::AssertionMissing)?;
            return Ok(Self::Assertion {
                assertion: assertion.to_owned(),
                client_id: params.single("client_id").map(str::to_owned),
            });
        }
        params
            .single("client_id")
            .map(|id| Self::ClientId(id.to_owned()))
            .ok_or(ClientAuthenticationError::Anonymous)
    }

    /// Adds the authentication to a form.
    pub fn append_to(&self, params: &mut Params) {
        match self {
            Self::Assertion { assertion, client_id } => {
                params.push_some("client_id", client_id.as_deref());
                params.push("client_assertion_type", urn::JWT_BEARER_ASSERTION);
                params.push("client_assertion", assertion.as_str());
            }
            Self::ClientId(id) => params.push("client_id", id.as_str()),
        }
    }

    /// The authentication as form parameters.
    pub fn to_params(&self) -> Params {
        let mut params = Params::default();
        self.append_to(&mut params);
        params
    }
}

/// The grant a token request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// RFC 6749 §4.1.3.
    AuthorizationCode {
        /// The code.
        code: String,
        /// Required if the authorization request had one; compared by the server.
        redirect_uri: Option<String>,
        /// RFC 7636 §4.5. Checked by the server against the code's challenge, after the code:
        /// a missing verifier is `invalid_grant` there, like a wrong one.
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
    },
    /// RFC 8628 §3.4.
    DeviceCode {
        /// The device code.
        device_code: String,
    },
}

impl Grant {
    /// The grant's type.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }
}

/// Why a token request was refused before any stored state was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRequestError {
    /// RFC 6749 §3.1: a parameter other than `resource` appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(String),
    /// No `grant_type`.
    #[error("grant_type is missing")]
    NoGrantType,
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("grant_type {0} is not supported")]
    UnsupportedGrantType(String),
    /// A parameter the grant requires is missing.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// RFC 6749 §3.3: a malformed or unsupported scope.
    #[error("{0}")]
    Scope(ScopeError),
    /// RFC 6749 §6: the request may narrow the scope, never widen it.
    #[error("{0} was not granted")]
    ScopeNotGranted(String),
    /// RFC 8707 §2.2: a resource the grant does not cover.
    #[error("{0} was not granted to this device")]
    TargetNotGranted(String),
    /// RFC 8707 §2.2: one access token is for one service.
    #[error("ask for one resource per token")]
    OneResource,
}

impl TokenRequestError {
    /// The OAuth error code (RFC 6749 §5.2, RFC 8707 §2).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::Scope(_) | Self::ScopeNotGranted(_) => ErrorCode::InvalidScope,
            Self::TargetNotGranted(_) | Self::OneResource => ErrorCode::InvalidTarget,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// The error as a body.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// A token request: the grant, and the narrowing the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The grant presented.
    pub grant: Grant,
    /// `scope`, as sent: checked by [`TokenRequest::narrow`] against what was granted.
    pub scope: Option<String>,
    /// Every `resource`, as sent (RFC 8707 §2.2): checked by [`TokenRequest::narrow`].
    pub resources: Vec<String>,
}

impl TokenRequest {
    /// Reads a token request's grant. Client authentication is read separately
    /// ([`ClientAuthentication::from_params`]), before this, because a client that fails it
    /// learns nothing about its request.
    pub fn from_params(params: &Params) -> Result<Self, TokenRequestError> {
        if let Some(duplicate) = params.duplicate() {
            return Err(TokenRequestError::Duplicate(duplicate.to_owned()));
        }
        let required = |name: &'static str| {
            params.single(name).map(str::to_owned).ok_or(TokenRequestError::Missing(name))
        };
        let optional = |name: &str| params.single(name).map(str::to_owned);
        let grant = match params.single("grant_type") {
            Some("authorization_code") => Grant::AuthorizationCode {
                code: required("code")?,
                redirect_uri: optional("redirect_uri"),
                code_verifier: optional("code_verifier"),
            },
            Some("refresh_token") => {
                Grant::RefreshToken { refresh_token: required("refresh_token")? }
            }
            Some(urn::DEVICE_CODE_GRANT) => {
                Grant::DeviceCode { device_code: required("device_code")? }
            }
            Some(other) => return Err(TokenRequestError::UnsupportedGrantType(other.to_owned())),
            None => return Err(TokenRequestError::NoGrantType),
        };
        Ok(Self {
            grant,
            scope: optional("scope"),
            resources: params.all("resource").map(str::to_owned).collect(),
        })
    }

    /// The request as form parameters (without client authentication; see
    /// [`ClientAuthentication::append_to`]).
    pub fn to_params(&self) -> Params {
        let mut params = Params::default();
        params.push("grant_type", self.grant.grant_type().as_str());
        match &self.grant {
            Grant::AuthorizationCode { code, redirect_uri, code_verifier } => {
                params.push("code", code.as_str());
                params.push_some("redirect_uri", redirect_uri.as_deref());
                params.push_some("code_verifier", code_verifier.as_deref());
            }
            Grant::RefreshToken { refresh_token } => {
                params.push("refresh_token", refresh_token.as_str());
            }
            Grant::DeviceCode { device_code } => params.push("device_code", device_code.as_str()),
        }
        params.push_some("scope", self.scope.as_deref());
        for resource in &self.resources {
            params.push("resource", resource.as_str());
        }
        params
    }

    /// The scope and the audience of the access token to issue: a token request may narrow
    /// the granted scope, never widen it (RFC 6749 §6), and `resource` picks one of the
    /// granted services (RFC 8707 §2.2); without it the token is for every granted service its
    /// scope reaches. See [`narrow`].
    pub fn narrow(
        &self,
        granted_scope: &ScopeSet,
        granted_resources: &[String],
        services: &[Service],
    ) -> Result<(ScopeSet, Vec<String>), TokenRequestError> {
        narrow(self.scope.as_deref(), &self.resources, granted_scope, granted_resources, services)
    }
}

/// The rule of [`TokenRequest::narrow`] over a request's `scope` and `resource` values alone,
/// for a server whose grant rules take them apart from the grant.
///
/// - The scope may narrow the granted scope, never widen it (RFC 6749 §6).
/// - One `resource` picks one of the granted services, compared as identifiers
///   ([`Resource::is`]); the token is for that one service (RFC 8707 §2.2), named as configured.
///   Several `resource` values in one token request are refused: a token for one of them is
///   what RFC 8707 §2.2 describes, and a client that names services wants each its own token.
/// - No `resource`: the token is for every granted service the scope reaches
///   ([`Service::reached_by`]; a granted resource no longer configured is reached by its
///   scheme's default scopes), in the grant's order. This is what a mail program that asks one
///   token for IMAP and SMTP (Thunderbird) needs. An empty audience means none is reached; the
///   issuer then names its default resource (RFC 9068 §3).
pub fn narrow(
    scope: Option<&str>,
    resources: &[impl AsRef<str>],
    granted_scope: &ScopeSet,
    granted_resources: &[String],
    services: &[Service],
) -> Result<(ScopeSet, Vec<String>), TokenRequestError> {
    let scope = match scope {
        None => granted_scope.clone(),
        Some(text) => {
            // RFC 6749 §3.3: unknown scopes are dropped and protocol names mapped, as in the
            // authorization request; a known scope beyond the grant stays refused (§6).
            let asked = ScopeSet::parse_requested(text).map_err(TokenRequestError::Scope)?.scope;
            if let Some(extra) = asked.iter().find(|scope| !granted_scope.contains(scope)) {
                return Err(TokenRequestError::ScopeNotGranted(extra.to_owned()));
            }
            asked
        }
    };
    // The configured service a granted identifier names, if it is still configured.
    let service = |granted: &str| services.iter().find(|service| service.resource.is(granted));
    let configured = |granted: &str| {
        service(granted).map_or_else(|| granted.to_owned(), |s| s.resource.as_str().to_owned())
    };
    let audience = match resources {
        [] => {
            let mut audience: Vec<String> = Vec::new();
            for granted in granted_resources {
                let reached = match service(granted) {
                    Some(service) => service.reached_by(&scope),
                    None => Resource::parse(granted).is_ok_and(|resource| {
                        resource.default_scopes().iter().any(|one| scope.contains(one))
                    }),
                };
                let named = configured(granted);
                if reached && !audience.iter().any(|seen| resource::same(seen, &named)) {
                    audience.push(named);
                }
            }
            audience
        }
        [one] => {
            let one = one.as_ref();
            let granted = granted_resources
                .iter()
                .find(|granted| resource::same(granted, one))
                .ok_or_else(|| TokenRequestError::TargetNotGranted(one.to_owned()))?;
            vec![configured(granted)]
        }
        _ => return Err(TokenRequestError::OneResource),
    };
    Ok((scope, audience))
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (RFC 9449 §5); compared without regard to
    /// case (RFC 6749 §5.1).
    pub token_type: String,
    /// Seconds until the access token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// A new refresh token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires unused. Not in RFC 6749 nor any IANA-registered
    /// OAuth parameter: a member several providers send (Microsoft identity platform, GitHub
    /// Apps) so that a client knows when it must sign in again; clients that do not know it
    /// ignore it (RFC 6749 §5.1: "the client MUST ignore unrecognized value names").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<i64>,
    /// The scope granted (RFC 6749 §5.1: required if it differs from the request's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OpenID Connect Core §3.1.3.3: the ID token, when the grant has the `openid` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// True for a DPoP-bound token (RFC 9449 §5).
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("DPoP")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Params {
        Params::parse(text).unwrap()
    }

    #[test]
    fn grants_are_read_and_written() {
        let request = TokenRequest::from_params(&form(
            "grant_type=authorization_code&code=c&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier=v&resource=imaps://m",
        ))
        .unwrap();
        assert_eq!(
            request.grant,
            Grant::AuthorizationCode {
                code: "c".into(),
                redirect_uri: Some("http://127.0.0.1/cb".into()),
                code_verifier: Some("v".into()),
            }
        );
        assert_eq!(request.resources, ["imaps://m"]);
        for request in [
            request,
            TokenRequest {
                grant: Grant::RefreshToken { refresh_token: "r".into() },
                scope: Some("offline_access".into()),
                resources: vec![],
            },
            TokenRequest {
                grant: Grant::DeviceCode { device_code: "d".into() },
                scope: None,
                resources: vec!["a".into(), "b".into()],
            },
        ] {
            assert_eq!(
                TokenRequest::from_params(&form(&request.to_params().encode())),
                Ok(request)
            );
        }
        let device = TokenRequest::from_params(&form(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d",
        ));
        assert!(matches!(device.unwrap().grant, Grant::DeviceCode { .. }));
    }

    #[test]
    fn every_refusal_has_its_code() {
        use TokenRequestError as E;
        let cases = [
            ("code=c", E::NoGrantType, ErrorCode::InvalidRequest),
            (
                "grant_type=password",
                E::UnsupportedGrantType("password".into()),
                ErrorCode::UnsupportedGrantType,
            ),
            ("grant_type=authorization_code", E::Missing("code"), ErrorCode::InvalidRequest),
            ("grant_type=refresh_token", E::Missing("refresh_token"), ErrorCode::InvalidRequest),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:device_code",
                E::Missing("device_code"),
                ErrorCode::InvalidRequest,
            ),
            (
                "grant_type=a&grant_type=b",
                E::Duplicate("grant_type".into()),
                ErrorCode::InvalidRequest,
            ),
        ];
        for (text, error, code) in cases {
            let refused = TokenRequest::from_params(&form(text)).unwrap_err();
            assert_eq!(refused, error, "{text}");
            assert_eq!(refused.code(), code, "{text}");
        }
        assert_eq!(E::Missing("code").to_string(), "code is missing");
        assert_eq!(E::Missing("device_code").to_body().error, ErrorCode::InvalidRequest);
    }

    fn services() -> Vec<Service> {
        ["imaps://m", "smtps://m", "https://d/"]
            .into_iter()
            .map(|text| Service::new(Resource::parse(text).unwrap(), None))
            .collect()
    }

    fn granted_resources() -> Vec<String> {
        ["imaps://m", "smtps://m", "https://d/"].into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn narrowing_never_widens() {
        let granted = ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap();
        let (resources, services) = (granted_resources(), services());
        let request = |scope: Option<&str>, resources: &[&str]| TokenRequest {
            grant: Grant::RefreshToken { refresh_token: "r".into() },
            scope: scope.map(str::to_owned),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        };
        let (scope, audience) = request(None, &[]).narrow(&granted, &resources, &services).unwrap();
        assert_eq!(scope, granted);
        assert_eq!(audience, ["imaps://m", "smtps://m"], "every mail service, not the DAV one");
        let (scope, audience) = request(Some("urn:ietf:params:oauth:scope:mail"), &["https://d/"])
            .narrow(&granted, &resources, &services)
            .unwrap();
        assert_eq!(scope.to_string(), "urn:ietf:params:oauth:scope:mail");
        assert_eq!(audience, ["https://d/"]);
        let wider = request(Some("urn:ietf:params:oauth:scope:contacts"), &[])
            .narrow(&granted, &resources, &services);
        assert_eq!(
            wider.unwrap_err().to_string(),
            "urn:ietf:params:oauth:scope:contacts was not granted"
        );
        let other =
            request(None, &["imaps://x"]).narrow(&granted, &resources, &services).unwrap_err();
        assert_eq!(other.code(), ErrorCode::InvalidTarget);
        assert_eq!(other.to_string(), "imaps://x was not granted to this device");
        let two =
            request(None, &["imaps://m", "https://d/"]).narrow(&granted, &resources, &services);
        assert_eq!(two, Err(TokenRequestError::OneResource));
        let bad = request(Some("mail"), &[]).narrow(&granted, &resources, &services).unwrap_err();
        assert_eq!(bad.code(), ErrorCode::InvalidScope);
        let malformed =
            request(Some("a\\b"), &[]).narrow(&granted, &resources, &services).unwrap_err();
        assert_eq!(malformed, TokenRequestError::Scope(ScopeError::Syntax));
        // RFC 6749 §3.3: unknown scopes are dropped, protocol names mapped; §6 still holds.
        let (scope, _) = request(Some("IMAP mail openid:x"), &[])
            .narrow(&granted, &resources, &services)
            .unwrap();
        assert_eq!(scope.to_string(), "urn:ietf:params:oauth:scope:mail");
        let wider = request(Some("CardDAV other"), &[])
            .narrow(&granted, &resources, &services)
            .unwrap_err();
        assert_eq!(wider, TokenRequestError::ScopeNotGranted(crate::scope::CONTACTS.into()));
    }

    /// Issue 16 point 1: one token without `resource` for every service the scope reaches.
    #[test]
    fn without_a_resource_the_token_is_for_every_service_the_scope_reaches() {
        let (resources, services) = (granted_resources(), services());
        let audience = |scope: &str, granted: &[String], services: &[Service]| {
            narrow(None, &[] as &[&str], &ScopeSet::parse(scope).unwrap(), granted, services)
                .unwrap()
                .1
        };
        let everything = "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:calendars";
        assert_eq!(
            audience(everything, &resources, &services),
            ["imaps://m", "smtps://m", "https://d/"]
        );
        assert_eq!(
            audience("urn:ietf:params:oauth:scope:contacts", &resources, &services),
            ["https://d/"]
        );
        assert!(audience("offline_access", &resources, &services).is_empty(), "none reached");
        assert!(audience(everything, &[], &services).is_empty(), "nothing granted");
        // Scopes configured for a service replace its scheme's.
        let mut only_calendars = services.clone();
        only_calendars[0].scopes = vec!["urn:ietf:params:oauth:scope:calendars".into()];
        assert_eq!(
            audience("urn:ietf:params:oauth:scope:mail", &resources, &only_calendars),
            ["smtps://m"]
        );
        // A granted resource no longer configured keeps its scheme's scopes.
        assert_eq!(
            audience("urn:ietf:params:oauth:scope:mail", &resources, &services[1..]),
            ["imaps://m", "smtps://m"]
        );
    }

    /// Issue 16 point 3: the client's spelling picks the service; the token names it as
    /// configured. Other hosts, ports, paths and user names stay `invalid_target`.
    #[test]
    fn a_resource_is_compared_as_an_identifier_and_issued_as_configured() {
        let granted = ScopeSet::parse("urn:ietf:params:oauth:scope:mail").unwrap();
        let (resources, services) = (granted_resources(), services());
        for sent in ["IMAPS://M:993", "imaps://m/", "imaps://M:993/"] {
            let (_, audience) = narrow(None, &[sent], &granted, &resources, &services).unwrap();
            assert_eq!(audience, ["imaps://m"], "{sent}");
        }
        for sent in [
            "imaps://x",
            "imaps://m:994",
            "imaps://m/other",
            "imaps://eve@m",
            "imaps://m#f",
            "imap://m",
            "imaps://m.evil.example",
        ] {
            assert_eq!(
                narrow(None, &[sent], &granted, &resources, &services),
                Err(TokenRequestError::TargetNotGranted(sent.into())),
                "{sent}"
            );
        }
        // A grant recorded with another spelling is issued as configured now.
        let (_, audience) =
            narrow(None, &["imaps://m"], &granted, &["IMAPS://m:993".into()], &services).unwrap();
        assert_eq!(audience, ["imaps://m"]);
    }

    #[test]
    fn narrowing_without_a_request_is_the_same_rule() {
        let granted = ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap();
        let (resources, services) = (granted_resources(), services());
        let cases: [(Option<&str>, &[&str]); 5] = [
            (None, &[]),
            (Some("urn:ietf:params:oauth:scope:mail"), &["https://d/"]),
            (Some("urn:ietf:params:oauth:scope:contacts"), &[]),
            (None, &["imaps://x"]),
            (None, &["imaps://m", "https://d/"]),
        ];
        for (scope, asked) in cases {
            let request = TokenRequest {
                grant: Grant::DeviceCode { device_code: "d".into() },
                scope: scope.map(str::to_owned),
                resources: asked.iter().map(|r| (*r).to_owned()).collect(),
            };
            assert_eq!(
                narrow(scope, asked, &granted, &resources, &services),
                request.narrow(&granted, &resources, &services),
                "{scope:?} {asked:?}"
            );
        }
        assert_eq!(
            narrow(None, &["imaps://x"], &granted, &resources, &services),
            Err(TokenRequestError::TargetNotGranted("imaps://x".into()))
        );
    }

    #[test]
    fn client_authentication_both_ways() {
        use ClientAuthenticationError as E;
        let assertion = ClientAuthentication::Assertion {
            assertion: "a.b.c".into(),
            client_id: Some("c1".into()),
        };
        for authentication in [assertion, ClientAuthentication::ClientId("c1".into())] {
            let params = form(&authentication.to_params().encode());
            assert_eq!(ClientAuthentication::from_params(&params), Ok(authentication));
        }
        assert_eq!(
            ClientAuthentication::from_params(&form("client_assertion_type=x&client_assertion=y")),
            Err(E::AssertionType)
        );
        let missing = form(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
        );
        assert_eq!(ClientAuthentication::from_params(&missing), Err(E::AssertionMissing));
        assert_eq!(ClientAuthentication::from_params(&form("")), Err(E::Anonymous));
        assert_eq!(
            E::AssertionType.to_string(),
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(E::Anonymous.code(), ErrorCode::InvalidClient);
    }

    #[test]
    fn responses_round_trip() {
        let response = TokenResponse {
            access_token: "at".into(),
            token_type: "DPoP".into(),
            expires_in: Some(600),
            refresh_token: None,
            refresh_token_expires_in: None,
            scope: Some("offline_access".into()),
            id_token: None,
        };
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            json,
            r#"{"access_token":"at","token_type":"DPoP","expires_in":600,"scope":"offline_access"}"#
        );
        assert_eq!(serde_json::from_str::<TokenResponse>(&json).unwrap(), response);
        assert!(response.is_dpop());
        // Issue 16: when the refresh token expires, both ways.
        let with_refresh = TokenResponse {
            refresh_token: Some("rt".into()),
            refresh_token_expires_in: Some(7_776_000),
            ..response
        };
        let json = serde_json::to_value(&with_refresh).unwrap();
        assert_eq!(json["refresh_token_expires_in"], 7_776_000);
        assert_eq!(serde_json::from_value::<TokenResponse>(json).unwrap(), with_refresh);
    }
}
