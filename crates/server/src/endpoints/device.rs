//! The device authorization grant (RFC 8628), for mail clients with no browser: `POST
//! /device_authorization` gives a device code and a user code; the person types the user code on
//! the verification page (`/device`), signs in and approves on the same consent page as
//! everywhere; the device polls `/token` with the device code.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use letterlock_protocol::{
    DeviceAuthorizationRequest, DeviceAuthorizationResponse, ErrorCode, GrantType, ScopeSet,
};

use crate::error::{ApiError, no_store_json};
use crate::grants::consent::Approval;
use crate::grants::device::{DEVICE_CODE_SECONDS, POLL_INTERVAL, Started, normalize_user_code};
use crate::grants::records::DeviceRequest;
use crate::http::client_auth::authenticate_client;
use crate::http::form::{ContentType, lenient, oauth_form};
use crate::http::session::{sign_in_page, signed_in, signed_in_form};
use crate::http::{clean_device_name, client_for_page, internal};
use crate::limits::RetryAfter;
use crate::listen::{PeerAddr, client_ip};
use crate::pages;
use crate::state::AppState;

/// `POST /device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Each request stores a device code before anyone signs in (and a client assertion's `jti`
    // in the replay cache): a budget per address and one for all addresses bound both.
    let block = state.address_block(crate::listen::client_ip(peer));
    state
        .address_limits()
        .device_authorizations
        .check(block)
        .map_err(|retry| ApiError::too_many_requests(retry, "device authorizations"))?;
    let form = oauth_form(&headers, &body, ContentType::Required)?;
    let client = authenticate_client(&state, &headers, &form).await?;
    if !client.metadata.grant_types.contains(&GrantType::DeviceCode) {
        return Err(ApiError::bad_request(
            ErrorCode::UnauthorizedClient,
            "this client did not register the device_code grant",
        ));
    }
    // RFC 8628 §3.1: the scope and resources asked for.
    let asked = DeviceAuthorizationRequest::from_params(&form)
        .map_err(|error| ApiError::bad_request(error.code(), error.to_string()))?;
    let scope = match asked.scope.as_deref() {
        None => client.metadata.scope.clone(),
        Some(text) => ScopeSet::parse(text)
            .map_err(|error| ApiError::bad_request(ErrorCode::InvalidScope, error.to_string()))?,
    };
    if let Some(extra) = scope.iter().find(|scope| !client.metadata.scope.contains(scope)) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidScope,
            format!("the client did not register the scope {extra}"),
        ));
    }
    let configured = state.resources();
    let mut resources: Vec<String> = Vec::new();
    for resource in &asked.resources {
        // RFC 8707 §2, compared as identifiers (RFC 3986 §6.2.2-6.2.3), recorded as configured.
        let known = configured.iter().find(|known| known.is(resource)).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidTarget,
                format!("{resource} is not a service of this provider"),
            )
        })?;
        if !resources.iter().any(|recorded| recorded == known.as_str()) {
            resources.push(known.as_str().to_owned());
        }
    }
    if resources.is_empty() {
        resources = configured.iter().map(|resource| resource.as_str().to_owned()).collect();
    }
    let request =
        DeviceRequest { client_id: client.client_id.clone(), scope: scope.to_string(), resources };
    let Started { device_code, user_code } = state.grants().start_device(&request).await?;
    let verification_uri = state.issuer().endpoint("/device");
    // RFC 8628 §3.2, with §3.3.1's `verification_uri_complete`.
    let response = DeviceAuthorizationResponse {
        verification_uri_complete: Some(format!("{verification_uri}?user_code={user_code}")),
        device_code,
        user_code,
        verification_uri,
        expires_in: Some(DEVICE_CODE_SECONDS.unsigned_abs()),
        interval: Some(POLL_INTERVAL.unsigned_abs()),
    };
    Ok(no_store_json(StatusCode::OK, response.to_json().into_bytes()))
}

