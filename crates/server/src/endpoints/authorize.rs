//! `GET /authorize` (RFC 6749 §4.1.1 with PKCE, RFC 8707 resources, RFC 9207 `iss`), the
//! sign-in form (`POST /login`), and the one consent page (`GET /authorize/continue`,
//! `POST /consent`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use letterlock_protocol::{Params, RedirectUri, ScopeSet, base64url};
use letterlock_store::UserRecord;

use crate::accounts::SignInError;
use crate::clients::Client;
use crate::grants::GrantError;
use crate::grants::consent::Approval;
use crate::grants::records::PendingRequest;
use crate::http::form::lenient;
use crate::http::session::{
    from_this_origin, login_token, session_cookie, sign_in_page, signed_in, signed_in_form,
};
use crate::http::{clean_device_name, client_for_page, internal, see_other};
use crate::listen::PeerAddr;
use crate::pages;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

/// The longest `state` passed through, in bytes.
const MAX_STATE_BYTES: usize = 2048;

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
    if let Err(retry) = state.address_limits().authorization_requests.check(block) {
        return crate::limits::page(retry);
    }
    let parameters = match Params::parse(query.as_deref().unwrap_or("")) {
        Ok(parameters) => parameters,
        Err(error) => return pages::error(StatusCode::BAD_REQUEST, &error.to_string()),
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
    let json = pending.to_json();
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
    let parameters = lenient(query.as_deref().unwrap_or("").as_bytes());
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
    let form = lenient(&body);
    // Login CSRF: another site's page that posts this form with its owner's account would sign
    // this browser in as the attacker, and the person's next consent would give their mail
    // program tokens for the attacker's mailbox. The form must come from this origin and carry
    // the token of this browser's sign-in cookie; refused before any password is checked, and
    // with no cookie set.
    let token_matches = login_token(&state, &headers)
        .is_some_and(|held| constant_time_eq(form.single("login_csrf").unwrap_or(""), &held));
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
    let user = match state.accounts().sign_in(address, password, peer).await {
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
    let cookie = match state.accounts().start_session(&user).await {
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
        let covering = match state.grants().covering_grant(user, &client, &pending).await {
            Ok(covering) => covering,
            Err(error) => return internal(&error),
        };
        if let Some(grant) = covering {
            if let Err(error) = state.store().delete_pending_request(id).await {
                return internal(&error);
            }
            return match approve(state, &pending, &client, user, &grant.device_name).await {
                Ok(response) => response,
                Err(error) => internal(&error),
            };
        }
    }
    let application = client.display_name();
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

/// Creates or widens the grant for this user and installation, issues a code and sends it to
/// the client.
async fn approve(
    state: &AppState,
    pending: &PendingRequest,
    client: &Client,
    user: &UserRecord,
    device_name: &str,
) -> Result<Response, GrantError> {
    let grants = state.grants();
    let approval = Approval {
        device_name,
        scope: &pending.scope,
        resources: &pending.resources,
        redirect_uri: Some(&pending.redirect_uri),
    };
    let grant = grants.consent(client, user, approval).await?;
    let code = grants.create_code(client, pending, &user.id, &grant).await?;
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        errors_on_a_page: false,
    };
    Ok(answer.send(&[("code", &code)]))
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
        Ok(Some(json)) => PendingRequest::from_json(&json)
            .map_err(|_| pages::error(StatusCode::BAD_REQUEST, "This request is not valid.")),
        Ok(None) => Err(pages::error(
            StatusCode::BAD_REQUEST,
            "This request has expired or was already decided. Start again from your mail program.",
        )),
        Err(error) => Err(internal(&error)),
    }
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
