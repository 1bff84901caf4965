//! `GET /.well-known/oauth-authorization-server[/path]` (RFC 8414 §3),
//! `GET [/path]/.well-known/openid-configuration` and `GET [/path]/jwks.json`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long clients may cache discovery and keys. New signing keys are published
/// `keys.activation_delay_seconds` (an hour by default) before they sign, far longer than this.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The metadata document, built once at start.
pub async fn metadata(State(state): State<AppState>) -> Response {
    json_response(state.metadata_json())
}

/// The published signing keys at this moment.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let jwks = state.signing_keys().jwks(state.now());
    json_response(serde_json::to_vec(&jwks).unwrap_or_default().into())
}

fn json_response(body: axum::body::Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
