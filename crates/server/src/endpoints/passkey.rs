//! The passkey ceremonies over HTTP (`{prefix}/passkey/...`), JSON in and out, driven by the
//! pages' script (`{prefix}/passkey.js`, which converts base64url to and from the bytes the
//! WebAuthn API takes):
//!
//! | path | who | what |
//! |---|---|---|
//! | `POST /passkey/register/options` | signed in, `X-CSRF-Token` | creation options, a challenge bound to the session |
//! | `POST /passkey/register` | signed in, `X-CSRF-Token` | `{"name", "credential"}`: the new passkey |
//! | `POST /passkey/remove` | signed in, the form's `csrf` | removes one (a plain form on the account page) |
//! | `POST /passkey/sign-in/options` | the sign-in page's browser | request options, a challenge bound to its sign-in token |
//! | `POST /passkey/sign-in` | the same browser | `{"credential", "request"?, "user_code"?}`: `{"next"}` and the session cookie |
//!
//! Every refusal is an OAuth-style error body (`invalid_request`, `access_denied`) whose
//! `error_description` the page shows.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use letterlock_protocol::ErrorCode;
use letterlock_protocol::webauthn::{AuthenticationResponse, RegistrationResponse};
use letterlock_store::UserRecord;

use crate::error::{ApiError, no_store_json};
use crate::http::see_other;
use crate::http::session::{
    cookie_name, cookie_value, finish_sign_in, from_this_origin, login_token, signed_in,
    signed_in_form,
};
use crate::identity::passkey::{CeremonyError, PasskeyError, ceremonies as passkeys};
use crate::identity::{SignedInBy, Standing, Vouched};
use crate::listen::PeerAddr;
use crate::pages;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

/// The pages' script.
pub const SCRIPT: &str = include_str!("passkey.js");

/// `GET /passkey.js`.
pub async fn script() -> Response {
    let mut response = SCRIPT.into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn not_offered() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::InvalidRequest,
        "this server does not offer passkeys",
    )
}

fn refused(error: CeremonyError) -> ApiError {
    match error {
        CeremonyError::Refused(reason) => {
            ApiError::bad_request(ErrorCode::InvalidRequest, reason.to_string())
        }
        CeremonyError::Fault(fault) => ApiError::internal(&fault),
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(
            ErrorCode::InvalidRequest,
            PasskeyError::Body(error.to_string()).to_string(),
        )
    })
}

/// The signed-in user and the session cookie's value, for a call from this origin that sends
/// the session's CSRF token in `X-CSRF-Token` (which a cross-site form cannot), as the account
/// API's calls do.
async fn account_holder(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(UserRecord, String), ApiError> {
    let forbidden =
        |what: &str| ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidRequest, what);
    if !from_this_origin(state, headers) {
        return Err(forbidden("a request from another origin"));
    }
    let (user, csrf) = signed_in(state, headers).await?.ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, "sign in first")
    })?;
    let presented = headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).unwrap_or("");
    if !constant_time_eq(presented, &csrf) {
        return Err(forbidden("send the session's X-CSRF-Token"));
    }
    let session = cookie_value(headers, &cookie_name(state)).unwrap_or_default();
    Ok((user, session))
}

/// `POST /passkey/register/options`.
pub async fn register_options(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let passkeys = passkeys(&state).ok_or_else(not_offered)?;
    let (user, session) = account_holder(&state, &headers).await?;
    let options = passkeys
        .registration_options(&user, &session)
        .await
        .map_err(|fault| ApiError::internal(&fault))?;
    Ok(json_response(StatusCode::OK, &options))
}

#[derive(Deserialize)]
struct RegisterBody {
    #[serde(default)]
    name: String,
    credential: RegistrationResponse,
}

/// `POST /passkey/register`: 201 `{"id", "name"}`.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let passkeys = passkeys(&state).ok_or_else(not_offered)?;
    let (user, session) = account_holder(&state, &headers).await?;
    let body: RegisterBody = json_body(&body)?;
    let passkey =
        passkeys.register(&user, &session, &body.name, &body.credential).await.map_err(refused)?;
    tracing::info!(user = user.address.as_str(), name = passkey.name.as_str(), "passkey added");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "id": passkey.credential_id, "name": passkey.name }),
    ))
}

