//! `GET /authorize` (RFC 6749 §4.1.1 with PKCE, RFC 8707 resources, RFC 9207 `iss`), the
//! sign-in form (`POST /login`), and the one consent page (`GET /authorize/continue`,
//! `POST /consent`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use letterlock_protocol::{RedirectUri, ScopeSet, base64url};
use letterlock_store::{GrantRecord, UserRecord};

use crate::accounts::{SignInError, hash_secret, same};
use crate::clients::Client;
use crate::error::InternalError;
use crate::listen::PeerAddr;
use crate::pages;
use crate::state::AppState;

/// A request waiting for sign-in and consent, kept in storage so that any node can finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resources: Vec<String>,
    pub dpop_jkt: Option<String>,
    pub login_hint: Option<String>,
}

/// What a code stands for, stored (by the code's hash) until it is redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeDetails {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub resources: Vec<String>,
    pub dpop_jkt: Option<String>,
    pub user_id: String,
}

/// The longest `state` passed through, in bytes.
const MAX_STATE_BYTES: usize = 2048;

/// How many approved redirect URIs a grant remembers (the newest): a loopback client on a new
/// port each time would otherwise grow the list without end.
const MAX_APPROVED_REDIRECTS: usize = 16;

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // Each request stores a pending request before anyone signs in: a per-address budget, and
    // one for all addresses, bound what strangers can make the server keep.
    let block = state.address_block(crate::listen::client_ip(peer));
    if let Err(retry) = state.0.address_limits.authorization_requests.check(block) {
        return crate::limits::page(retry);
    }
    let parameters = match Parameters::parse(query.as_deref().unwrap_or("")) {
        Ok(parameters) => parameters,
        Err(message) => return pages::error(StatusCode::BAD_REQUEST, &message),
    };
    // Until the client and its redirect URI are proven, errors go to the person, never to a
    // redirect (RFC 6749 §4.1.2.1): otherwise this would be an open redirector.
    let Some(client_id) = parameters.single("client_id") else {
        return pages::error(StatusCode::BAD_REQUEST, "The request names no client (client_id).");
    };
    let client = match client_for_page(&state, client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let redirect_uri = match proven_redirect(&client, parameters.single("redirect_uri")) {
        Ok(redirect_uri) => redirect_uri,
        Err(message) => return pages::error(StatusCode::BAD_REQUEST, message),
    };
    let client_state = parameters.single("state").map(str::to_owned);
    let person = match signed_in(&state, &headers).await {
        Ok(person) => person,
        Err(error) => return internal(&error),
    };
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: redirect_uri.clone(),
        state: client_state.clone(),
        // RFC 9700 §4.11.2: registration is open, so anyone can register a web redirect; an
        // error sent there at once would make this server an open redirector. Until someone
        // signed in here, such errors are shown on a page. Loopback and private-use redirects
        // lead to a program on the person's own device, not to a web site.
        errors_on_a_page: person.is_none() && !is_native(&redirect_uri),
    };
    if let Some(duplicate) = parameters.duplicate() {
        return answer.error(
            "invalid_request",
            &format!("the parameter {duplicate} appears more than once"),
        );
    }
    if client_state.as_ref().is_some_and(|text| text.len() > MAX_STATE_BYTES) {
        return answer.error("invalid_request", "state is too long");
    }
    if parameters.single("response_type") != Some("code") {
        return answer.error("unsupported_response_type", "only response_type=code is supported");
    }
    // PKCE with S256 is required of every client (RFC 9700 §2.1.1); `plain` is refused.
    match parameters.single("code_challenge_method") {
        Some("S256") => {}
        Some(_) => return answer.error("invalid_request", "code_challenge_method must be S256"),
        None => {
            return answer.error(
                "invalid_request",
                "PKCE is required: send code_challenge and code_challenge_method=S256",
            );
        }
    }
    let code_challenge = match parameters.single("code_challenge") {
        Some(challenge)
            if challenge.len() == 43
                && base64url::decode(challenge).is_some_and(|bytes| bytes.len() == 32) =>
        {
            challenge.to_owned()
        }
        _ => {
            return answer.error(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the verifier (RFC 7636 §4.2)",
            );
        }
    };
    let scope = match parameters.single("scope") {
        None => client.metadata.scope.clone(),
        Some(text) => match ScopeSet::parse(text) {
            Ok(scope) if !scope.is_empty() => scope,
            Ok(_) => return answer.error("invalid_scope", "the scope is empty"),
            Err(error) => return answer.error("invalid_scope", &error.to_string()),
        },
    };
    if let Some(extra) = scope.iter().find(|scope| !client.metadata.scope.contains(scope)) {
        return answer
            .error("invalid_scope", &format!("the client did not register the scope {extra}"));
    }
    let configured: Vec<&str> =
        state.resources().iter().map(|resource| resource.as_str()).collect();
    let mut resources: Vec<String> = Vec::new();
    for resource in parameters.all("resource") {
        if !configured.contains(&resource) {
            return answer
                .error("invalid_target", &format!("{resource} is not a service of this provider"));
        }
        if !resources.iter().any(|known| known == resource) {
            resources.push(resource.to_owned());
        }
    }
    if resources.is_empty() {
        resources = configured.iter().map(|resource| (*resource).to_owned()).collect();
    }
    let dpop_jkt = match parameters.single("dpop_jkt") {
        None => None,
        Some(jkt) if jkt.len() == 43 && base64url::decode(jkt).is_some() => Some(jkt.to_owned()),
        Some(_) => {
            return answer.error("invalid_request", "dpop_jkt must be a JWK SHA-256 thumbprint");
        }
    };
    let pending = PendingRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        state: client_state,
        code_challenge,
        scope: scope.to_string(),
        resources,
        dpop_jkt,
        login_hint: parameters.single("login_hint").map(|hint| hint.chars().take(254).collect()),
    };
    let id = match state.random().token(24) {
        Ok(id) => id,
        Err(error) => return internal(&error),
    };
    let Ok(json) = serde_json::to_string(&pending) else {
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    if let Err(error) = state
        .store()
        .insert_pending_request(&id, &json, state.now() + state.lifetimes().request)
        .await
    {
        return internal(&error);
    }
    match person {
        Some((user, csrf)) => decide(&state, &id, pending, client, &user, &csrf).await,
        None => sign_in_page(
            &state,
            &headers,
            Some(("request", &id)),
            pending.login_hint.as_deref().unwrap_or(""),
            None,
            StatusCode::OK,
        ),
    }
}

