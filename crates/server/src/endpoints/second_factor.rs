//! The second-factor pages (issue 17): the code step of a sign-in (`GET`/`POST
//! /login/second-factor`), and the one-time code section of the account page (`POST
//! /account/totp/setup`, `/confirm`, `/off`, `/recovery-codes`). The rules are
//! [`crate::second_factor`]'s.
//!
//! A sign-in whose second factor is due is not a session: it is a row of its own
//! (`pending_sign_ins`) named by a cookie of its own, which nothing that asks for a session
//! reads, so a browser holding only it cannot reach the account page, a consent, or the JSON
//! API. The code (or a recovery code) ends it and starts the session. When the operator
//! requires a second factor and the person has none yet, this step is where they set one up,
//! the only page their pending sign-in reaches.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use letterlock_store::{PendingSignInRecord, UserRecord};

use crate::accounts::SignInError;
use crate::http::form::lenient;
use crate::http::session::{
    account_form, cookie_value, from_this_origin, pending_cookie, pending_cookie_name,
    sign_in_page, start_session_with,
};
use crate::http::{internal, see_other};
use crate::listen::PeerAddr;
use crate::pages::{self, escape};
use crate::second_factor::totp::TotpSecret;
use crate::second_factor::{self, SecondFactorError};
use crate::secrets::{constant_time_eq, hash_secret};
use crate::state::AppState;

/// The pending sign-in this browser holds and its user, or the sign-in page that says it is
/// gone (expired, finished, or the account disabled meanwhile).
async fn held(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, PendingSignInRecord, UserRecord), Response> {
    let expired = || {
        sign_in_page(
            state,
            headers,
            None,
            "",
            Some("Your sign-in has expired. Sign in again."),
            StatusCode::UNAUTHORIZED,
        )
    };
    let Some(cookie) = cookie_value(headers, pending_cookie_name(state)) else {
        return Err(expired());
    };
    let id_hash = hash_secret(&cookie);
    let pending = match state.store().pending_sign_in(&id_hash, state.now()).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return Err(expired()),
        Err(error) => return Err(internal(&error)),
    };
    match state.store().user(&pending.user_id).await {
        Ok(Some(user)) if !user.disabled => Ok((id_hash, pending, user)),
        Ok(_) => Err(expired()),
        Err(error) => Err(internal(&error)),
    }
}

/// `GET /login/second-factor`: the code form, or, when a factor is required and the person has
/// none, its set-up (a fresh secret each time the page is shown).
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (_, pending, user) = match held(&state, &headers).await {
        Ok(held) => held,
        Err(response) => return response,
    };
    code_step(&state, &pending, &user, None, StatusCode::OK, true).await
}

/// The page of the code step as things stand: a code form when the person has a factor, its
/// set-up when one is required and missing, and straight on otherwise (the factor was turned
/// off meanwhile and none is required). A set-up shows a fresh secret when `fresh`, and the
/// one being set up when a code for it was wrong (the app holds that one).
async fn code_step(
    state: &AppState,
    pending: &PendingSignInRecord,
    user: &UserRecord,
    message: Option<&str>,
    status: StatusCode,
    fresh: bool,
) -> Response {
    let action = format!("{}/login/second-factor", state.issuer().path_prefix());
    match second_factor::has_totp(state, user).await {
        Ok(true) => code_form(&action, &pending.csrf, &user.address, message, status),
        Ok(false) if state.identity().require_second_factor() => {
            let current = if fresh {
                None
            } else {
                match state.store().totp(&user.id).await {
                    Ok(factor) => factor
                        .filter(|factor| !factor.confirmed)
                        .and_then(|factor| TotpSecret::from_base32(&factor.secret)),
                    Err(error) => return internal(&error),
                }
            };
            let secret = match current {
                Some(secret) => secret,
                None => match second_factor::begin_setup(state, user).await {
                    Ok(secret) => secret,
                    Err(error) => return internal(&error),
                },
            };
            setup_form(&action, &pending.csrf, user, &secret, true, message)
        }
        // The factor was turned off meanwhile and none is required: one button on.
        Ok(false) => pages::page(
            StatusCode::OK,
            "Continue",
            &format!(
                "<h1>Continue signing in</h1><p>No one-time code is needed any more.</p>\
                 <form method=\"post\" action=\"{}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\">Continue</button></form>",
                escape(&action),
                escape(&pending.csrf)
            ),
        ),
        Err(error) => internal(&error),
    }
}

