//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3; RFC 8707 resources;
//! RFC 9449 §10 `dpop_jkt`) and its response (RFC 6749 §4.1.2 and §4.1.2.1, with RFC 9207
//! `iss`), both directions: the server reads the request and writes the response; the client
//! writes the request and reads the response.
//!
//! The rules here need the client's registration only for what [`Allowed`] carries (its scope)
//! and the server's configured services; proving the redirect URI against the registration is
//! [`prove_redirect`]. Which errors may go back to the redirect URI, and which must be shown to
//! the person instead, is [`AuthorizationError::may_redirect`] (RFC 6749 §4.1.2.1).

use std::fmt;

use crate::base64url;
use crate::error::{ErrorBody, ErrorCode};
use crate::params::Params;
use crate::pkce::{self, CodeChallenge, PkceError};
use crate::redirect::RedirectUri;
use crate::resource::Resource;
use crate::scope::{ScopeError, ScopeSet};

/// The longest `state` passed through, in bytes. RFC 6749 sets no bound; a client needs a few
/// dozen bytes, and the state is stored with the pending request.
pub const MAX_STATE_BYTES: usize = 2048;

/// The longest `nonce` kept, in bytes. OpenID Connect Core §3.1.2.1 sets no bound; it is
/// stored with the pending request and the code, and returned in the ID token.
pub const MAX_NONCE_BYTES: usize = 2048;

/// `login_hint` is cut to this many characters: the longest mail address (RFC 5321 §4.5.3.1.3
/// limits a path to 256 octets, with its angle brackets).
pub const MAX_LOGIN_HINT_CHARS: usize = 254;

/// The only `response_type` (RFC 6749 §3.1.1; OAuth 2.1 drops the implicit `token`).
pub const RESPONSE_TYPE_CODE: &str = "code";

/// What the client registered and the server offers, against which a request is checked.
#[derive(Debug, Clone, Copy)]
pub struct Allowed<'a> {
    /// The scope the client registered; also the default when the request names none
    /// (RFC 6749 §3.3).
    pub scope: &'a ScopeSet,
    /// The services the server issues tokens for; also the default when the request names
    /// none (RFC 8707 §2).
    pub resources: &'a [Resource],
    /// True only for a confidential client the operator configured with `require_pkce = false`
    /// (RFC 9700 §2.1.1 lets a confidential client rely on other means against code
    /// injection): a request without any PKCE parameter is then accepted. A client that sends
    /// a challenge is held to it all the same.
    pub pkce_optional: bool,
}

/// Why an authorization request was refused. Each variant's message is the
/// `error_description` sent (or shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// No `client_id`: shown to the person (RFC 6749 §4.1.2.1).
    #[error("The request names no client (client_id).")]
    NoClient,
    /// A client that accepts any native redirect named none (RFC 8252 §7.3: the port varies).
    #[error("This application must name its redirect URI.")]
    RedirectRequired,
    /// Such a client named a web redirect.
    #[error("This application may only use a loopback or private-use redirect URI.")]
    RedirectNotNative,
    /// No redirect URI, and the client registered more than one (RFC 6749 §3.1.2.3).
    #[error("The request does not say where to send the answer (redirect_uri).")]
    RedirectMissing,
    /// A redirect URI the client did not register (RFC 6749 §3.1.2.3).
    #[error("The redirect URI does not match what the application registered.")]
    RedirectMismatch,
    /// RFC 6749 §3.1: a parameter other than `resource` appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(String),
    /// `state` longer than [`MAX_STATE_BYTES`].
    #[error("state is too long")]
    StateTooLong,
    /// `nonce` longer than [`MAX_NONCE_BYTES`].
    #[error("nonce is too long")]
    NonceTooLong,
    /// RFC 6749 §4.1.2.1 `unsupported_response_type`: only `code`.
    #[error("only response_type=code is supported")]
    ResponseType,
    /// PKCE with another method than S256 (RFC 9700 §2.1.1 refuses `plain`).
    #[error("code_challenge_method must be S256")]
    ChallengeMethod,
    /// No PKCE: required of every client but an exempted configured one (RFC 9700 §2.1.1).
    #[error("PKCE is required: send code_challenge and code_challenge_method=S256")]
    PkceRequired,
    /// RFC 7636 §4.2: not the shape of an S256 challenge.
    #[error("{}", PkceError::Challenge)]
    Challenge,
    /// `scope` given but empty of tokens.
    #[error("the scope is empty")]
    ScopeEmpty,
    /// RFC 6749 §3.3: a malformed or unsupported scope.
    #[error("{0}")]
    Scope(ScopeError),
    /// A scope the client did not register.
    #[error("the client did not register the scope {0}")]
    ScopeNotRegistered(String),
    /// RFC 8707 §2: a `resource` that is not one of the server's services.
    #[error("{0} is not a service of this provider")]
    Target(String),
    /// RFC 9449 §10: `dpop_jkt` is not the shape of a JWK SHA-256 thumbprint (RFC 7638).
    #[error("dpop_jkt must be a JWK SHA-256 thumbprint")]
    DpopJkt,
}

