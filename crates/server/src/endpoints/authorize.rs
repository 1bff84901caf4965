//! `GET /authorize` (RFC 6749 §4.1.1 with PKCE, RFC 8707 resources, RFC 9207 `iss`), the
//! sign-in form (`POST /login`), and the one consent page (`GET /authorize/continue`,
//! `POST /consent`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use letterlock_protocol::authorization::{Allowed, prove_redirect};
use letterlock_protocol::{
    AuthorizationRequest, AuthorizationResponse, ErrorBody, ErrorCode, Params, RedirectUri,
};
use letterlock_store::UserRecord;

use crate::accounts::SignInError;
use crate::clients::{Client, ClientOrigin};
use crate::grants::GrantError;
use crate::grants::consent::Approval;
use crate::grants::records::PendingRequest;
use crate::http::form::lenient;
use crate::http::session::{
    finish_sign_in, from_this_origin, login_token, session_began, sign_in_page,
    sign_in_unavailable, signed_in, signed_in_form,
};
use crate::http::{clean_device_name, client_for_page, internal, see_other};
use crate::listen::PeerAddr;
use crate::pages;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

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
    let client_id = match AuthorizationRequest::client_id(&parameters) {
        Ok(client_id) => client_id,
        Err(error) => return pages::error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let client = match client_for_page(&state, client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let redirect_uri = match prove_redirect(
        &client.metadata.redirect_uris,
        client.accepts_any_native_redirect(),
        parameters.single("redirect_uri"),
    ) {
        // A configured web client's redirects are compared byte for byte (RFC 9700 §4.1.3),
        // loopback ports included: its operator wrote them out.
        Ok(redirect_uri) if client.redirect_is_exact(&redirect_uri) => redirect_uri,
        Ok(_) => {
            let error = letterlock_protocol::AuthorizationError::RedirectMismatch;
            return pages::error(StatusCode::BAD_REQUEST, &error.to_string());
        }
        Err(error) => return pages::error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let person = match signed_in(&state, &headers).await {
        Ok(person) => person,
        Err(error) => return internal(&error),
    };
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: redirect_uri.clone(),
        state: parameters.single("state").map(str::to_owned),
        // RFC 9700 §4.11.2: registration is open, so anyone can register a web redirect; an
        // error sent there at once would make this server an open redirector. Until someone
        // signed in here, such errors are shown on a page. Loopback and private-use redirects
        // lead to a program on the person's own device, not to a web site.
        errors_on_a_page: person.is_none() && !is_native(&redirect_uri),
    };
    // The request's rules (RFC 6749 §3.1 duplicates, §4.1.1, PKCE with S256 per RFC 7636 §4.3
    // and RFC 9700 §2.1.1, scope per §3.3, RFC 8707 resources, RFC 9449 §10 `dpop_jkt`) are
    // `letterlock-protocol`'s, checked against the client's registered scope and this
    // server's services.
    // RFC 9700 §2.1.1: PKCE may be left out only by a configured confidential client whose
    // operator exempted it.
    let allowed = Allowed {
        scope: &client.metadata.scope,
        resources: state.resources(),
        pkce_optional: client.pkce_optional(),
    };
    let request = match AuthorizationRequest::from_params(&parameters, allowed) {
        Ok(request) => request,
        Err(error) => return answer.error(error.code(), &error.to_string()),
    };
    let pending = PendingRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        state: request.state,
        code_challenge: request.code_challenge.map(|challenge| challenge.as_str().to_owned()),
        scope: request.scope.to_string(),
        resources: request.resources,
        dpop_jkt: request.dpop_jkt,
        login_hint: request.login_hint,
        nonce: request.nonce,
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
        Some((user, csrf)) => {
            let auth_time = auth_time(&state, &pending, &headers).await;
            decide(&state, &id, pending, client, &user, &csrf, auth_time).await
        }
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
    let auth_time = auth_time(&state, &pending, &headers).await;
    decide(&state, id, pending, client, &user, &csrf, auth_time).await
}

/// OpenID Connect Core §2 `auth_time` for a request with the `openid` scope: when the person's
/// session began. Other requests need no second look at the session.
async fn auth_time(state: &AppState, pending: &PendingRequest, headers: &HeaderMap) -> Option<i64> {
    if pending.scope.split(' ').any(|scope| scope == letterlock_protocol::scope::OPENID) {
        session_began(state, headers).await
    } else {
        None
    }
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
    let (user, how) = match state.accounts().sign_in(address, password, peer).await {
        Ok(proven) => proven,
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
        Err(SignInError::Unavailable) => {
            return sign_in_unavailable(&state, &headers, hidden, address);
        }
        Err(SignInError::Internal) => return internal(&"the random generator failed"),
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
    finish_sign_in(&state, &user, how, &next).await
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
        return answer.error(ErrorCode::AccessDenied, "the user denied the request");
    }
    let client = match client_for_page(&state, &pending.client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let device_name = clean_device_name(form.single("device_name").unwrap_or(""), &client);
    let auth_time = auth_time(&state, &pending, &headers).await;
    match approve(&state, &pending, &client, &user, &device_name, auth_time).await {
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
    auth_time: Option<i64>,
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
            let device_name = &grant.device_name;
            return match approve(state, &pending, &client, user, device_name, auth_time).await {
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
        // A configured web client is the provider's own: its name and redirect are vouched
        // for by the provider's configuration, as a trusted vendor's statement would.
        vendor: match client.origin {
            ClientOrigin::Configured => Some("your mail provider"),
            _ => client.vendor.as_ref().map(|vendor| vendor.name.as_str()),
        },
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
    auth_time: Option<i64>,
) -> Result<Response, GrantError> {
    let grants = state.grants();
    let approval = Approval {
        device_name,
        scope: &pending.scope,
        resources: &pending.resources,
        redirect_uri: Some(&pending.redirect_uri),
    };
    let grant = grants.consent(client, user, approval).await?;
    let code = grants.create_code(client, pending, &user.id, &grant, auth_time).await?;
    let answer = Answer {
        issuer: state.issuer().as_str().to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        errors_on_a_page: false,
    };
    Ok(answer.send(Ok(code)))
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
    /// Sends `outcome` to the redirect URI (RFC 6749 §4.1.2, §4.1.2.1).
    fn send(&self, outcome: Result<String, ErrorBody>) -> Response {
        let response = AuthorizationResponse {
            outcome,
            state: self.state.clone(),
            issuer: Some(self.issuer.clone()),
        };
        see_other(&response.redirect_to(&self.redirect_uri))
    }

    fn error(&self, code: ErrorCode, description: &str) -> Response {
        if self.errors_on_a_page {
            return pages::error(
                StatusCode::BAD_REQUEST,
                &format!("The application's request is not valid: {description} ({code})."),
            );
        }
        self.send(Err(ErrorBody::new(code, description)))
    }
}

/// True for a loopback or private-use redirect: it leads to a program on the person's device.
fn is_native(redirect_uri: &str) -> bool {
    RedirectUri::parse(redirect_uri).is_ok_and(|uri| uri.is_native())
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
