//! The devices page (`/account`): a signed-in user's grants, one per installation, with revoke
//! one, revoke all, password change and sign-out; the same as a JSON API under `/account/api`.
//! And the revocation feed (`/revocations`) that front doors follow.

use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use letterlock_protocol::ErrorCode;
use letterlock_store::{GrantRecord, RevocationRecord, UserRecord};

use crate::accounts::{SignInError, change_password};
use crate::error::{ApiError, no_store_json};
use crate::http::client_auth::resource_server;
use crate::http::session::{
    account_form, cookie_name, cookie_value, from_this_origin, session_cookie, sign_in_page,
    signed_in,
};
use crate::http::{internal, see_other};
use crate::listen::PeerAddr;
use crate::pages::{self, escape};
use crate::secrets::{constant_time_eq, hash_secret};
use crate::state::AppState;
use letterlock_protocol::Params;

/// The longest a feed request may wait for news, in seconds.
const MAX_WAIT_SECONDS: u64 = 30;
/// How often a waiting feed request looks again (revocations may come from other nodes).
const FEED_POLL: Duration = Duration::from_millis(250);

/// `GET /account`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(Some((user, csrf))) => devices_page(&state, &user, &csrf, None).await,
        Ok(None) => sign_in_page(&state, &headers, None, "", None, StatusCode::OK),
        Err(error) => internal(&error),
    }
}

/// `POST /account/revoke`, `/account/revoke-all`, `/account/password`, `/account/logout`.
pub async fn action(
    State(state): State<AppState>,
    Path(action): Path<String>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, csrf, form) = match account_form(&state, &headers, &body).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let now = state.now();
    let back = format!("{}/account", state.issuer().path_prefix());
    match action.as_str() {
        "revoke" => {
            let grant = form.single("grant").unwrap_or("");
            if let Err(error) = state.store().revoke_grant(grant, Some(&user.id), now).await {
                return internal(&error);
            }
            see_other(&back)
        }
        "revoke-all" => {
            if let Err(error) = state.store().revoke_grants_of_user(&user.id, now).await {
                return internal(&error);
            }
            see_other(&back)
        }
        "password" => {
            let peer =
                peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |Extension(peer)| peer.0.ip());
            if user.password_hash.is_empty() {
                // Proved by a directory or another provider: the password is theirs to change.
                let message = password_kept_elsewhere(&user);
                return devices_page(&state, &user, &csrf, Some(&message)).await;
            }
            let current = form.single("current").unwrap_or("");
            match state.accounts().check_current_password(&user, current, peer).await {
                Ok(()) => {}
                Err(SignInError::Invalid | SignInError::Unavailable | SignInError::Internal) => {
                    return devices_page(
                        &state,
                        &user,
                        &csrf,
                        Some("The current password is wrong."),
                    )
                    .await;
                }
                Err(SignInError::Throttled) => {
                    let mut response = devices_page(
                        &state,
                        &user,
                        &csrf,
                        Some("Too many attempts. Wait a minute and try again."),
                    )
                    .await;
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    // The account's budget refills within a minute.
                    crate::limits::RetryAfter(60).set_on(&mut response);
                    return response;
                }
            }
            let revoke_all = form.single("revoke_all") == Some("on");
            match change_password(
                state.store(),
                &user.address,
                form.single("new").unwrap_or(""),
                revoke_all,
                now,
            )
            .await
            {
                // The change ends every session, this one too: start a fresh one here.
                Ok(_) => match state.accounts().start_session(&user).await {
                    Ok(cookie) => {
                        let mut response = see_other(&back);
                        if let Ok(value) = HeaderValue::from_str(&session_cookie(
                            &state,
                            &cookie,
                            state.lifetimes().session,
                        )) {
                            response.headers_mut().insert(header::SET_COOKIE, value);
                        }
                        response
                    }
                    Err(error) => internal(&error),
                },
                Err(error) => devices_page(&state, &user, &csrf, Some(&error.to_string())).await,
            }
        }
        "logout" => {
            if let Some(cookie) = cookie_value(&headers, &cookie_name(&state))
                && let Err(error) = state.store().delete_session(&hash_secret(&cookie)).await
            {
                return internal(&error);
            }
            let mut response = sign_in_page(
                &state,
                &headers,
                None,
                "",
                Some("You are signed out."),
                StatusCode::OK,
            );
            if let Ok(value) = HeaderValue::from_str(&session_cookie(&state, "", 0)) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        _ => pages::error(StatusCode::NOT_FOUND, "No such action."),
    }
}