impl AuthorizationError {
    /// The OAuth error code (RFC 6749 §4.1.2.1, RFC 8707 §2).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ResponseType => ErrorCode::UnsupportedResponseType,
            Self::ScopeEmpty | Self::Scope(_) | Self::ScopeNotRegistered(_) => {
                ErrorCode::InvalidScope
            }
            Self::Target(_) => ErrorCode::InvalidTarget,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// RFC 6749 §4.1.2.1: "If the request fails due to a missing, invalid, or mismatching
    /// redirection URI, or if the client identifier is missing or invalid, the authorization
    /// server SHOULD inform the resource owner of the error and MUST NOT automatically redirect
    /// the user-agent to the invalid redirection URI." Every other error may be redirected
    /// (the server may still choose a page; see RFC 9700 §4.11.2).
    pub fn may_redirect(&self) -> bool {
        !matches!(
            self,
            Self::NoClient
                | Self::RedirectRequired
                | Self::RedirectNotNative
                | Self::RedirectMissing
                | Self::RedirectMismatch
        )
    }

    /// The error as the body of an error response.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// Checks the presented redirect URI against the client's registration (RFC 6749 §3.1.2.3) and
/// returns the one to answer to. A client registered with one redirect may leave it out. A
/// client that `accepts_any_native` (a loopback client whose port varies, RFC 8252 §7.3) must
/// name a loopback or private-use redirect.
pub fn prove_redirect(
    registered: &[RedirectUri],
    accepts_any_native: bool,
    presented: Option<&str>,
) -> Result<String, AuthorizationError> {
    if accepts_any_native {
        let presented = presented.ok_or(AuthorizationError::RedirectRequired)?;
        return match RedirectUri::parse(presented) {
            Ok(uri) if uri.is_native() => Ok(presented.to_owned()),
            _ => Err(AuthorizationError::RedirectNotNative),
        };
    }
    match (presented, registered) {
        (None, [only]) => Ok(only.as_str().to_owned()),
        (None, _) => Err(AuthorizationError::RedirectMissing),
        (Some(presented), registered) if registered.iter().any(|uri| uri.matches(presented)) => {
            Ok(presented.to_owned())
        }
        (Some(_), _) => Err(AuthorizationError::RedirectMismatch),
    }
}

/// An authorization request after every check that needs no stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// `client_id` (RFC 6749 §4.1.1).
    pub client_id: String,
    /// `redirect_uri` as presented; proven by [`prove_redirect`].
    pub redirect_uri: Option<String>,
    /// `state`, passed back unchanged (RFC 6749 §4.1.1), at most [`MAX_STATE_BYTES`].
    pub state: Option<String>,
    /// The S256 `code_challenge` (RFC 7636 §4.3); `None` only when [`Allowed::pkce_optional`]
    /// and the request sent no PKCE parameter at all.
    pub code_challenge: Option<CodeChallenge>,
    /// The scope asked for, or the client's registered scope if none was named.
    pub scope: ScopeSet,
    /// The services asked for, without repeats, in order; every configured one if none was
    /// named (RFC 8707 §2).
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code will be bound to.
    pub dpop_jkt: Option<String>,
    /// `login_hint` (OpenID Connect Core §3.1.2.1), cut to [`MAX_LOGIN_HINT_CHARS`].
    pub login_hint: Option<String>,
    /// `nonce` (OpenID Connect Core §3.1.2.1), at most [`MAX_NONCE_BYTES`]: returned in the ID
    /// token (§3.1.3.6), against replay.
    pub nonce: Option<String>,
}

