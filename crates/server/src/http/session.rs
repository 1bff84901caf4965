//! Browser sessions: the session cookie, the sign-in page with its login token (against login
//! CSRF), same-origin checks, and forms posted by a signed-in person with their CSRF token.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use letterlock_protocol::Params;
use letterlock_store::UserRecord;

use super::form::lenient;
use super::{internal, see_other};
use crate::identity::SignedInBy;
use crate::pages;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

/// The signed-in user and the session's CSRF token, from the session cookie.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(UserRecord, String)>, letterlock_store::Error> {
    let Some(cookie) = cookie_value(headers, &cookie_name(state)) else { return Ok(None) };
    Ok(state.accounts().session(&cookie).await?.map(|(user, session)| (user, session.csrf)))
}

/// When this browser's session began: OpenID Connect Core §2 `auth_time`, the time the person
/// signed in. `None` without a live session.
pub async fn session_began(state: &AppState, headers: &HeaderMap) -> Option<i64> {
    let cookie = cookie_value(headers, &cookie_name(state))?;
    match state.accounts().session(&cookie).await {
        Ok(Some((_, session))) => Some(session.created_at),
        _ => None,
    }
}

/// Where every way of proving who someone is ends (a password source, an upstream OpenID
/// provider, a passkey): the session starts, its cookie is set, and the browser goes on to
/// `next` (a path under the issuer: the authorization request or device code it came for, or
/// the account page).
///
/// A password sign-in stops short of the session when a second factor is due (the person set
/// one up, or `[sign_in] require_second_factor`): it is held as a pending sign-in instead, and
/// the browser goes to the code step ([`hold_for_second_factor`]). An upstream provider has
/// its own factors and a passkey with user verification is two factors: neither is asked.
pub async fn finish_sign_in(
    state: &AppState,
    user: &UserRecord,
    how: SignedInBy,
    next: &str,
) -> Response {
    if let SignedInBy::Password { source } = &how {
        match crate::second_factor::due(state, user).await {
            Ok(true) => return hold_for_second_factor(state, user, source, next).await,
            Ok(false) => {}
            Err(error) => return internal(&error),
        }
    }
    start_session_with(state, user, how.source(), see_other(next)).await
}

/// Starts a session for a user whose sign-in is complete and sets its cookie on `response`.
pub async fn start_session_with(
    state: &AppState,
    user: &UserRecord,
    source: &str,
    mut response: Response,
) -> Response {
    let cookie = match state.accounts().start_session(user).await {
        Ok(cookie) => cookie,
        Err(error) => return internal(&error),
    };
    tracing::info!(user = user.address.as_str(), source, "signed in");
    if let Ok(value) =
        HeaderValue::from_str(&session_cookie(state, &cookie, state.lifetimes().session))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// How long a sign-in waits for its second factor, in seconds: time to find the phone.
pub const PENDING_SECONDS: i64 = 300;

/// The pending sign-in cookie's name: `__Host-` on https, as the session's. A cookie of its
/// own, read only by the code step: nothing that asks for a session ([`signed_in`]) sees it.
pub fn pending_cookie_name(state: &AppState) -> &'static str {
    if state.issuer().is_https() { "__Host-letterlock-pending" } else { "letterlock_pending" }
}

/// A `Set-Cookie` value for the pending sign-in cookie. `SameSite=Strict`: the code step is
/// reached only from this site's own pages.
pub fn pending_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    let secure = if state.issuer().is_https() { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        pending_cookie_name(state)
    )
}

/// Holds a sign-in whose password was right until its second factor comes: a pending row
/// (`pending_sign_ins`, not a session) and its cookie, and a redirect to the code step. A
/// session cookie this browser held is dropped: it is signing in afresh, perhaps as someone
/// else.
pub async fn hold_for_second_factor(
    state: &AppState,
    user: &UserRecord,
    source: &str,
    next: &str,
) -> Response {
    let (id, csrf) = match (state.random().token(32), state.random().token(24)) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(error), _) | (_, Err(error)) => return internal(&error),
    };
    let now = state.now();
    let pending = letterlock_store::PendingSignInRecord {
        id_hash: crate::secrets::hash_secret(&id),
        user_id: user.id.clone(),
        csrf,
        method: source.to_owned(),
        next: next.to_owned(),
        created_at: now,
        expires_at: now + PENDING_SECONDS,
    };
    if let Err(error) = state.store().insert_pending_sign_in(&pending).await {
        return internal(&error);
    }
    tracing::info!(user = user.address.as_str(), source, "password right, second factor due");
    let mut response = see_other(&format!("{}/login/second-factor", state.issuer().path_prefix()));
    for cookie in [pending_cookie(state, &id, PENDING_SECONDS), session_cookie(state, "", 0)] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The sign-in page's answer when an identity source could not answer: 503 with `Retry-After`
