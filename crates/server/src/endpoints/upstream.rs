//! "Sign in with ...": `GET /sign-in/upstream/{name}` sends the browser to an upstream OpenID
//! provider, and `GET /sign-in/upstream/{name}/callback` takes its answer (the provider's
//! rules are [`crate::identity::upstream`]).
//!
//! Between the two, the sign-in is kept server-side under the hash of its `state`, for
//! [`IN_FLIGHT_SECONDS`], with the nonce, the PKCE verifier and what the browser came for (an
//! authorization request or a device code). It is bound to the browser by a cookie whose hash
//! it holds: an answer brought by another browser (login CSRF, RFC 9700 §4.7; a link forwarded
//! to a victim) is refused, and a `state` works once. Each provider has its own callback path,
//! so an answer is only ever taken for the provider it was sent to (RFC 9700 §4.4.2, mix-up).

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use letterlock_protocol::base64url;
use letterlock_protocol::pkce::{CodeChallenge, CodeVerifier};
use serde::{Deserialize, Serialize};

use crate::http::form::lenient;
use crate::http::session::{cookie_value, finish_sign_in, sign_in_page, sign_in_unavailable};
use crate::http::{internal, see_other};
use crate::identity::SignedInBy;
use crate::identity::upstream::{Answer, UpstreamError, UpstreamProvider};
use crate::listen::PeerAddr;
use crate::pages;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

/// How long a sign-in at a provider may take, from the redirect to its answer: ten minutes.
pub const IN_FLIGHT_SECONDS: i64 = 600;

/// Random bytes in `state`, the nonce and the browser binding (base64url: 32 characters).
const SECRET_BYTES: usize = 24;

/// A sign-in in flight, as kept in the store.
#[derive(Debug, Serialize, Deserialize)]
struct InFlight {
    /// The provider's configured name.
    provider: String,
    /// SHA-256 of the browser's binding cookie.
    browser: String,
    nonce: String,
    code_verifier: String,
    /// What the browser came for: (`request`, id) or (`user_code`, code).
    #[serde(default)]
    hidden: Option<(String, String)>,
}

/// The binding cookie's name: `__Host-` on https, like the session's.
fn binding_cookie_name(state: &AppState) -> &'static str {
    if state.issuer().is_https() { "__Host-letterlock-upstream" } else { "letterlock_upstream" }
}

fn hash(text: &str) -> String {
    base64url::encode(letterlock_jose::sha256(text.as_bytes()))
}

/// The redirect URI registered at the provider for this server.
pub fn callback_uri(state: &AppState, provider: &str) -> String {
    state.issuer().endpoint(&format!("/sign-in/upstream/{provider}/callback"))
}