impl AuthorizationRequest {
    /// The `client_id`, which the server needs before anything else (to load the
    /// registration that [`Allowed`] and [`prove_redirect`] take).
    pub fn client_id(params: &Params) -> Result<&str, AuthorizationError> {
        params.single("client_id").ok_or(AuthorizationError::NoClient)
    }

    /// Reads and checks a request, in this order: `client_id`; no duplicate parameter
    /// (RFC 6749 §3.1); `state`'s length; `response_type=code`; PKCE with S256 (RFC 7636 §4.3,
    /// RFC 9700 §2.1.1); the scope, registered by the client (RFC 6749 §3.3); the resources,
    /// each a service of this server (RFC 8707 §2); `dpop_jkt` (RFC 9449 §10).
    pub fn from_params(params: &Params, allowed: Allowed<'_>) -> Result<Self, AuthorizationError> {
        let client_id = Self::client_id(params)?.to_owned();
        if let Some(duplicate) = params.duplicate() {
            return Err(AuthorizationError::Duplicate(duplicate.to_owned()));
        }
        let state = params.single("state").map(str::to_owned);
        if state.as_ref().is_some_and(|text| text.len() > MAX_STATE_BYTES) {
            return Err(AuthorizationError::StateTooLong);
        }
        let nonce = params.single("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|text| text.len() > MAX_NONCE_BYTES) {
            return Err(AuthorizationError::NonceTooLong);
        }
        if params.single("response_type") != Some(RESPONSE_TYPE_CODE) {
            return Err(AuthorizationError::ResponseType);
        }
        let code_challenge = match params.single("code_challenge_method") {
            // RFC 9700 §2.1.1: an exempted confidential client may send no PKCE at all; one
            // parameter without the other is still an error.
            None if allowed.pkce_optional && params.single("code_challenge").is_none() => None,
            None => return Err(AuthorizationError::PkceRequired),
            Some(pkce::S256) => Some(
                params
                    .single("code_challenge")
                    .and_then(|challenge| CodeChallenge::parse(challenge).ok())
                    .ok_or(AuthorizationError::Challenge)?,
            ),
            Some(_) => return Err(AuthorizationError::ChallengeMethod),
        };
        // RFC 6749 §3.3: unknown scopes are dropped (the server "MAY fully or partially ignore
        // the scope requested"), protocol names mapped; see `ScopeSet::parse_requested`.
        let scope = match params.single("scope") {
            None => allowed.scope.clone(),
            Some(text) => match ScopeSet::parse_requested(text) {
                Ok(asked) if !asked.scope.is_empty() => asked.scope,
                Ok(_) => return Err(AuthorizationError::ScopeEmpty),
                Err(error) => return Err(AuthorizationError::Scope(error)),
            },
        };
        if let Some(extra) = scope.iter().find(|scope| !allowed.scope.contains(scope)) {
            return Err(AuthorizationError::ScopeNotRegistered(extra.to_owned()));
        }
        let mut resources: Vec<String> = Vec::new();
        for resource in params.all("resource") {
            // RFC 8707 §2 with RFC 3986 §6.2.2-6.2.3: compared as identifiers, recorded as
            // configured (what the token's `aud` will say).
            let known = allowed
                .resources
                .iter()
                .find(|known| known.is(resource))
                .ok_or_else(|| AuthorizationError::Target(resource.to_owned()))?;
            if !resources.iter().any(|recorded| recorded == known.as_str()) {
                resources.push(known.as_str().to_owned());
            }
        }
        if resources.is_empty() {
            resources =
                allowed.resources.iter().map(|resource| resource.as_str().to_owned()).collect();
        }
        let dpop_jkt = match params.single("dpop_jkt") {
            None => None,
            // RFC 7638 §3: a SHA-256 thumbprint, base64url: 43 characters.
            Some(jkt) if jkt.len() == 43 && base64url::decode(jkt).is_some() => {
                Some(jkt.to_owned())
            }
            Some(_) => return Err(AuthorizationError::DpopJkt),
        };
        Ok(Self {
            client_id,
            redirect_uri: params.single("redirect_uri").map(str::to_owned),
            state,
            code_challenge,
            scope,
            resources,
            dpop_jkt,
            login_hint: params
                .single("login_hint")
                .map(|hint| hint.chars().take(MAX_LOGIN_HINT_CHARS).collect()),
            nonce,
        })
    }