/// (RFC 9110 §15.6.4), and the person's typed address kept.
pub fn sign_in_unavailable(
    state: &AppState,
    headers: &HeaderMap,
    hidden: Option<(&str, &str)>,
    address: &str,
) -> Response {
    let mut response = sign_in_page(
        state,
        headers,
        hidden,
        address,
        Some("Sign-in is unavailable right now. Try again in a few minutes."),
        StatusCode::SERVICE_UNAVAILABLE,
    );
    crate::limits::RetryAfter(30).set_on(&mut response);
    response
}

/// `__Host-` cookies must be `Secure`, which a plain-http loopback issuer cannot set.
pub fn cookie_name(state: &AppState) -> String {
    if state.issuer().is_https() {
        "__Host-letterlock".to_owned()
    } else {
        "letterlock_session".to_owned()
    }
}

/// A `Set-Cookie` value for the session cookie.
pub fn session_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    let secure = if state.issuer().is_https() { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state)
    )
}

/// The sign-in page for this browser. Its form carries the browser's sign-in token (against
/// login CSRF), made and set as a cookie the first time: `SameSite=Strict`, so that another
/// site's form never sends it, and `__Host-` on https, so that no other host can plant one.
pub fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    hidden: Option<(&str, &str)>,
    address: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let held = login_token(state, headers);
    let token = match &held {
        Some(token) => token.clone(),
        None => match state.random().token(LOGIN_TOKEN_BYTES) {
            Ok(token) => token,
            Err(error) => return internal(&error),
        },
    };
    let form = pages::SignIn {
        prefix: state.issuer().path_prefix(),
        hidden,
        login_token: &token,
        address,
        message,
        upstream: state
            .identity()
            .upstream()
            .iter()
            .map(|provider| (provider.name(), provider.label()))
            .collect(),
        passkeys: crate::identity::passkey::ceremonies(state).is_some(),
    };
    let mut response = pages::sign_in(&form, status);
    let secure = if state.issuer().is_https() { "; Secure" } else { "" };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        login_cookie_name(state),
        state.lifetimes().session
    );
    if held.is_none()
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Random bytes in a sign-in token (base64url: 32 characters).
pub const LOGIN_TOKEN_BYTES: usize = 24;

/// The sign-in token cookie's name.
pub fn login_cookie_name(state: &AppState) -> &'static str {
    if state.issuer().is_https() { "__Host-letterlock-login" } else { "letterlock_login" }
}

/// The sign-in token this browser holds, if it holds one of the right form.
pub fn login_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, login_cookie_name(state)).filter(|token| {
        token.len() == LOGIN_TOKEN_BYTES.div_ceil(3) * 4
            && token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}

/// False when the browser says a state-changing request comes from another origin: a
/// `Sec-Fetch-Site` other than `same-origin` (or `none`, the person's own action), or an
/// `Origin` other than the issuer's. `same-site` is refused too: another port or host of the
/// same site is another party. `Origin: null` is let through: Chromium sends it for this
/// site's own forms under `Referrer-Policy: no-referrer`, and the forms' tokens still decide.
/// A browser that sends neither header is judged by the tokens alone.
pub fn from_this_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::to_str);
    let site_ok = matches!(fetch_site, None | Some(Ok("same-origin" | "none")));
    let origin = headers.get(header::ORIGIN).map(HeaderValue::to_str);
    let origin_ok = match origin {
        None | Some(Ok("null")) => true,
        Some(Ok(origin)) => origin == state.issuer().origin(),
        Some(Err(_)) => false,
    };
    if !(site_ok && origin_ok) {
        tracing::info!(
            sec_fetch_site = ?fetch_site,
            origin = ?origin,
            "refused a form posted from another origin"
        );
    }
    site_ok && origin_ok
}

/// The value of the cookie `name`, if the browser sent one.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// [`signed_in_form`] for the account page's own forms: without a session, the sign-in page.
pub async fn account_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(UserRecord, String, Params), Response> {
    signed_in_form(state, headers, body, |_| {
        sign_in_page(state, headers, None, "", Some("Sign in first."), StatusCode::UNAUTHORIZED)
    })
    .await
}

/// Parses a form POSTed by a signed-in person and checks where it comes from and the session's
/// CSRF token: the user, the session's CSRF token and the form, or the page to answer with
/// (`not_signed_in` when there is no session, 403 for another origin or a bad token).
pub async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    not_signed_in: impl FnOnce(&Params) -> Response,
) -> Result<(UserRecord, String, Params), Response> {
    if !from_this_origin(state, headers) {
        return Err(pages::error(StatusCode::FORBIDDEN, "This form did not come from this site."));
    }
    let form = lenient(body);
    let (user, csrf) = match signed_in(state, headers).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return Err(not_signed_in(&form)),
        Err(error) => return Err(internal(&error)),
    };
    if !constant_time_eq(form.single("csrf").unwrap_or(""), &csrf) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        ));
    }
    Ok((user, csrf, form))
}