/// `POST /login/second-factor`: the code (or a recovery code, or the first code of a required
/// set-up) with the pending sign-in's CSRF token; the session starts when it is right.
pub async fn submit(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !from_this_origin(&state, &headers) {
        return pages::error(StatusCode::FORBIDDEN, "This form did not come from this site.");
    }
    let (id_hash, pending, user) = match held(&state, &headers).await {
        Ok(held) => held,
        Err(response) => return response,
    };
    let form = lenient(&body);
    if !constant_time_eq(form.single("csrf").unwrap_or(""), &pending.csrf) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        );
    }
    let peer = crate::listen::client_ip(peer);
    let typed = form.single("code").unwrap_or("");
    let has_factor = match second_factor::has_totp(&state, &user).await {
        Ok(has_factor) => has_factor,
        Err(error) => return internal(&error),
    };
    let recovery_codes = if has_factor {
        match second_factor::prove(&state, &user, typed, peer).await {
            Ok(_) => None,
            Err(error) => return refused(&state, &pending, &user, &error).await,
        }
    } else if state.identity().require_second_factor() {
        match second_factor::confirm_setup(&state, &user, typed, peer).await {
            Ok(codes) => Some(codes),
            Err(error) => return refused(&state, &pending, &user, &error).await,
        }
    } else {
        None
    };
    // The pending sign-in ends once: a second request with it (a double submit, or a copy of
    // the cookie) finds nothing and starts no second session.
    match state.store().delete_pending_sign_in(&id_hash).await {
        Ok(true) => {}
        Ok(false) => {
            return sign_in_page(
                &state,
                &headers,
                None,
                "",
                Some("Your sign-in has expired. Sign in again."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(error) => return internal(&error),
    }
    let response = match recovery_codes {
        Some(codes) => recovery_codes_page(&codes, &pending.next, "Continue"),
        None => see_other(&pending.next),
    };
    let mut response = start_session_with(&state, &user, &pending.method, response).await;
    if let Ok(value) = HeaderValue::from_str(&pending_cookie(&state, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The code step again with what was wrong: 401 for a wrong or reused code, 429 with
/// `Retry-After` when the budget is spent.
async fn refused(
    state: &AppState,
    pending: &PendingSignInRecord,
    user: &UserRecord,
    error: &SecondFactorError,
) -> Response {
    let (message, status) = match error {
        SecondFactorError::Wrong => ("The code is wrong.", StatusCode::UNAUTHORIZED),
        SecondFactorError::Replayed | SecondFactorError::Throttled => common_refusal(error),
        SecondFactorError::AlreadySetUp | SecondFactorError::NoSetUp => {
            ("This set-up is no longer current; here is a new one.", StatusCode::CONFLICT)
        }
        SecondFactorError::Store(_) | SecondFactorError::Random(_) => return internal(error),
    };
    let fresh = !matches!(error, SecondFactorError::Wrong | SecondFactorError::Throttled);
    let mut response = code_step(state, pending, user, Some(message), status, fresh).await;
    *response.status_mut() = status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        // The account's budget refills within a minute.
        crate::limits::RetryAfter(60).set_on(&mut response);
    }
    response
}

/// `POST /account/totp/{setup,confirm,off,recovery-codes}`, from the account page, with the
/// session's CSRF token. Turning the factor off and new recovery codes take a current code or
/// the password: a session alone (a borrowed computer, a stolen cookie) must not remove the
/// factor or read fresh codes.
pub async fn account_action(
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
    let prefix = state.issuer().path_prefix();
    let back = format!("{prefix}/account");
    let peer = crate::listen::client_ip(peer);
    let typed = form.single("code").unwrap_or("");
    match action.as_str() {
        "setup" => match second_factor::begin_setup(&state, &user).await {
            Ok(secret) => {
                let action = format!("{prefix}/account/totp/confirm");
                setup_form(&action, &csrf, &user, &secret, false, None)
            }
            Err(SecondFactorError::AlreadySetUp) => see_other(&back),
            Err(error) => internal(&error),
        },
        "confirm" => match second_factor::confirm_setup(&state, &user, typed, peer).await {
            Ok(codes) => recovery_codes_page(&codes, &back, "Back to your account"),
            Err(error) => account_refusal(&state, &user, &csrf, &error, true).await,
        },
        "off" | "recovery-codes" => {
            if let Err(error) = prove_with_code_or_password(&state, &user, typed, peer).await {
                return account_refusal(&state, &user, &csrf, &error, false).await;
            }
            if action == "off" {
                match second_factor::turn_off(&state, &user).await {
                    Ok(_) => see_other(&back),
                    Err(error) => internal(&error),
                }
            } else {
                match second_factor::new_recovery_codes(&state, &user).await {
                    Ok(codes) => recovery_codes_page(&codes, &back, "Back to your account"),
                    Err(error) => internal(&error),
                }
            }
        }
        _ => pages::error(StatusCode::NOT_FOUND, "No such action."),
    }
}

/// A current code, an unused recovery code, or the account's password (for someone whose
/// phone is gone and who has no recovery code left). Each spends the sign-in budget.
async fn prove_with_code_or_password(
    state: &AppState,
    user: &UserRecord,
    typed: &str,
    peer: std::net::IpAddr,
) -> Result<(), SecondFactorError> {
    match second_factor::prove(state, user, typed, peer).await {
        Ok(_) => Ok(()),
        Err(SecondFactorError::Wrong) if !user.password_hash.is_empty() => {
            match state.accounts().check_current_password(user, typed, peer).await {
                Ok(()) => Ok(()),
                Err(SignInError::Invalid | SignInError::Unavailable | SignInError::Internal) => {
                    Err(SecondFactorError::Wrong)
                }
                Err(SignInError::Throttled) => Err(SecondFactorError::Throttled),
            }
        }
        Err(error) => Err(error),
    }
}

/// The account page's answer to a refused code: during a set-up, the set-up again with a new
/// secret (the old one was shown on a page that may be gone); otherwise the account page.
async fn account_refusal(
    state: &AppState,
    user: &UserRecord,
    csrf: &str,
    error: &SecondFactorError,
    during_setup: bool,
) -> Response {
    let (message, status) = match error {
        SecondFactorError::Wrong if during_setup => (
            "The code is wrong. Check the app's clock, or add the key again.",
            StatusCode::UNAUTHORIZED,
        ),
        SecondFactorError::Wrong => ("The code or password is wrong.", StatusCode::UNAUTHORIZED),
        SecondFactorError::Replayed | SecondFactorError::Throttled => common_refusal(error),
        SecondFactorError::AlreadySetUp | SecondFactorError::NoSetUp => {
            ("This set-up is no longer current; start it again.", StatusCode::CONFLICT)
        }
        SecondFactorError::Store(_) | SecondFactorError::Random(_) => return internal(error),
    };
    let prefix = state.issuer().path_prefix();
    let mut response = if during_setup && matches!(error, SecondFactorError::Wrong) {
        // The secret on the page that sent this code is still the current one: show it again.
        match state.store().totp(&user.id).await {
            Ok(Some(factor)) if !factor.confirmed => {
                match TotpSecret::from_base32(&factor.secret) {
                    Some(secret) => setup_form(
                        &format!("{prefix}/account/totp/confirm"),
                        csrf,
                        user,
                        &secret,
                        false,
                        Some(message),
                    ),
                    None => pages::message("One-time codes", message),
                }
            }
            Ok(_) => pages::message("One-time codes", message),
            Err(error) => return internal(&error),
        }
    } else {
        pages::page(
            status,
            "One-time codes",
            &format!(
                "<h1>One-time codes</h1><p class=\"error\" role=\"alert\">{}</p>\
                 <p><a href=\"{prefix}/account\">Back to your account</a></p>",
                escape(message)
            ),
        )
    };
    *response.status_mut() = status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        crate::limits::RetryAfter(60).set_on(&mut response);
    }
    response
}

/// The code form of a sign-in.
fn code_form(
    action: &str,
    csrf: &str,
    address: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    pages::page(
        status,
        "Enter your code",
        &format!(
            "<h1>Enter your one-time code</h1>{}\
             <p>Open your authenticator app and type the 6-digit code it shows for \
             <strong>{}</strong>. Lost your phone? Type one of your recovery codes.</p>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"code\">Code</label>\
             <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
             autocomplete=\"one-time-code\" required autofocus>\
             <button type=\"submit\">Continue</button></form>",
            alert(message),
            escape(address),
            escape(action),
            escape(csrf)
        ),
    )
}

/// The set-up page: the secret shown once, as an `otpauth://` link and as text to type, and a
/// form for the first code.
fn setup_form(
    action: &str,
    csrf: &str,
    user: &UserRecord,
    secret: &TotpSecret,
    required: bool,
    message: Option<&str>,
) -> Response {
    let uri = secret.uri(&user.address);
    let grouped: Vec<String> = secret
        .base32()
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    let why = if required {
        "<p>Your provider requires a one-time code at sign-in. Set one up to continue.</p>"
    } else {
        ""
    };
    pages::page(
        if message.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        "Set up a one-time code",
        &format!(
            "<h1>Set up a one-time code</h1>{}{why}\
             <p>Add <strong>{}</strong> to an authenticator app: open this link on the phone, \
             <a id=\"totp-uri\" href=\"{}\">{}</a>, or type this key:</p>\
             <p><code id=\"totp-secret\">{}</code></p>\
             <p class=\"muted\">This key is shown only now. Then type the code the app shows.</p>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"code\">Code from the app</label>\
             <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
             autocomplete=\"one-time-code\" required>\
             <button type=\"submit\">Turn on</button></form>",
            alert(message),
            escape(&user.address),
            escape(&uri),
            escape(&uri),
            grouped.join(" "),
            escape(action),
            escape(csrf),
        ),
    )
}

/// The recovery codes, shown once, and a link on.
fn recovery_codes_page(codes: &[String], next: &str, link: &str) -> Response {
    let items: String =
        codes.iter().map(|code| format!("<li><code>{}</code></li>", escape(code))).collect();
    pages::page(
        StatusCode::OK,
        "Your recovery codes",
        &format!(
            "<h1>Your recovery codes</h1>\
             <p>If your phone is lost, each of these codes works once in place of a one-time \
             code. Keep them somewhere safe: they are shown only now.</p>\
             <ul id=\"recovery-codes\">{items}</ul><p><a id=\"continue\" href=\"{}\">{}</a></p>",
            escape(next),
            escape(link)
        ),
    )
}

fn alert(message: Option<&str>) -> String {
    message
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default()
}

/// The words and status of the refusals both code forms (the sign-in step and the account
/// page) give alike: a code used already, and too many attempts (the only two it is asked for).
fn common_refusal(error: &SecondFactorError) -> (&'static str, StatusCode) {
    match error {
        SecondFactorError::Throttled => {
            ("Too many attempts. Wait a minute and try again.", StatusCode::TOO_MANY_REQUESTS)
        }
        _ => (
            "This code was used already. Wait for the next one in your app.",
            StatusCode::UNAUTHORIZED,
        ),
    }
}
