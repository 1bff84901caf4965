//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use letterlock_protocol::access_token::AccessTokenClaims;
use letterlock_protocol::resource;
use letterlock_protocol::{
    IntrospectionRequest, IntrospectionResponse, RevocationRequest, TokenParameterError,
};

use crate::error::{ApiError, no_store_json};
use crate::http::client_auth::{authenticate_client, check_token_budget, resource_server};
use crate::http::form::{ContentType, oauth_form};
use crate::secrets::hash_secret;
use crate::state::{AppState, ResourceServer};

/// `POST /revoke`: a refresh token revokes its whole grant (RFC 7009 §2.1: the access tokens
/// of the grant go with it); an access token is revoked by its `jti`, alone (§2.1 allows, but
/// does not ask, revoking its grant too), and the revocation feed tells the front doors. Unknown
/// tokens and tokens of other clients get 200 and change nothing (RFC 7009 §2.2).
pub async fn revoke(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::listen::PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Client authentication here remembers assertion `jti`s too: the token endpoint's budget.
    check_token_budget(&state, peer.map(|axum::Extension(peer)| peer))
        .map_err(|retry| ApiError::too_many_requests(retry, "token requests"))?;
    let form = oauth_form(&headers, &body, ContentType::Required)?;
    let client = authenticate_client(&state, &headers, &form).await?;
    // RFC 7009 §2.1: the hint is only a hint; both kinds are looked for.
    let RevocationRequest { token, .. } = RevocationRequest::from_params(&form).map_err(refused)?;
    let token = token.as_str();
    let now = state.now();
    if let Some(record) = state.store().refresh_token(&hash_secret(token)).await?
        && let Some(grant) = state.store().grant(&record.grant_id).await?
        && grant.client_id == client.client_id
    {
        state.store().revoke_grant(&grant.id, None, now).await?;
    } else if let Some(claims) = state.verify_access_token(token)
        && let Some(claims) = AccessTokenClaims::from_json(&claims)
        && claims.client_id == client.client_id
    {
        // Remembered a minute past its expiry, beyond any verifier's clock skew.
        let (grant_id, jti) = (&claims.grant_id, &claims.jti);
        state.store().revoke_access_token(grant_id, jti, claims.expires_at + 60, now).await?;
    }
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /introspect`, for resource servers configured in `[[resource_servers]]`: an access
/// token is active while its signature, issuer and lifetime hold, its grant is live, its user is
/// enabled, it was not revoked, and one of the services it was made for (`aud`) is one of the caller's resources.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = resource_server(&state, &headers)?;
    let form = oauth_form(&headers, &body, ContentType::Lenient)?;
    let request = IntrospectionRequest::from_params(&form).map_err(refused)?;
    // RFC 7662 §2.2: the claims of an active token, `{"active": false}` for any other.
    let response = match active_claims(&state, &request.token, &caller).await? {
        Some(claims) => IntrospectionResponse::Active(Box::new(claims)),
        None => IntrospectionResponse::Inactive,
    };
    Ok(no_store_json(StatusCode::OK, response.to_json().into_bytes()))
}

/// A request without its token: `invalid_request` (RFC 7009 §2.2.1, RFC 7662 §2.3).
fn refused(error: TokenParameterError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}

async fn active_claims(
    state: &AppState,
    token: &str,
    caller: &ResourceServer,
) -> Result<Option<AccessTokenClaims>, ApiError> {
    let Ok(claims) = state.current_access_token(token) else { return Ok(None) };
    // RFC 8707 §2, RFC 7519 §4.1.3: one of the services the token was made for is among the
    // caller's, compared as identifiers (RFC 3986 §6.2.2-6.2.3).
    let for_caller = claims
        .audience
        .iter()
        .any(|audience| caller.resources.iter().any(|resource| resource::same(resource, audience)));
    if !for_caller {
        return Ok(None);
    }
    Ok(state.access_token_standing(&claims).await?.ok().map(|_| claims))
}
