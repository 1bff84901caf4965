//! `POST /token` (RFC 6749 §3.2): parses the request, authenticates the client, checks DPoP,
//! calls the grant core ([`crate::grants`]) and renders its answer. The rules of each grant
//! (authorization code, refresh token, device code) live in the core.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use letterlock_protocol::{ErrorCode, Grant, TokenRequest, TokenResponse};

use crate::dpop::DpopError;
use crate::error::{ApiError, no_store_json};
use crate::grants::code::CodeRequest;
use crate::grants::{Caller, Issued, TokenAsk};
use crate::http::client_auth::{authenticate_client, check_token_budget};
use crate::http::form::{ContentType, oauth_form};
use crate::listen::PeerAddr;
use crate::state::AppState;

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A client may make its own DPoP keys and, after registering, its own assertion keys: every
    // fresh proof or assertion is remembered in the replay cache, so requests are budgeted per
    // address before anything is checked.
    if let Err(retry) = check_token_budget(&state, peer.as_ref().map(|Extension(peer)| *peer)) {
        return with_nonce(
            &state,
            ApiError::too_many_requests(retry, "token requests").into_response(),
        );
    }
    let peer = peer.map(|Extension(PeerAddr(address))| address.ip().to_string());
    match grant(&state, &headers, &body, peer.as_deref()).await {
        Ok(issued) => with_nonce(&state, render(&issued)),
        Err(error) => with_nonce(&state, error.into_response()),
    }
}

async fn grant(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<&str>,
) -> Result<Issued, ApiError> {
    let form = oauth_form(headers, body, ContentType::Required)?;
    let client = authenticate_client(state, headers, &form).await?;
    let proof = match headers.get_all("dpop").iter().count() {
        0 => None,
        1 => Some(headers.get("dpop").and_then(|value| value.to_str().ok()).unwrap_or("")),
        _ => return Err(bad(ErrorCode::InvalidDpopProof, "send one DPoP header")),
    };
    let jkt = match proof {
        None => None,
        Some(proof) => Some(
            state
                .dpop()
                .check(proof, "POST", &state.issuer().endpoint("/token"), None)
                .await
                .map_err(dpop_error)?,
        ),
    };
    if client.metadata.dpop_bound_access_tokens && jkt.is_none() {
        return Err(bad(
            ErrorCode::InvalidDpopProof,
            "this client registered dpop_bound_access_tokens: send a DPoP proof (RFC 9449 §5.2)",
        ));
    }
    // RFC 6749 §4.1.3, §6 and RFC 8628 §3.4, read by `letterlock-protocol`.
    let request = TokenRequest::from_params(&form).map_err(|error| bad(error.code(), error))?;
    let caller = Caller { client: &client, jkt: jkt.as_deref(), peer };
    let ask = TokenAsk {
        scope: request.scope.as_deref(),
        resources: request.resources.iter().map(String::as_str).collect(),
    };
    let grants = state.grants();
    let issued = match &request.grant {
        Grant::AuthorizationCode { code, redirect_uri, code_verifier } => {
            let request = CodeRequest {
                code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
                ask,
            };
            grants.redeem_code(caller, &request).await
        }
        Grant::RefreshToken { refresh_token } => grants.refresh(caller, refresh_token, &ask).await,
        Grant::DeviceCode { device_code } => grants.poll_device(caller, device_code, &ask).await,
    };
    Ok(issued?)
}

/// RFC 6749 §5.1: the token response, not to be cached; with `refresh_token_expires_in` beside
/// a refresh token (not in RFC 6749: see [`TokenResponse`]).
fn render(issued: &Issued) -> Response {
    let body = TokenResponse {
        access_token: issued.access_token.clone(),
        token_type: issued.token_type.to_owned(),
        expires_in: Some(issued.expires_in),
        refresh_token: issued.refresh_token.clone(),
        refresh_token_expires_in: issued.refresh_token_expires_in,
        scope: Some(issued.scope.to_string()),
        id_token: issued.id_token.clone(),
    };
    // Serializing strings and integers cannot fail.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = no_store_json(StatusCode::OK, body);
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Every token response carries the next DPoP nonce (RFC 9449 §8.2).
fn with_nonce(state: &AppState, mut response: Response) -> Response {
    let dpop = state.dpop();
    if dpop.requires_nonce()
        && let Ok(value) = HeaderValue::from_str(&dpop.nonce())
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

fn dpop_error(error: DpopError) -> ApiError {
    match error {
        DpopError::Invalid(reason) => bad(ErrorCode::InvalidDpopProof, reason),
        DpopError::UseNonce => {
            bad(ErrorCode::UseDpopNonce, "send the nonce from the DPoP-Nonce header in the proof")
        }
    }
}

fn bad(code: ErrorCode, description: impl ToString) -> ApiError {
    ApiError::bad_request(code, description.to_string())
}