/// `POST /passkey/remove` (the account page's form): back to the account page.
pub async fn remove(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (user, _, form) = match signed_in_form(&state, &headers, &body, |_| {
        pages::error(StatusCode::UNAUTHORIZED, "Sign in first.")
    })
    .await
    {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let credential = form.single("credential").unwrap_or("");
    match state.store().delete_passkey(&user.id, credential).await {
        Ok(removed) => {
            if removed {
                tracing::info!(user = user.address.as_str(), "passkey removed");
            }
            see_other(&format!("{}/account", state.issuer().path_prefix()))
        }
        Err(error) => crate::http::internal(&error),
    }
}

/// The sign-in page's browser: same origin, holding its sign-in token.
fn sign_in_browser(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = login_token(state, headers).filter(|_| from_this_origin(state, headers));
    token.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidRequest,
            "this sign-in page is too old or did not come from this site; reload it",
        )
    })
}

/// `POST /passkey/sign-in/options`.
pub async fn sign_in_options(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let passkeys = passkeys(&state).ok_or_else(not_offered)?;
    let token = sign_in_browser(&state, &headers)?;
    // Each call keeps a challenge until it expires: the per-address budget of authorization
    // requests bounds what strangers can make the server keep.
    let block = state.address_block(crate::listen::client_ip(peer));
    state
        .address_limits()
        .authorization_requests
        .check(block)
        .map_err(|retry| ApiError::too_many_requests(retry, "passkey requests"))?;
    let options =
        passkeys.sign_in_options(&token).await.map_err(|fault| ApiError::internal(&fault))?;
    Ok(json_response(StatusCode::OK, &options))
}

#[derive(Deserialize)]
struct SignInBody {
    credential: AuthenticationResponse,
    #[serde(default)]
    request: Option<String>,
    #[serde(default)]
    user_code: Option<String>,
}

/// `POST /passkey/sign-in`: `{"next"}` with the session cookie, where the page goes on.
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let passkeys = passkeys(&state).ok_or_else(not_offered)?;
    let token = sign_in_browser(&state, &headers)?;
    // Throttling stays in front of every way in: the address's sign-in budget.
    let peer_ip = crate::listen::client_ip(peer);
    state
        .accounts()
        .allow_code_entry(peer_ip)
        .map_err(|retry| ApiError::too_many_requests(retry, "sign-in attempts"))?;
    let body: SignInBody = json_body(&body)?;
    let user = passkeys.sign_in(&token, &body.credential).await.map_err(|error| {
        tracing::info!(%error, "a passkey sign-in was refused");
        refused(error)
    })?;
    still_standing(&state, &user).await?;
    let prefix = state.issuer().path_prefix();
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let next = match (&body.request, &body.user_code) {
        (_, Some(user_code)) => format!("{prefix}/device?user_code={}", encode(user_code)),
        (Some(id), None) => format!("{prefix}/authorize/continue?request={}", encode(id)),
        (None, None) => format!("{prefix}/account"),
    };
    // The shared end of every sign-in answers with a redirect; a script cannot follow one
    // without fetching the next page itself (which could approve a request), so the location
    // goes back as JSON beside the cookie, and the page navigates.
    let finished = finish_sign_in(&state, &user, SignedInBy::Passkey, &next).await;
    let location = finished
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location else {
        return Ok(finished);
    };
    let mut response = json_response(StatusCode::OK, &json!({ "next": location }));
    for cookie in finished.headers().get_all(header::SET_COOKIE) {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    Ok(response)
}

/// A passkey proves the person, not that their directory still has them: a person last proved
/// by Dovecot, LDAP or an upstream provider is asked about again once `recheck_seconds` have
/// passed, as a refresh would. `Gone` refuses; `Unknown` lets them through, as for a refresh
/// (docs/SECURITY.md).
async fn still_standing(state: &AppState, user: &UserRecord) -> Result<(), ApiError> {
    let who = Vouched {
        user_id: &user.id,
        address: &user.address,
        source: &user.source,
        checked_at: user.checked_at,
    };
    match state.identity().recheck(state.store(), who, state.now()).await? {
        Standing::Active | Standing::Unknown => Ok(()),
        Standing::Gone => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied,
            PasskeyError::Disabled.to_string(),
        )),
    }
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    no_store_json(status, serde_json::to_vec(value).unwrap_or_default())
}
