//! `POST /register` (RFC 7591 §3) and, in stored mode, the client configuration endpoint
//! `GET|PUT|DELETE /register/{client_id}` (RFC 7592 §2).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use letterlock_protocol::registration::parse_request_body;
use letterlock_protocol::{AuthMethod, ErrorCode};
use letterlock_store::ClientRecord;

use crate::clients::Registration;
use crate::config::RegistrationMode;
use crate::error::{ApiError, no_store_json, registration_error};
use crate::listen::PeerAddr;
use crate::secrets::{constant_time_eq, hash_secret};
use crate::state::AppState;

/// `POST /register`.
pub async fn register(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !state.registration().enabled {
        // The metadata names no registration_endpoint (RFC 8414 §2), so nothing is here.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest,
            "this server offers no dynamic client registration (RFC 7591); use a client id the \
             provider publishes",
        ));
    }
    state
        .check_registration_budget(crate::listen::client_ip(peer))
        .map_err(|retry| ApiError::too_many_requests(retry, "registrations"))?;
    let request = read_json(&state, &headers, body).await?;
    let registration = state.clients().check_registration(request)?;
    if !registration.metadata.is_native_installation()
        && let Some(expected) = &state.registration().initial_access_token
    {
        let presented = bearer_token(&headers).unwrap_or_default();
        if !constant_time_eq(presented, expected) {
            return Err(ApiError::invalid_token(
                "web and confidential clients need an initial access token (RFC 7591 §3)",
            ));
        }
    }
    let now = state.now();
    let body = match state.registration().mode {
        RegistrationMode::Stateless => {
            let client_id = state.clients().seal(&registration, now)?;
            let secret = match registration.metadata.token_endpoint_auth_method {
                AuthMethod::ClientSecretBasic => Some(
                    state
                        .sealer()
                        .client_secret(&client_id)
                        .map_err(|error| ApiError::internal(&error))?,
                ),
                _ => None,
            };
            response_body(&client_id, now, &registration, secret, None)
        }
        RegistrationMode::Stored => {
            let client_id = random_token(&state, 16)?;
            let access_token = random_token(&state, 32)?;
            let secret = match registration.metadata.token_endpoint_auth_method {
                AuthMethod::ClientSecretBasic => Some(random_token(&state, 32)?),
                _ => None,
            };
            let record = ClientRecord {
                client_id: client_id.clone(),
                metadata: Value::Object(registration.metadata.to_json()).to_string(),
                software_statement: registration.software_statement.clone(),
                vendor: registration.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
                registration_token_hash: hash_secret(&access_token),
                client_secret_hash: secret.as_deref().map(hash_secret),
                issued_at: now,
                updated_at: now,
            };
            state
                .store()
                .insert_client(&record)
                .await
                .map_err(|error| ApiError::internal(&error))?;
            let management =
                Management { uri: configuration_uri(&state, &client_id), access_token };
            response_body(&client_id, now, &registration, secret, Some(management))
        }
    };
    tracing::debug!(client_name = ?registration.metadata.client_name.default_value(), vendor = ?registration.vendor.as_ref().map(|vendor| &vendor.issuer), "registered a client");
    Ok(no_store_json(StatusCode::CREATED, serde_json::to_vec(&body).unwrap_or_default()))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1). The registration access token is rotated: only