/// `GET /account/api/devices`: the same list as JSON, with the CSRF token the other API calls
/// need in `X-CSRF-Token`.
pub async fn api_devices(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (user, csrf) = api_user(&state, &headers).await?;
    let grants = state.store().grants_of_user(&user.id).await?;
    let devices: Vec<Value> = grants.iter().map(|grant| device_json(&state, grant)).collect();
    Ok(no_store_json(
        StatusCode::OK,
        json!({ "user": user.address, "csrf": csrf, "devices": devices }).to_string().into_bytes(),
    ))
}

/// `POST /account/api/devices/{id}/revoke`: 204, or 404 if the user has no live device with
/// this id.
pub async fn api_revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = api_user_with_csrf(&state, &headers).await?;
    if state.store().revoke_grant(&id, Some(&user.id), state.now()).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest,
            "no live device with this id",
        ))
    }
}

/// `POST /account/api/devices/revoke-all`: `{"revoked": n}`.
pub async fn api_revoke_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = api_user_with_csrf(&state, &headers).await?;
    let revoked = state.store().revoke_grants_of_user(&user.id, state.now()).await?;
    Ok(no_store_json(StatusCode::OK, json!({ "revoked": revoked }).to_string().into_bytes()))
}

/// The signed-in user of an API call that changes something: the session cookie alone is not
/// enough, the session's CSRF token must come in `X-CSRF-Token` (which a cross-site form
/// cannot send).
async fn api_user_with_csrf(state: &AppState, headers: &HeaderMap) -> Result<UserRecord, ApiError> {
    if !from_this_origin(state, headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidRequest,
            "a request from another origin",
        ));
    }
    let (user, csrf) = api_user(state, headers).await?;
    let presented = headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).unwrap_or("");
    if constant_time_eq(presented, &csrf) {
        Ok(user)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidRequest,
            "send the session's X-CSRF-Token",
        ))
    }
}

/// `GET /revocations?after=CURSOR&wait=SECONDS`, for resource servers: grants and access tokens
/// revoked after the cursor, waiting up to `wait` seconds (at most 30, and 2 less than
/// `request_timeout_seconds`) for the first one. Front doors refuse them and close their live
/// sessions.
pub async fn feed(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    resource_server(&state, &headers)?;
    let parameters = Params::parse(query.as_deref().unwrap_or(""))
        .map_err(|error| ApiError::bad_request(ErrorCode::InvalidRequest, error.to_string()))?;
    let number = |name: &str| -> Result<u64, ApiError> {
        parameters.single(name).map_or(Ok(0), |text| {
            text.parse().map_err(|_| {
                ApiError::bad_request(
                    ErrorCode::InvalidRequest,
                    format!("{name} must be a whole number"),
                )
            })
        })
    };
    let after = i64::try_from(number("after")?).unwrap_or(i64::MAX);
    // The answer must come before the server's own request timeout cuts the request off.
    let limit = state.limits().request_timeout_seconds.saturating_sub(2).clamp(1, MAX_WAIT_SECONDS);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(number("wait")?.min(limit));
    loop {
        let revocations = state.store().revocations_after(after, 500).await?;
        if !revocations.is_empty() || tokio::time::Instant::now() >= deadline {
            let cursor = revocations.last().map_or(after, |entry| entry.cursor);
            let items: Vec<Value> = revocations.into_iter().map(feed_item).collect();
            return Ok(no_store_json(
                StatusCode::OK,
                json!({ "revocations": items, "cursor": cursor }).to_string().into_bytes(),
            ));
        }
        tokio::time::sleep(FEED_POLL).await;
    }
}

/// A feed entry: `{"cursor", "grant_id", "revoked_at"}` for a revoked grant, and `jti` besides
/// for one revoked access token (RFC 7009), which front doors then refuse alone. A front door
/// that knows nothing of `jti` closes the whole grant: more than asked, never less.
fn feed_item(entry: RevocationRecord) -> Value {
    let mut item = json!({
        "cursor": entry.cursor,
        "grant_id": entry.grant_id,
        "revoked_at": entry.revoked_at,
    });
    if let Some(jti) = entry.token_id {
        item["jti"] = jti.into();
    }
    item
}

async fn api_user(state: &AppState, headers: &HeaderMap) -> Result<(UserRecord, String), ApiError> {
    signed_in(state, headers).await?.ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, "sign in first")
    })
}