    /// The request as query parameters, as the client sends it (see [`AuthorizationQuery`]).
    pub fn to_params(&self) -> Params {
        let scope = self.scope.to_string();
        let mut params = AuthorizationQuery {
            client_id: &self.client_id,
            redirect_uri: self.redirect_uri.as_deref(),
            scope: &scope,
            state: self.state.as_deref(),
            code_challenge: self.code_challenge.as_ref(),
            login_hint: self.login_hint.as_deref(),
            resources: &self.resources,
            dpop_jkt: self.dpop_jkt.as_deref(),
        }
        .to_params();
        params.push_some("nonce", self.nonce.as_deref());
        params
    }

    /// The request as a query string (without `?`).
    pub fn to_query(&self) -> String {
        self.to_params().encode()
    }
}

/// An authorization request as a client writes it (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3;
/// RFC 8707 §2 `resource`; RFC 9449 §10 `dpop_jkt`; OpenID Connect Core §3.1.2.1
/// `login_hint`): the client's own values, sent as they are. Unlike [`AuthorizationRequest`],
/// the scope is the client's text, in its order, and may name scopes this crate does not know
/// (another issuer's).
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationQuery<'a> {
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `scope`, space-separated (RFC 6749 §3.3), sent even if empty.
    pub scope: &'a str,
    /// `state` (RFC 6749 §4.1.1).
    pub state: Option<&'a str>,
    /// The S256 `code_challenge` (RFC 7636 §4.3); `code_challenge_method=S256` goes with it.
    /// Every public client sends one; `None` is for a confidential client the server exempted.
    pub code_challenge: Option<&'a CodeChallenge>,
    /// `login_hint`.
    pub login_hint: Option<&'a str>,
    /// Every `resource` (RFC 8707 §2), in order.
    pub resources: &'a [String],
    /// `dpop_jkt` (RFC 9449 §10).
    pub dpop_jkt: Option<&'a str>,
}

impl AuthorizationQuery<'_> {
    /// The query parameters: `response_type=code`, `client_id`, `redirect_uri`, `scope`,
    /// `state`, `code_challenge`, `code_challenge_method`, `login_hint`, each `resource`,
    /// `dpop_jkt`, the absent ones left out.
    pub fn to_params(&self) -> Params {
        let mut params = Params::default();
        params.push("response_type", RESPONSE_TYPE_CODE);
        params.push("client_id", self.client_id);
        params.push_some("redirect_uri", self.redirect_uri);
        params.push("scope", self.scope);
        params.push_some("state", self.state);
        if let Some(challenge) = self.code_challenge {
            params.push("code_challenge", challenge.as_str());
            params.push("code_challenge_method", pkce::S256);
        }
        params.push_some("login_hint", self.login_hint);
        for resource in self.resources {
            params.push("resource", resource.as_str());
        }
        params.push_some("dpop_jkt", self.dpop_jkt);
        params
    }
}

