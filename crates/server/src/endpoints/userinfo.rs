//! `GET` and `POST /userinfo` (OpenID Connect Core §5.3): who the access token's person is, for
//! a client that signed them in with OpenID Connect (a webmail, for example).
//!
//! The token comes in the `Authorization` header (RFC 6750 §2.1), `Bearer`, or `DPoP` with a
//! proof for a DPoP-bound token (RFC 9449 §7.1). It is accepted while its signature (this
//! server's keys), issuer and lifetime hold, it carries `openid`, it was not revoked, its grant
//! is live and its user enabled. Its `aud` is not looked at: the token names the services it is
//! for, and this endpoint is the issuer's own, which any of its tokens with `openid` may ask.
//! Refusals carry an RFC 6750 §3 `WWW-Authenticate` challenge: 401 `invalid_token`, 403
//! `insufficient_scope`, 400 `invalid_request`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use letterlock_protocol::scope::{EMAIL, OPENID};
use letterlock_protocol::{BearerError, UserInfo};

use crate::dpop::DpopError;
use crate::error::{ApiError, no_store_json};
use crate::state::AppState;

/// `GET /userinfo` and `POST /userinfo` (OpenID Connect Core §5.3.1: both must be supported).
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match answer(&state, &method, &headers).await {
        Ok(info) => {
            let body = serde_json::to_vec(&info).unwrap_or_default();
            no_store_json(StatusCode::OK, body)
        }
        Err(Refusal::Token { scheme, error, description }) => {
            challenge(scheme, &error, &description)
        }
        Err(Refusal::Internal(error)) => error.into_response(),
    }
}

/// The authentication scheme the token came with, which the challenge answers in.
#[derive(Debug, Clone, Copy)]
enum Scheme {
    Bearer,
    Dpop,
}

enum Refusal {
    Token { scheme: Scheme, error: BearerError, description: String },
    Internal(ApiError),
}

impl From<letterlock_store::Error> for Refusal {
    fn from(error: letterlock_store::Error) -> Self {
        Self::Internal(error.into())
    }
}

fn invalid(scheme: Scheme, description: &str) -> Refusal {
    Refusal::Token { scheme, error: BearerError::InvalidToken, description: description.to_owned() }
}

async fn answer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<UserInfo, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (value, extra) = (values.next(), values.next());
    let Some(value) = value else {
        // RFC 6750 §3.1: a request without authentication gets a challenge without an error.
        return Err(Refusal::Token {
            scheme: Scheme::Bearer,
            error: BearerError::Other(String::new()),
            description: String::new(),
        });
    };
    let request = |description: &str| Refusal::Token {
        scheme: Scheme::Bearer,
        error: BearerError::InvalidRequest,
        description: description.to_owned(),
    };
    if extra.is_some() {
        return Err(request("send one Authorization header"));
    }
    let text = value.to_str().map_err(|_| request("the Authorization header is not text"))?;
    let (name, token) = text.split_once(' ').ok_or_else(|| request("send Bearer <token>"))?;
    // RFC 9110 §11.1: the scheme is case-insensitive.
    let scheme = if name.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if name.eq_ignore_ascii_case("DPoP") {
        Scheme::Dpop
    } else {
        return Err(request("send the token as Bearer or DPoP"));
    };
    let token = token.trim();
    let claims = state
        .current_access_token(token)
        .map_err(|not_live| invalid(scheme, not_live.description()))?;
    // RFC 9449 §7.1: a bound token comes as `DPoP` with a proof by its key, for this request
    // and this token (`ath`); an unbound one as `Bearer`.
    match (&claims.jkt, scheme) {
        (Some(jkt), Scheme::Dpop) => {
            let proof = match headers.get_all("dpop").iter().collect::<Vec<_>>().as_slice() {
                [one] => one.to_str().unwrap_or(""),
                _ => return Err(invalid(scheme, "send one DPoP proof")),
            };
            let url = state.issuer().endpoint(letterlock_protocol::oidc::USERINFO_PATH);
            let proved = state.dpop().check(proof, method.as_str(), &url, Some(token)).await;
            match proved {
                Ok(thumbprint) if &thumbprint == jkt => {}
                Ok(_) => return Err(invalid(scheme, "the proof's key is not the token's")),
                Err(DpopError::Invalid(reason)) => return Err(invalid(scheme, &reason)),
                Err(DpopError::UseNonce) => {
                    return Err(invalid(scheme, "send the nonce from the DPoP-Nonce header"));
                }
            }
        }
        (Some(_), Scheme::Bearer) => {
            return Err(invalid(scheme, "this token is bound to a DPoP key: send it as DPoP"));
        }
        (None, Scheme::Dpop) => return Err(invalid(scheme, "this token is not DPoP-bound")),
        (None, Scheme::Bearer) => {}
    }
    // OpenID Connect Core §5.3: the UserInfo endpoint is for tokens of an OpenID request.
    if !claims.scopes.iter().any(|scope| scope == OPENID) {
        return Err(Refusal::Token {
            scheme,
            error: BearerError::InsufficientScope,
            description: "the token does not carry the openid scope".to_owned(),
        });
    }
    let address = state
        .access_token_standing(&claims)
        .await?
        .map_err(|not_live| invalid(scheme, not_live.description()))?;
    let has = |scope: &str| claims.scopes.iter().any(|granted| granted == scope);
    let mut info = UserInfo { sub: address.clone(), ..UserInfo::default() };
    // OpenID Connect Core §5.4: `email` gives the address, verified: it is the account itself.
    if has(EMAIL) {
        info.email = Some(address);
        info.email_verified = Some(true);
    }
    // §5.4 `profile` would add `name`: accounts have none today, so it adds nothing.
    Ok(info)
}

/// RFC 6750 §3 (and RFC 9449 §7.1 for `DPoP`): the status and challenge of a refusal. The body
/// is the OAuth error JSON, for people reading it.
fn challenge(scheme: Scheme, error: &BearerError, description: &str) -> Response {
    let name = match scheme {
        Scheme::Bearer => "Bearer",
        Scheme::Dpop => "DPoP",
    };
    let (status, value) = match error {
        BearerError::Other(_) => (StatusCode::UNAUTHORIZED, name.to_owned()),
        error => {
            let text: String =
                description.chars().filter(|character| matches!(character, ' '..='~')).collect();
            let scope = matches!(error, BearerError::InsufficientScope).then_some(OPENID);
            let status =
                StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            (status, format!("{name} {}", error.auth_params(scope, Some(&text))))
        }
    };
    let body = match error {
        BearerError::Other(_) => serde_json::json!({ "error": "invalid_request",
            "error_description": "send an access token in the Authorization header" }),
        error => serde_json::json!({ "error": error.as_str(), "error_description": description }),
    };
    let mut response = no_store_json(status, body.to_string().into_bytes());
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