/// `GET /sign-in/upstream/{name}[?request=ID | ?user_code=CODE]`: the sign-in page's button.
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    peer: Option<Extension<PeerAddr>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(provider) = state.identity().upstream_named(&name) else {
        return pages::error(StatusCode::NOT_FOUND, "There is no such way to sign in here.");
    };
    // Each start keeps a record until it expires: the same budget as authorization requests.
    let block = state.address_block(crate::listen::client_ip(peer));
    if let Err(retry) = state.address_limits().authorization_requests.check(block) {
        return crate::limits::page(retry);
    }
    let query = lenient(query.as_deref().unwrap_or("").as_bytes());
    let hidden = match (query.single("request"), query.single("user_code")) {
        (_, Some(code)) => Some(("user_code".to_owned(), code.to_owned())),
        (Some(id), None) => match state.store().pending_request(id, state.now()).await {
            Ok(Some(_)) => Some(("request".to_owned(), id.to_owned())),
            Ok(None) => {
                return pages::error(
                    StatusCode::BAD_REQUEST,
                    "This request has expired or was already decided. Start again from your \
                     mail program.",
                );
            }
            Err(error) => return internal(&error),
        },
        (None, None) => None,
    };
    let borrowed = hidden.as_ref().map(|(name, value)| (name.as_str(), value.as_str()));
    // A browser keeps its binding across starts, so two tabs do not undo each other.
    let held = cookie_value(&headers, binding_cookie_name(&state))
        .filter(|value| value.len() == SECRET_BYTES.div_ceil(3) * 4);
    let secrets = (|| {
        let binding = match &held {
            Some(binding) => binding.clone(),
            None => state.random().token(SECRET_BYTES)?,
        };
        let mut verifier = [0_u8; 32];
        state.random().fill(&mut verifier)?;
        Ok::<_, crate::random::RandomFailed>((
            binding,
            state.random().token(SECRET_BYTES)?,
            state.random().token(SECRET_BYTES)?,
            CodeVerifier::from_random(verifier),
        ))
    })();
    let Ok((binding, state_value, nonce, verifier)) = secrets else {
        return internal(&"the random generator failed");
    };
    let challenge = CodeChallenge::s256(&verifier, letterlock_jose::sha256);
    let redirect_uri = callback_uri(&state, provider.name());
    let url = match provider
        .authorization_url(state.now(), &redirect_uri, &state_value, &nonce, challenge.as_str())
        .await
    {
        Ok(url) => url,
        Err(error) => {
            tracing::warn!(provider = provider.name(), %error, "cannot send a person to the upstream provider");
            return sign_in_unavailable(&state, &headers, borrowed, "");
        }
    };
    let record = InFlight {
        provider: provider.name().to_owned(),
        browser: hash(&binding),
        nonce,
        code_verifier: verifier.as_str().to_owned(),
        hidden: hidden.clone(),
    };
    let Ok(json) = serde_json::to_string(&record) else {
        return internal(&"cannot serialize a sign-in");
    };
    if let Err(error) = state
        .store()
        .insert_upstream_sign_in(&hash(&state_value), &json, state.now() + IN_FLIGHT_SECONDS)
        .await
    {
        return internal(&error);
    }
    let mut response = see_other(&url);
    if held.is_none() {
        let secure = if state.issuer().is_https() { "; Secure" } else { "" };
        // `SameSite=Lax`: the provider's answer is a top-level navigation from its site, which
        // a `Strict` cookie would not come with.
        let cookie = format!(
            "{}={binding}; Path=/; HttpOnly; SameSite=Lax; Max-Age={IN_FLIGHT_SECONDS}{secure}",
            binding_cookie_name(&state)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// `GET /sign-in/upstream/{name}/callback?code=..&state=..[&iss=..]` or `?error=..&state=..`:
/// the provider's answer (RFC 6749 §4.1.2, §4.1.2.1).
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(provider) = state.identity().upstream_named(&name) else {
        return pages::error(StatusCode::NOT_FOUND, "There is no such way to sign in here.");
    };
    let query = lenient(query.as_deref().unwrap_or("").as_bytes());
    let expired = || {
        pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was already used. Start again from your mail program.",
        )
    };
    let Some(state_value) = query.single("state") else { return expired() };
    // Taken, so whatever follows, this `state` never works again.
    let record = match state.store().take_upstream_sign_in(&hash(state_value), state.now()).await {
        Ok(Some(json)) => match serde_json::from_str::<InFlight>(&json) {
            Ok(record) => record,
            Err(_) => return expired(),
        },
        Ok(None) => return expired(),
        Err(error) => return internal(&error),
    };
    let browser = cookie_value(&headers, binding_cookie_name(&state)).map(|value| hash(&value));
    if record.provider != provider.name()
        || !browser.is_some_and(|browser| constant_time_eq(&browser, &record.browser))
    {
        tracing::warn!(
            provider = provider.name(),
            "an upstream answer came to another browser than the one that started the sign-in"
        );
        return pages::error(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser, or its cookie is gone. Start again \
             from your mail program in this browser.",
        );
    }
    let hidden = record.hidden.as_ref().map(|(name, value)| (name.as_str(), value.as_str()));
    let again = |message: &str, status: StatusCode| {
        sign_in_page(&state, &headers, hidden, "", Some(message), status)
    };
    let label = provider.label();
    // RFC 6749 §4.1.2.1: the provider answered with an error.
    if let Some(error) = query.single("error") {
        tracing::info!(
            provider = provider.name(),
            error = letterlock_jose::shown(error),
            "the upstream provider answered with an error"
        );
        return if error == "access_denied" {
            again(&format!("Sign-in with {label} was cancelled."), StatusCode::FORBIDDEN)
        } else {
            again(
                &format!("{label} did not sign you in ({}).", letterlock_jose::shown(error)),
                StatusCode::BAD_GATEWAY,
            )
        };
    }
    let Some(code) = query.single("code") else {
        return again(&format!("{label} did not sign you in."), StatusCode::BAD_GATEWAY);
    };
    let answer = Answer {
        code,
        iss: query.single("iss"),
        redirect_uri: &callback_uri(&state, provider.name()),
        code_verifier: &record.code_verifier,
        nonce: &record.nonce,
        now: state.now(),
    };
    let address = match provider.finish(&answer).await {
        Ok(address) => address,
        Err(error) => return refusal(&state, &headers, hidden, provider, &error),
    };
    let user = match remember(&state, provider.name(), &address).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if user.disabled {
        return again(&format!("The account {address} is disabled here."), StatusCode::FORBIDDEN);
    }
    let prefix = state.issuer().path_prefix();
    let next = match hidden {
        Some(("user_code", code)) => format!(
            "{prefix}/device?user_code={}",
            url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
        ),
        Some((_, id)) => format!(
            "{prefix}/authorize/continue?request={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        None => format!("{prefix}/account"),
    };
    finish_sign_in(&state, &user, SignedInBy::Upstream { name: provider.name().to_owned() }, &next)
        .await
}

/// The page for a sign-in the provider did not prove: the sign-in page again with what went
/// wrong, in words for the person; the details in the log.
fn refusal(
    state: &AppState,
    headers: &HeaderMap,
    hidden: Option<(&str, &str)>,
    provider: &UpstreamProvider,
    error: &UpstreamError,
) -> Response {
    let label = provider.label();
    tracing::warn!(provider = provider.name(), %error, "an upstream sign-in was refused");
    let message = match error {
        UpstreamError::Unavailable(_) => return sign_in_unavailable(state, headers, hidden, ""),
        UpstreamError::Refused(_) | UpstreamError::IdToken(_) => {
            format!("{label}'s answer could not be verified, so you are not signed in. Try again.")
        }
        UpstreamError::NoAddress(_) => format!("{label} did not tell us your mail address."),
        UpstreamError::Unverified(address) => {
            format!("{label} has not verified that {address} is yours.")
        }
        UpstreamError::OtherDomain(address) => format!(
            "{label} signed you in as {address}, but this server serves mail only for {}.",
            provider.domains().join(", ")
        ),
    };
    sign_in_page(state, headers, hidden, "", Some(&message), StatusCode::FORBIDDEN)
}

/// The person's row (made on a first sign-in: same address, same person), recording that this
/// provider vouched for them now.
async fn remember(
    state: &AppState,
    provider: &str,
    address: &str,
) -> Result<letterlock_store::UserRecord, Response> {
    let store = state.store();
    let now = state.now();
    let id = match store.user_by_address(address).await {
        Ok(Some(user)) => user.id,
        Ok(None) => state.random().id().map_err(|error| internal(&error))?,
        Err(error) => return Err(internal(&error)),
    };
    store.user_proven_by(address, provider, &id, now).await.map_err(|error| internal(&error))
}