/// What comes back to the redirect URI: a code, or an error; either with `state` and, from a
/// server that supports RFC 9207, `iss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The code or the error.
    pub outcome: Result<String, ErrorBody>,
    /// `state` from the request (RFC 6749 §4.1.2).
    pub state: Option<String>,
    /// RFC 9207 §2: the issuer that answered.
    pub issuer: Option<String>,
}

/// Why an authorization response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationResponseError {
    /// RFC 6749 §3.1: a parameter appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(String),
    /// Neither `code` nor `error`.
    #[error("the response carries no code")]
    NoCode,
}

impl AuthorizationResponse {
    /// Reads a response from the redirect's query parameters. An `error` wins over a `code`.
    pub fn from_params(params: &Params) -> Result<Self, AuthorizationResponseError> {
        if let Some(duplicate) = params.duplicate() {
            return Err(AuthorizationResponseError::Duplicate(duplicate.to_owned()));
        }
        let text = |name: &str| params.single(name).map(str::to_owned);
        let outcome = match (params.single("error"), params.single("code")) {
            (Some(error), _) => Err(ErrorBody {
                error: ErrorCode::parse(error),
                error_description: text("error_description"),
                error_uri: text("error_uri"),
            }),
            (None, Some(code)) => Ok(code.to_owned()),
            (None, None) => return Err(AuthorizationResponseError::NoCode),
        };
        Ok(Self { outcome, state: text("state"), issuer: text("iss") })
    }

    /// The response's parameters in the order the server sends them: the code or the error,
    /// then `state`, then `iss` (RFC 9207 §2).
    pub fn to_params(&self) -> Params {
        let mut params = Params::default();
        match &self.outcome {
            Ok(code) => params.push("code", code.as_str()),
            Err(body) => {
                params.push("error", body.error.as_str());
                params.push_some("error_description", body.error_description.as_deref());
                params.push_some("error_uri", body.error_uri.as_deref());
            }
        }
        params.push_some("state", self.state.as_deref());
        params.push_some("iss", self.issuer.as_deref());
        params
    }

    /// The URL the browser is sent to: the redirect URI with the response appended to its
    /// query (RFC 6749 §4.1.2: "adding the following parameters to the query component").
    pub fn redirect_to(&self, redirect_uri: &str) -> String {
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        format!("{redirect_uri}{separator}{}", self.to_params().encode())
    }
}