/// `GET /device[?user_code=...]`: the verification page.
pub async fn verification(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let parameters = lenient(query.as_deref().unwrap_or("").as_bytes());
    let prefix = state.issuer().path_prefix().to_owned();
    let (user, csrf) = match signed_in(&state, &headers).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => {
            let hidden = parameters.single("user_code").map(|code| ("user_code", code));
            return sign_in_page(
                &state,
                &headers,
                Some(hidden.unwrap_or(("user_code", ""))),
                "",
                None,
                StatusCode::OK,
            );
        }
        Err(error) => return internal(&error),
    };
    match parameters.single("user_code") {
        Some(code) => {
            // A link with a code looks it up like a typed one, so it spends the same budget.
            if let Err(retry) = state.accounts().allow_code_entry(client_ip(peer)) {
                return too_many_guesses(&prefix, &csrf, retry);
            }
            consent_for(&state, &normalize_user_code(code), &user, &csrf).await
        }
        None => pages::device_code_entry(&prefix, &csrf, None, StatusCode::OK),
    }
}

/// The code entry page with a 429 and `Retry-After`.
fn too_many_guesses(prefix: &str, csrf: &str, retry: RetryAfter) -> Response {
    let mut response = pages::device_code_entry(
        prefix,
        csrf,
        Some("Too many attempts. Wait a minute and try again."),
        StatusCode::TOO_MANY_REQUESTS,
    );
    retry.set_on(&mut response);
    response
}

/// `POST /device`: the code typed on the verification page.
pub async fn enter_code(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let prefix = state.issuer().path_prefix().to_owned();
    let (user, csrf, form) = match signed_in_form(&state, &headers, &body, |form| {
        let hidden = ("user_code", form.single("user_code").unwrap_or(""));
        sign_in_page(&state, &headers, Some(hidden), "", None, StatusCode::UNAUTHORIZED)
    })
    .await
    {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    // Typing codes is throttled like signing in, so that codes cannot be guessed.
    if let Err(retry) = state.accounts().allow_code_entry(client_ip(peer)) {
        return too_many_guesses(&prefix, &csrf, retry);
    }
    consent_for(&state, &normalize_user_code(form.single("user_code").unwrap_or("")), &user, &csrf)
        .await
}

async fn consent_for(
    state: &AppState,
    user_code: &str,
    user: &letterlock_store::UserRecord,
    csrf: &str,
) -> Response {
    let prefix = state.issuer().path_prefix();
    let (record, request) = match state.grants().pending_device(user_code).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return pages::device_code_entry(
                prefix,
                csrf,
                Some("This code is not valid. Check it and try again."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(error) => return internal(&error),
    };
    let client = match client_for_page(state, &request.client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let application = client.display_name();
    pages::consent(&pages::Consent {
        action: format!("{prefix}/device/consent"),
        request: &record.user_code,
        csrf,
        address: &user.address,
        application: &application,
        vendor: client.vendor.as_ref().map(|vendor| vendor.name.as_str()),
        verified_redirect: None,
        shared: client.is_shared(),
        redirect_host: "the device that showed you the code",
        scopes: request.scope.split(' ').collect(),
        resources: request.resources.iter().map(String::as_str).collect(),
        device_name: &application,
    })
}

/// `POST /device/consent`: Approve or Deny a device.
pub async fn decide(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, _, form) = match signed_in_form(&state, &headers, &body, |_| {
        pages::error(StatusCode::UNAUTHORIZED, "You are not signed in any more. Start again.")
    })
    .await
    {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    // The form names a user code, which is looked up: a guess like a typed one.
    if let Err(retry) = state.accounts().allow_code_entry(client_ip(peer)) {
        return crate::limits::page(retry);
    }
    let user_code = normalize_user_code(form.single("request").unwrap_or(""));
    let grants = state.grants();
    let (record, request) = match grants.pending_device(&user_code).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "This code has expired or was already used.",
            );
        }
        Err(error) => return internal(&error),
    };
    if form.single("decision") != Some("approve") {
        return match grants.deny_device(&record).await {
            Ok(_) => pages::message(
                "Access denied",
                "The device was not given access. You can close this page.",
            ),
            Err(error) => internal(&error),
        };
    }
    let client = match client_for_page(&state, &request.client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let device_name = clean_device_name(form.single("device_name").unwrap_or(""), &client);
    let approval = Approval {
        device_name: &device_name,
        scope: &request.scope,
        resources: &request.resources,
        redirect_uri: None,
    };
    let grant = match grants.consent(&client, &user, approval).await {
        Ok(grant) => grant,
        Err(error) => return internal(&error),
    };
    match grants.approve_device(&record, &grant).await {
        Ok(true) => pages::message(
            "Device connected",
            "Your device has access now. You can close this page.",
        ),
        Ok(false) => pages::error(StatusCode::BAD_REQUEST, "This code was already decided."),
        Err(error) => internal(&error),
    }
}