fn device_json(state: &AppState, grant: &GrantRecord) -> Value {
    json!({
        "id": grant.id,
        "device_name": grant.device_name,
        "application": grant.client_name,
        "verified_by": verified_by(state, grant),
        "software_id": grant.software_id,
        "software_version": grant.software_version,
        "scope": grant.scope.to_string(),
        "resources": grant.resources,
        "first_use": grant.created_at,
        "last_use": grant.last_used_at,
        "last_address": grant.last_address,
        "revoked_at": grant.revoked_at,
    })
}

/// The vendor's name, while the vendor is still trusted.
fn verified_by(state: &AppState, grant: &GrantRecord) -> Option<String> {
    let issuer = grant.vendor.as_deref()?;
    state.vendors().iter().find(|vendor| vendor.issuer == issuer).map(|vendor| vendor.name.clone())
}

/// What the devices page says to a person without a password here.
fn password_kept_elsewhere(user: &UserRecord) -> String {
    format!("Your password is kept by {} and is changed there, not here.", user.source)
}

async fn devices_page(
    state: &AppState,
    user: &UserRecord,
    csrf: &str,
    message: Option<&str>,
) -> Response {
    let grants = match state.store().grants_of_user(&user.id).await {
        Ok(grants) => grants,
        Err(error) => return internal(&error),
    };
    let prefix = state.issuer().path_prefix();
    // Issue 17: the one-time code section (its forms go to `endpoints::second_factor`).
    let one_time_codes = match crate::second_factor::recovery_codes_left(state, user).await {
        Ok(left) => pages::one_time_codes_section(
            prefix,
            csrf,
            left,
            state.identity().require_second_factor(),
        ),
        Err(error) => return internal(&error),
    };
    let csrf = escape(csrf);
    let mut rows = String::new();
    for grant in &grants {
        let verified = match verified_by(state, grant) {
            Some(vendor) => {
                format!("<span class=\"verified\">Verified: {}</span>", escape(&vendor))
            }
            None => "<span class=\"unverified\">Not verified</span>".to_owned(),
        };
        let action = match grant.revoked_at {
            Some(at) => format!("Revoked {}", pages::date(at)),
            None => format!(
                "<form method=\"post\" action=\"{prefix}/account/revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"grant\" value=\"{}\"><button type=\"submit\">Revoke</button></form>",
                escape(&grant.id)
            ),
        };
        rows.push_str(&format!(
            "<tr><td><strong>{}</strong><br>{}<br>{verified}</td><td>{}</td><td>{}<br><span class=\"muted\">{}</span></td><td>{action}</td></tr>",
            escape(&grant.device_name),
            escape(&grant.client_name),
            pages::date(grant.created_at),
            pages::date(grant.last_used_at),
            escape(grant.last_address.as_deref().unwrap_or("")),
        ));
    }
    if grants.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">No device has access to your account.</td></tr>");
    }
    let message = message
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default();
    // Passkeys, when offered: their list and "Add a passkey", with the script that adds one.
    let passkeys = match crate::identity::passkey::ceremonies(state) {
        Some(_) => match state.store().passkeys_of_user(&user.id).await {
            Ok(registered) => Some(pages::passkeys_section(prefix, &csrf, &registered)),
            Err(error) => return internal(&error),
        },
        None => None,
    };
    // Issue 17: a person proved by Dovecot, a directory or a provider has no password here.
    let password = if user.password_hash.is_empty() {
        format!("<h2>Password</h2><p>{}</p>", escape(&password_kept_elsewhere(user)))
    } else {
        format!(
            "<h2>Change password</h2><form method=\"post\" action=\"{prefix}/account/password\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\
             <label for=\"new\">New password</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" required>\
             <label><input type=\"checkbox\" name=\"revoke_all\" value=\"on\" checked> Also sign out every device</label>\
             <button type=\"submit\">Change password</button></form>"
        )
    };
    let body = format!(
        "<h1>Devices with access to {address}</h1>{message}\
             <table><thead><tr><th>Device</th><th>First use</th><th>Last use</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
             <form method=\"post\" action=\"{prefix}/account/revoke-all\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Revoke all devices</button></form>\
             {password}{one_time_codes}<form method=\"post\" action=\"{prefix}/account/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Sign out</button></form>",
        address = escape(&user.address),
    );
    match passkeys {
        Some(section) => pages::page_with_script(
            StatusCode::OK,
            "Your devices",
            &(body + &section),
            &format!("{prefix}/passkey.js"),
        ),
        None => pages::page(StatusCode::OK, "Your devices", &body),
    }
}