impl fmt::Display for AuthorizationResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_params().encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const IMAP: &str = "imaps://mail.example.com";
    const DAV: &str = "https://dav.example.com/";

    fn resources() -> Vec<Resource> {
        vec![Resource::parse(IMAP).unwrap(), Resource::parse(DAV).unwrap()]
    }

    fn check(query: &str) -> Result<AuthorizationRequest, AuthorizationError> {
        let scope = ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap();
        let resources = resources();
        let allowed = Allowed { scope: &scope, resources: &resources, pkce_optional: false };
        let base = format!(
            "response_type=code&client_id=c1&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        let query = if query.is_empty() { base } else { format!("{base}&{query}") };
        AuthorizationRequest::from_params(&Params::parse(&query).unwrap(), allowed)
    }

    /// Issue 16 point 3: a resource is compared as an identifier and recorded as configured;
    /// another host, port, path, a user name or a fragment is still `invalid_target`.
    #[test]
    fn resources_are_compared_as_identifiers_and_recorded_as_configured() {
        let asked = check("resource=IMAPS://Mail.Example.com:993&resource=https://DAV.example.com")
            .unwrap();
        assert_eq!(asked.resources, [IMAP, DAV]);
        let twice =
            check("resource=imaps://mail.example.com:993/&resource=imaps://mail.example.com");
        assert_eq!(twice.unwrap().resources, [IMAP]);
        for attack in [
            "imaps://mail.example.org",
            "imaps://mail.example.com:994",
            "imaps://mail.example.com/other",
            "imaps://eve@mail.example.com",
            "imaps://mail.example.com%23x",
            "imaps://mail.example.com/%23",
        ] {
            let refused = check(&format!("resource={attack}")).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::InvalidTarget, "{attack}");
        }
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let request = check("").unwrap();
        assert_eq!(request.client_id, "c1");
        assert_eq!(request.scope.to_string(), "urn:ietf:params:oauth:scope:mail offline_access");
        assert_eq!(request.resources, [IMAP, DAV]);
        assert_eq!(request.state, None);
        let full = check(&format!(
            "state=s&resource={IMAP}&resource={IMAP}&login_hint={}&dpop_jkt={}&redirect_uri=x",
            "a".repeat(300),
            "A".repeat(43)
        ))
        .unwrap();
        assert_eq!(full.resources, [IMAP]);
        assert_eq!(full.login_hint.unwrap().len(), MAX_LOGIN_HINT_CHARS);
        assert_eq!(full.redirect_uri.as_deref(), Some("x"));
        // RFC 6749 §3.3: unknown scopes are dropped, the autoconfig draft's names mapped.
        let liberal = check("scope=IMAP%20SMTP%20mail%20offline_access&nonce=n-0S6").unwrap();
        assert_eq!(liberal.scope.to_string(), "urn:ietf:params:oauth:scope:mail offline_access");
        assert_eq!(liberal.nonce.as_deref(), Some("n-0S6"));
    }

    #[test]
    fn every_refusal_has_its_code_and_words() {
        use AuthorizationError as E;
        let cases = [
            ("client_id=c2", E::Duplicate("client_id".into()), ErrorCode::InvalidRequest),
            (&*format!("state={}", "s".repeat(2049)), E::StateTooLong, ErrorCode::InvalidRequest),
            (
                "scope=offline_access&scope=offline_access",
                E::Duplicate("scope".into()),
                ErrorCode::InvalidRequest,
            ),
            ("scope=%20", E::ScopeEmpty, ErrorCode::InvalidScope),
            (
                "scope=mail",
                E::Scope(ScopeError::NoneSupported("mail".into())),
                ErrorCode::InvalidScope,
            ),
            ("scope=a%5Cb", E::Scope(ScopeError::Syntax), ErrorCode::InvalidScope),
            (&*format!("nonce={}", "n".repeat(2049)), E::NonceTooLong, ErrorCode::InvalidRequest),
            (
                "scope=urn:ietf:params:oauth:scope:contacts",
                E::ScopeNotRegistered("urn:ietf:params:oauth:scope:contacts".into()),
                ErrorCode::InvalidScope,
            ),
            ("resource=imaps://other", E::Target("imaps://other".into()), ErrorCode::InvalidTarget),
            ("dpop_jkt=short", E::DpopJkt, ErrorCode::InvalidRequest),
        ];
        for (query, error, code) in cases {
            let refused = check(query).unwrap_err();
            assert_eq!(refused, error, "{query}");
            assert_eq!(refused.code(), code, "{query}");
            assert!(refused.may_redirect());
        }
        let params = |query: &str| Params::parse(query).unwrap();
        let scope = ScopeSet::all();
        let allowed = Allowed { scope: &scope, resources: &[], pkce_optional: false };
        let no_pkce = params("client_id=c&response_type=code");
        assert_eq!(AuthorizationRequest::from_params(&no_pkce, allowed), Err(E::PkceRequired));
        let plain = params("client_id=c&response_type=code&code_challenge_method=plain");
        assert_eq!(AuthorizationRequest::from_params(&plain, allowed), Err(E::ChallengeMethod));
        let bad =
            params("client_id=c&response_type=code&code_challenge_method=S256&code_challenge=x");
        let refused = AuthorizationRequest::from_params(&bad, allowed).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "code_challenge must be the base64url SHA-256 of the verifier (RFC 7636 §4.2)"
        );
        let token = params("client_id=c&response_type=token");
        let refused = AuthorizationRequest::from_params(&token, allowed).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::UnsupportedResponseType);
        assert_eq!(
            refused.to_body().error_description.as_deref(),
            Some("only response_type=code is supported")
        );
        let nobody = AuthorizationRequest::from_params(&params("response_type=code"), allowed);
        assert_eq!(nobody, Err(E::NoClient));
        assert!(!E::NoClient.may_redirect());
    }

    /// RFC 9700 §2.1.1: only a client the server exempted may leave PKCE out, and only all of
    /// it; a challenge it sends is still checked.
    #[test]
    fn only_an_exempted_client_may_leave_pkce_out() {
        let params = |query: &str| Params::parse(query).unwrap();
        let scope = ScopeSet::all();
        let strict = Allowed { scope: &scope, resources: &[], pkce_optional: false };
        let exempt = Allowed { pkce_optional: true, ..strict };
        let none = params("client_id=c&response_type=code");
        assert_eq!(
            AuthorizationRequest::from_params(&none, strict),
            Err(AuthorizationError::PkceRequired)
        );
        let request = AuthorizationRequest::from_params(&none, exempt).unwrap();
        assert_eq!(request.code_challenge, None);
        assert!(!request.to_query().contains("code_challenge"));
        assert_eq!(
            AuthorizationRequest::from_params(&Params::parse(&request.to_query()).unwrap(), exempt),
            Ok(request)
        );
        let half = params(&format!("client_id=c&response_type=code&code_challenge={CHALLENGE}"));
        assert_eq!(
            AuthorizationRequest::from_params(&half, exempt),
            Err(AuthorizationError::PkceRequired)
        );
        let bad =
            params("client_id=c&response_type=code&code_challenge_method=S256&code_challenge=x");
        assert_eq!(
            AuthorizationRequest::from_params(&bad, exempt),
            Err(AuthorizationError::Challenge)
        );
        let plain = params("client_id=c&response_type=code&code_challenge_method=plain");
        assert_eq!(
            AuthorizationRequest::from_params(&plain, exempt),
            Err(AuthorizationError::ChallengeMethod)
        );
        let full = params(&format!(
            "client_id=c&response_type=code&code_challenge_method=S256&code_challenge={CHALLENGE}"
        ));
        let held = AuthorizationRequest::from_params(&full, exempt).unwrap();
        assert_eq!(
            held.code_challenge.map(|challenge| challenge.as_str().to_owned()).as_deref(),
            Some(CHALLENGE)
        );
    }

    #[test]
    fn redirects_are_proven_against_the_registration() {
        let one = [RedirectUri::parse("https://app.example.com/cb").unwrap()];
        assert_eq!(prove_redirect(&one, false, None).unwrap(), "https://app.example.com/cb");
        assert_eq!(
            prove_redirect(&one, false, Some("https://app.example.com/other")),
            Err(AuthorizationError::RedirectMismatch)
        );
        assert_eq!(prove_redirect(&[], false, None), Err(AuthorizationError::RedirectMissing));
        assert_eq!(prove_redirect(&[], true, None), Err(AuthorizationError::RedirectRequired));
        assert_eq!(
            prove_redirect(&[], true, Some("https://evil.example/cb")),
            Err(AuthorizationError::RedirectNotNative)
        );
        assert_eq!(
            prove_redirect(&[], true, Some("http://127.0.0.1:4000/cb")).unwrap(),
            "http://127.0.0.1:4000/cb"
        );
        // RFC 8252 §7.3: a well-known id takes `http://localhost` on any port too (issue 16),
        // but not what only looks like it.
        assert_eq!(
            prove_redirect(&[], true, Some("http://localhost:4000/cb")).unwrap(),
            "http://localhost:4000/cb"
        );
        for refused in [
            "http://localhost.evil.example:4000/cb",
            "http://localhost@evil.example/cb",
            "http://evil.example/localhost",
            "https://localhost:4000/cb",
            "http://localhost:99999/cb",
        ] {
            assert_eq!(
                prove_redirect(&[], true, Some(refused)),
                Err(AuthorizationError::RedirectNotNative),
                "{refused}"
            );
        }
        for refused in [
            AuthorizationError::RedirectMismatch,
            AuthorizationError::RedirectMissing,
            AuthorizationError::RedirectRequired,
            AuthorizationError::RedirectNotNative,
        ] {
            assert!(!refused.may_redirect());
        }
    }

    #[test]
    fn requests_round_trip() {
        let request =
            check("state=s%20t&resource=https://dav.example.com/&login_hint=a@b&nonce=n%20o")
                .unwrap();
        let scope = ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap();
        let resources = resources();
        let allowed = Allowed { scope: &scope, resources: &resources, pkce_optional: false };
        let again = AuthorizationRequest::from_params(
            &Params::parse(&request.to_query()).unwrap(),
            allowed,
        );
        assert_eq!(again, Ok(request));
    }

    #[test]
    fn a_client_query_keeps_its_scope_as_written() {
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        let resources = vec![IMAP.to_owned()];
        let query = AuthorizationQuery {
            client_id: "c1",
            redirect_uri: Some("http://127.0.0.1:4000/callback"),
            scope: "offline_access urn:ietf:params:oauth:scope:mail other",
            state: Some("s"),
            code_challenge: Some(&challenge),
            login_hint: Some(""),
            resources: &resources,
            dpop_jkt: None,
        };
        assert_eq!(
            query.to_params().encode(),
            format!(
                "response_type=code&client_id=c1&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback\
                 &scope=offline_access+urn%3Aietf%3Aparams%3Aoauth%3Ascope%3Amail+other&state=s\
                 &code_challenge={CHALLENGE}&code_challenge_method=S256&login_hint=\
                 &resource=imaps%3A%2F%2Fmail.example.com"
            )
        );
        let request = check("state=s").unwrap();
        let scope = request.scope.to_string();
        let same = AuthorizationQuery {
            client_id: &request.client_id,
            redirect_uri: None,
            scope: &scope,
            state: Some("s"),
            code_challenge: request.code_challenge.as_ref(),
            login_hint: None,
            resources: &request.resources,
            dpop_jkt: None,
        };
        assert_eq!(same.to_params(), request.to_params());
    }

    #[test]
    fn responses_both_ways() {
        let code = AuthorizationResponse {
            outcome: Ok("c0de".into()),
            state: Some("s".into()),
            issuer: Some("https://auth.example.com".into()),
        };
        assert_eq!(
            code.redirect_to("http://127.0.0.1:5000/cb"),
            "http://127.0.0.1:5000/cb?code=c0de&state=s&iss=https%3A%2F%2Fauth.example.com"
        );
        assert_eq!(code.redirect_to("app:/cb?x=1"), format!("app:/cb?x=1&{code}"));
        let params = Params::parse(&code.to_params().encode()).unwrap();
        assert_eq!(AuthorizationResponse::from_params(&params), Ok(code));
        let error = AuthorizationResponse {
            outcome: Err(ErrorBody::new(ErrorCode::AccessDenied, "the person said no")),
            state: None,
            issuer: Some("https://auth.example.com".into()),
        };
        let params = Params::parse(&error.to_params().encode()).unwrap();
        assert_eq!(AuthorizationResponse::from_params(&params), Ok(error));
        let nothing = Params::parse("state=s").unwrap();
        assert_eq!(
            AuthorizationResponse::from_params(&nothing),
            Err(AuthorizationResponseError::NoCode)
        );
    }
}