/// its hash is kept, so a read can only answer with a new one.
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = authorize(&state, &client_id, &headers).await?;
    let object: Map<String, Value> =
        serde_json::from_str(&record.metadata).map_err(|error| ApiError::internal(&error))?;
    let registration = Registration {
        metadata: letterlock_protocol::ClientMetadata::from_json(&object)
            .map_err(|error| ApiError::internal(&error))?,
        software_statement: record.software_statement.clone(),
        vendor: None,
    };
    save_with_fresh_token(&state, record, &registration, None).await
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the full metadata replaces what was there, after
/// the same checks as a registration.
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let record = authorize(&state, &client_id, &headers).await?;
    let mut request = read_json(&state, &headers, body).await?;
    if request.remove("client_id") != Some(Value::String(client_id.clone())) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "the body must include this client's client_id (RFC 7592 §2.2)",
        ));
    }
    for forbidden in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        if request.contains_key(forbidden) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidClientMetadata,
                format!("{forbidden} must not be sent in an update (RFC 7592 §2.2)"),
            ));
        }
    }
    if let Some(secret) = request.remove("client_secret") {
        let matches = secret.as_str().map(hash_secret) == record.client_secret_hash;
        if !matches {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidClientMetadata,
                "client_secret does not match; a client cannot choose its secret",
            ));
        }
    }
    let registration = state.clients().check_registration(request)?;
    let now = state.now();
    let mut secret = None;
    let client_secret_hash = match registration.metadata.token_endpoint_auth_method {
        AuthMethod::ClientSecretBasic if record.client_secret_hash.is_some() => {
            record.client_secret_hash.clone()
        }
        AuthMethod::ClientSecretBasic => {
            let fresh = random_token(&state, 32)?;
            let hashed = hash_secret(&fresh);
            secret = Some(fresh);
            Some(hashed)
        }
        _ => None,
    };
    let updated = ClientRecord {
        client_id: client_id.clone(),
        metadata: Value::Object(registration.metadata.to_json()).to_string(),
        software_statement: registration.software_statement.clone(),
        vendor: registration.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
        registration_token_hash: String::new(),
        client_secret_hash,
        issued_at: record.issued_at,
        updated_at: now,
    };
    save_with_fresh_token(&state, updated, &registration, secret).await
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): 204, and the client id, its secret, its
/// registration access token and its grants stop working at once; the grants go to the
/// revocation feed, so that front doors refuse their access tokens and close their sessions.
pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &client_id, &headers).await?;
    state.store().delete_client(&client_id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stores a client under a fresh registration access token and answers with the client
/// information (RFC 7592 §3). Only the token's hash is kept, so every read and update rotates it,
/// and the client must use the new one (RFC 7592 §2.1).
async fn save_with_fresh_token(
    state: &AppState,
    mut record: ClientRecord,
    registration: &Registration,
    secret: Option<String>,
) -> Result<Response, ApiError> {
    let access_token = random_token(state, 32)?;
    record.registration_token_hash = hash_secret(&access_token);
    state.store().update_client(&record).await?;
    let management = Management { uri: configuration_uri(state, &record.client_id), access_token };
    let body =
        response_body(&record.client_id, record.issued_at, registration, secret, Some(management));
    Ok(no_store_json(StatusCode::OK, serde_json::to_vec(&body).unwrap_or_default()))
}

/// Finds the client and checks its registration access token. RFC 7592 §2.1: an unknown client
/// and a wrong token look the same (401), so the endpoint does not reveal which ids exist.
async fn authorize(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<ClientRecord, ApiError> {
    let presented = bearer_token(headers)
        .ok_or_else(|| ApiError::invalid_token("a registration access token is required"))?;
    let record = state.store().client(client_id).await?;
    let record = record.ok_or_else(|| {
        ApiError::invalid_token("the registration access token is not valid for this client")
    })?;
    let presented = hash_secret(presented);
    if !constant_time_eq(&presented, &record.registration_token_hash) {
        return Err(ApiError::invalid_token(
            "the registration access token is not valid for this client",
        ));
    }
    Ok(record)
}

/// Reads a JSON object body: `application/json` only, within the size limit.
async fn read_json(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidClientMetadata,
            "the request body must be JSON with Content-Type: application/json (RFC 7591 §3)",
        ));
    }
    let limit = state.limits().max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidClientMetadata,
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    parse_request_body(&bytes).map_err(registration_error)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

fn random_token(state: &AppState, bytes: usize) -> Result<String, ApiError> {
    Ok(state.random().token(bytes)?)
}

fn configuration_uri(state: &AppState, client_id: &str) -> String {
    state.issuer().endpoint(&format!("/register/{client_id}"))
}

struct Management {
    uri: String,
    access_token: String,
}

/// RFC 7591 §3.2.1 (and RFC 7592 §3): every registered value at the top level.
fn response_body(
    client_id: &str,
    issued_at: i64,
    registration: &Registration,
    secret: Option<String>,
    management: Option<Management>,
) -> Map<String, Value> {
    let mut body = registration.metadata.to_json();
    body.insert("client_id".into(), client_id.into());
    body.insert("client_id_issued_at".into(), issued_at.into());
    if let Some(secret) = secret {
        body.insert("client_secret".into(), secret.into());
        body.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(statement) = &registration.software_statement {
        body.insert("software_statement".into(), statement.clone().into());
    }
    if let Some(management) = management {
        body.insert("registration_client_uri".into(), management.uri.into());
        body.insert("registration_access_token".into(), management.access_token.into());
    }
    body
}