/// `GET /authorize/continue?request=ID`: after sign-in, the consent step of a pending request.
pub async fn resume(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let parameters = Parameters::parse(query.as_deref().unwrap_or("")).unwrap_or_default();
    let Some(id) = parameters.single("request") else {
        return pages::error(StatusCode::BAD_REQUEST, "No request to continue.");
    };
    let pending = match load_pending(&state, id).await {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    let (user, csrf) = match signed_in(&state, &headers).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => {
            return sign_in_page(
                &state,
                &headers,
                Some(("request", id)),
                pending.login_hint.as_deref().unwrap_or(""),
                None,
                StatusCode::OK,
            );
        }
        Err(error) => return internal(&error),
    };
    let client = match client_for_page(&state, &pending.client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    decide(&state, id, pending, client, &user, &csrf).await
}

/// `POST /login`: the sign-in form.
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Parameters::parse(std::str::from_utf8(&body).unwrap_or("")).unwrap_or_default();
    // Login CSRF: another site's page that posts this form with its owner's account would sign
    // this browser in as the attacker, and the person's next consent would give their mail
    // program tokens for the attacker's mailbox. The form must come from this origin and carry
    // the token of this browser's sign-in cookie; refused before any password is checked, and
    // with no cookie set.
    let token_matches = login_token(&state, &headers)
        .is_some_and(|held| same(form.single("login_csrf").unwrap_or(""), &held));
    if !from_this_origin(&state, &headers) || !token_matches {
        return pages::error(
            StatusCode::FORBIDDEN,
            "This sign-in form did not come from this site, or it is too old. Go back, reload \
             the page and sign in again.",
        );
    }
    let address = form.single("address").unwrap_or("");
    let password = form.single("password").unwrap_or("");
    let request = form.single("request");
    let hidden = match (request, form.single("user_code")) {
        (_, Some(user_code)) => Some(("user_code", user_code)),
        (Some(id), None) => Some(("request", id)),
        (None, None) => None,
    };
    let prefix = state.issuer().path_prefix().to_owned();
    let peer = peer
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |Extension(PeerAddr(address))| {
            address.ip()
        });
    let user = match state.sign_in(address, password, peer).await {
        Ok(user) => user,
        Err(SignInError::Invalid) => {
            return sign_in_page(
                &state,
                &headers,
                hidden,
                address,
                Some("The address or password is wrong."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(SignInError::Throttled) => {
            return sign_in_page(
                &state,
                &headers,
                hidden,
                address,
                Some("Too many attempts. Wait a minute and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    };
    let cookie = match state.start_session(&user).await {
        Ok(cookie) => cookie,
        Err(error) => return internal(&error),
    };
    let next = match (request, form.single("user_code")) {
        (_, Some(user_code)) => format!(
            "{prefix}/device?user_code={}",
            url::form_urlencoded::byte_serialize(user_code.as_bytes()).collect::<String>()
        ),
        (Some(id), None) => format!(
            "{prefix}/authorize/continue?request={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        (None, None) => format!("{prefix}/account"),
    };
    let mut response = see_other(&next);
    if let Ok(value) =
        HeaderValue::from_str(&session_cookie(&state, &cookie, state.lifetimes().session))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /consent`: Approve or Deny, with the session's CSRF token.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (user, _, form) = match signed_in_form(&state, &headers, &body, |_| {
        pages::error(
            StatusCode::UNAUTHORIZED,
            "You are not signed in any more. Start again from your mail program.",
        )
    })
    .await
    {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let Some(id) = form.single("request") else {
        return pages::error(StatusCode::BAD_REQUEST, "No request to decide.");
    };
    let pending = match load_pending(&state, id).await {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    // A request is decided once: a second POST finds nothing.
    match state.store().delete_pending_request(id).await {
        Ok(true) => {}
        Ok(false) => {
            return pages::error(StatusCode::BAD_REQUEST, "This request was already decided.");
        }
        Err(error) => return internal(&error),
    }
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        errors_on_a_page: false,
    };
    if form.single("decision") != Some("approve") {
        return answer.error("access_denied", "the user denied the request");
    }
    let client = match client_for_page(&state, &pending.client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let device_name = clean_device_name(form.single("device_name").unwrap_or(""), &client);
    match approve(&state, &pending, &client, &user, &device_name).await {
        Ok(response) => response,
        Err(error) => internal(&error),
    }
}

/// Skips the page for a returning installation that proves its identity and asks for no more
/// than it has, at a redirect URI the person approved before; otherwise shows the consent page.
async fn decide(
    state: &AppState,
    id: &str,
    pending: PendingRequest,
    client: Client,
    user: &UserRecord,
    csrf: &str,
) -> Response {
    // RFC 8252 §8.6: no request is answered without the person unless the client's identity is
    // proven. Only a client whose code is useless without its own key or secret is; and even
    // then only at a redirect the person saw on a consent page, so that a program listening on
    // another loopback port never gets a code nobody was asked about.
    if client.proves_its_identity() {
        let existing = match state.store().live_grant(&user.id, &client.client_id).await {
            Ok(existing) => existing,
            Err(error) => return internal(&error),
        };
        if let Some(grant) = existing.filter(|grant| covers(grant, &pending)) {
            if let Err(error) = state.store().delete_pending_request(id).await {
                return internal(&error);
            }
            return match approve(state, &pending, &client, user, &grant.device_name).await {
                Ok(response) => response,
                Err(error) => internal(&error),
            };
        }
    }
    let application = application_name(&client);
    let redirect_host = redirect_host(&pending.redirect_uri);
    pages::consent(&pages::Consent {
        action: format!("{}/consent", state.issuer().path_prefix()),
        request: id,
        csrf,
        address: &user.address,
        application: &application,
        vendor: client.vendor.as_ref().map(|vendor| vendor.name.as_str()),
        // The registered redirect the vendor's statement named (a loopback one without port).
        verified_redirect: client
            .metadata
            .redirect_uris
            .iter()
            .find(|uri| uri.matches(&pending.redirect_uri))
            .map(RedirectUri::as_str),
        shared: client.is_shared(),
        redirect_host: &redirect_host,
        scopes: pending.scope.split(' ').collect(),
        resources: pending.resources.iter().map(String::as_str).collect(),
        device_name: &application,
    })
}

/// True when a live grant already holds every scope and resource of the request, and the
/// request's redirect URI is one the person approved for it, exactly (port included).
fn covers(grant: &GrantRecord, pending: &PendingRequest) -> bool {
    let granted_scopes: Vec<&str> = grant.scope.split(' ').collect();
    let granted_resources: Vec<String> = serde_json::from_str(&grant.resources).unwrap_or_default();
    let approved_redirects: Vec<String> =
        serde_json::from_str(&grant.redirect_uris).unwrap_or_default();
    pending.scope.split(' ').all(|scope| granted_scopes.contains(&scope))
        && pending.resources.iter().all(|resource| granted_resources.contains(resource))
        && approved_redirects.contains(&pending.redirect_uri)
}

/// Creates or updates the grant for this user and installation, issues a code and sends it to
/// the client.
async fn approve(
    state: &AppState,
    pending: &PendingRequest,
    client: &Client,
    user: &UserRecord,
    device_name: &str,
) -> Result<Response, InternalError> {
    let grant = grant_for(
        state,
        client,
        user,
        device_name,
        &pending.scope,
        &pending.resources,
        Some(&pending.redirect_uri),
    )
    .await?;
    let now = state.now();
    let code = state.random().token(32)?;
    let details = CodeDetails {
        client_id: client.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        scope: pending.scope.clone(),
        resources: pending.resources.clone(),
        dpop_jkt: pending.dpop_jkt.clone(),
        user_id: user.id.clone(),
    };
    let details = serde_json::to_string(&details).unwrap_or_default();
    state
        .store()
        .insert_code(&hash_secret(&code), &grant.id, &details, now + state.lifetimes().code)
        .await?;
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        errors_on_a_page: false,
    };
    Ok(answer.send(&[("code", &code)]))
}

/// Creates the grant of this user for this installation, or widens the live one: scopes,
/// resources and approved redirect URIs accumulate, so a returning installation keeps what it
/// had. Under a shared (well-known) client id every approval is a grant of its own: nothing
/// proves that two requests under it come from the same program.
pub(crate) async fn grant_for(
    state: &AppState,
    client: &Client,
    user: &UserRecord,
    device_name: &str,
    scope: &str,
    requested_resources: &[String],
    approved_redirect: Option<&str>,
) -> Result<GrantRecord, InternalError> {
    let now = state.now();
    let resources_json = serde_json::to_string(requested_resources).unwrap_or_else(|_| "[]".into());
    let existing = if client.is_shared() {
        None
    } else {
        state.store().live_grant(&user.id, &client.client_id).await?
    };
    let grant = match existing {
        Some(existing) => {
            // Scopes and resources accumulate: a returning installation keeps what it had.
            let mut scopes: Vec<String> = existing.scope.split(' ').map(str::to_owned).collect();
            for asked in scope.split(' ') {
                if !scopes.iter().any(|known| known == asked) {
                    scopes.push(asked.to_owned());
                }
            }
            let mut resources: Vec<String> =
                serde_json::from_str(&existing.resources).unwrap_or_default();
            for resource in requested_resources {
                if !resources.contains(resource) {
                    resources.push(resource.clone());
                }
            }
            let mut redirects: Vec<String> =
                serde_json::from_str(&existing.redirect_uris).unwrap_or_default();
            if let Some(redirect) = approved_redirect
                && !redirects.iter().any(|known| known == redirect)
            {
                redirects.push(redirect.to_owned());
            }
            // Each loopback port is a redirect of its own: keep the newest few.
            let excess = redirects.len().saturating_sub(MAX_APPROVED_REDIRECTS);
            redirects.drain(..excess);
            let updated = GrantRecord {
                device_name: device_name.to_owned(),
                client_name: application_name(client),
                scope: ScopeSet::parse(&scopes.join(" "))
                    .map(|set| set.to_string())
                    .unwrap_or(existing.scope.clone()),
                resources: serde_json::to_string(&resources).unwrap_or(resources_json),
                redirect_uris: serde_json::to_string(&redirects)
                    .unwrap_or(existing.redirect_uris.clone()),
                vendor: client.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
                ..existing
            };
            state.store().update_grant(&updated).await?;
            updated
        }
        None => {
            let grant = GrantRecord {
                id: state.random().id()?,
                user_id: user.id.clone(),
                client_id: client.client_id.clone(),
                device_name: device_name.to_owned(),
                client_name: application_name(client),
                software_id: client.metadata.software_id.clone(),
                software_version: client.metadata.software_version.clone(),
                vendor: client.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
                scope: scope.to_owned(),
                resources: resources_json,
                redirect_uris: serde_json::to_string(
                    &approved_redirect.into_iter().collect::<Vec<_>>(),
                )
                .unwrap_or_else(|_| "[]".into()),
                created_at: now,
                last_used_at: now,
                last_address: None,
                revoked_at: None,
            };
            state.store().insert_grant(&grant).await?;
            grant
        }
    };
    Ok(grant)
}

/// Where authorization responses go, with `state` and `iss` on each (RFC 9207 §2).
struct Answer {
    issuer: String,
    redirect_uri: String,
    state: Option<String>,
    /// Errors go to an error page instead of the redirect (a web redirect before anyone signed
    /// in; see `authorize`).
    errors_on_a_page: bool,
}

impl Answer {
    fn send(&self, parameters: &[(&str, &str)]) -> Response {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in parameters {
            serializer.append_pair(name, value);
        }
        if let Some(state) = &self.state {
            serializer.append_pair("state", state);
        }
        serializer.append_pair("iss", &self.issuer);
        let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
        see_other(&format!("{}{separator}{}", self.redirect_uri, serializer.finish()))
    }

    fn error(&self, code: &str, description: &str) -> Response {
        if self.errors_on_a_page {
            return pages::error(
                StatusCode::BAD_REQUEST,
                &format!("The application's request is not valid: {description} ({code})."),
            );
        }
        self.send(&[("error", code), ("error_description", description)])
    }
}

/// True for a loopback or private-use redirect: it leads to a program on the person's device.
fn is_native(redirect_uri: &str) -> bool {
    RedirectUri::parse(redirect_uri).is_ok_and(|uri| uri.is_native())
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Checks the redirect URI against the client's registration; a client with one registered
/// redirect may leave it out (RFC 6749 §3.1.2.3).
fn proven_redirect(client: &Client, presented: Option<&str>) -> Result<String, &'static str> {
    if client.accepts_any_native_redirect() {
        let presented = presented.ok_or("This application must name its redirect URI.")?;
        return match RedirectUri::parse(presented) {
            Ok(uri) if uri.is_native() => Ok(presented.to_owned()),
            _ => Err("This application may only use a loopback or private-use redirect URI."),
        };
    }
    match presented {
        None if client.metadata.redirect_uris.len() == 1 => {
            Ok(client.metadata.redirect_uris[0].as_str().to_owned())
        }
        None => Err("The request does not say where to send the answer (redirect_uri)."),
        Some(presented)
            if client.metadata.redirect_uris.iter().any(|uri| uri.matches(presented)) =>
        {
            Ok(presented.to_owned())
        }
        Some(_) => Err("The redirect URI does not match what the application registered."),
    }
}

async fn load_pending(state: &AppState, id: &str) -> Result<PendingRequest, Response> {
    match state.store().pending_request(id, state.now()).await {
        Ok(Some(json)) => serde_json::from_str(&json)
            .map_err(|_| pages::error(StatusCode::BAD_REQUEST, "This request is not valid.")),
        Ok(None) => Err(pages::error(
            StatusCode::BAD_REQUEST,
            "This request has expired or was already decided. Start again from your mail program.",
        )),
        Err(error) => Err(internal(&error)),
    }
}

/// The signed-in user and the session's CSRF token, from the session cookie.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(UserRecord, String)>, letterlock_store::Error> {
    let Some(cookie) = cookie_value(headers, &cookie_name(state)) else { return Ok(None) };
    Ok(state.session(&cookie).await?.map(|(user, session)| (user, session.csrf)))
}

/// `__Host-` cookies must be `Secure`, which a plain-http loopback issuer cannot set.
pub(crate) fn cookie_name(state: &AppState) -> String {
    if state.issuer().is_https() {
        "__Host-letterlock".to_owned()
    } else {
        "letterlock_session".to_owned()
    }
}

pub(crate) fn session_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    let secure = if state.issuer().is_https() { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state)
    )
}

/// The sign-in page for this browser. Its form carries the browser's sign-in token (against
/// login CSRF), made and set as a cookie the first time: `SameSite=Strict`, so that another
/// site's form never sends it, and `__Host-` on https, so that no other host can plant one.
pub(crate) fn sign_in_page(
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
const LOGIN_TOKEN_BYTES: usize = 24;

fn login_cookie_name(state: &AppState) -> &'static str {
    if state.issuer().is_https() { "__Host-letterlock-login" } else { "letterlock_login" }
}

/// The sign-in token this browser holds, if it holds one of the right form.
fn login_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
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
pub(crate) fn from_this_origin(state: &AppState, headers: &HeaderMap) -> bool {
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

pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

pub(crate) fn application_name(client: &Client) -> String {
    client
        .metadata
        .client_name
        .default_value()
        .map_or_else(|| "An application without a name".to_owned(), str::to_owned)
}

fn redirect_host(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match url.host_str() {
            Some(host) if matches!(url.scheme(), "http" | "https") => host.to_owned(),
            _ => format!("the application ({}:)", url.scheme()),
        },
        Err(_) => redirect_uri.to_owned(),
    }
}

pub(crate) fn clean_device_name(text: &str, client: &Client) -> String {
    let cleaned: String =
        text.chars().filter(|character| !character.is_control()).take(100).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { application_name(client) } else { cleaned.to_owned() }
}

pub(crate) fn internal(error: &dyn std::fmt::Display) -> Response {
    let incident = crate::error::log_incident(error);
    pages::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("Something went wrong on our side (incident {incident}). Try again in a moment."),
    )
}

/// Opens a client id for a page, or the error page that says why not.
pub(crate) async fn client_for_page(state: &AppState, client_id: &str) -> Result<Client, Response> {
    state.open_client(client_id).await.map_err(|error| {
        pages::error(
            StatusCode::BAD_REQUEST,
            &format!("The application is not recognized: {error}."),
        )
    })
}

/// Parses a form POSTed by a signed-in person and checks where it comes from and the session's
/// CSRF token: the user, the session's CSRF token and the form, or the page to answer with
/// (`not_signed_in` when there is no session, 403 for another origin or a bad token).
pub(crate) async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    not_signed_in: impl FnOnce(&Parameters) -> Response,
) -> Result<(UserRecord, String, Parameters), Response> {
    if !from_this_origin(state, headers) {
        return Err(pages::error(StatusCode::FORBIDDEN, "This form did not come from this site."));
    }
    let form = Parameters::parse(std::str::from_utf8(body).unwrap_or("")).unwrap_or_default();
    let (user, csrf) = match signed_in(state, headers).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return Err(not_signed_in(&form)),
        Err(error) => return Err(internal(&error)),
    };
    if !same(form.single("csrf").unwrap_or(""), &csrf) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        ));
    }
    Ok((user, csrf, form))
}

/// The most parameters a query or form may have. The largest request a client needs (an
/// authorization request naming every service as a `resource`) has about 15; the bound keeps
/// every look-up short, whoever sends the request.
const MAX_PARAMETERS: usize = 100;

/// Query or form parameters, keeping repeats (for `resource`) and noticing duplicates.
#[derive(Debug, Default)]
pub(crate) struct Parameters(Vec<(String, String)>);

impl Parameters {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.len() > 16 * 1024 {
            return Err("The request is too long.".into());
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .take(MAX_PARAMETERS + 1)
            .collect();
        if pairs.len() > MAX_PARAMETERS {
            return Err(format!("The request has too many parameters (at most {MAX_PARAMETERS})."));
        }
        Ok(Self(pairs))
    }

    /// The value of a parameter that appears once; `None` if absent or empty.
    pub(crate) fn single(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// A parameter other than `resource` that appears twice (RFC 6749 §3.1).
    pub(crate) fn duplicate(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(key, _)| key.as_str())
            .find(|key| *key != "resource" && !seen.insert(*key))
    }
}
