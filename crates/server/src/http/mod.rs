//! The HTTP shell's shared parts: forms, sessions, client authentication, and the responses
//! every page endpoint answers with. Endpoints (in `crate::endpoints`) use these and the grant
//! core, never each other.

pub mod client_auth;
pub mod form;
pub mod session;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clients::Client;
use crate::pages;
use crate::state::AppState;

/// `303 See Other` to `location`, not cached.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error page for a fault of ours: an incident id, the cause in the log.
pub fn internal(error: &dyn std::fmt::Display) -> Response {
    let incident = crate::error::log_incident(error);
    pages::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("Something went wrong on our side (incident {incident}). Try again in a moment."),
    )
}

/// Opens a client id for a page, or the error page that says why not.
pub async fn client_for_page(state: &AppState, client_id: &str) -> Result<Client, Response> {
    state.clients().open(client_id).await.map_err(|error| {
        pages::error(
            StatusCode::BAD_REQUEST,
            &format!("The application is not recognized: {error}."),
        )
    })
}

/// The device name a person typed, without control characters, at most 100 characters; the
/// application name if empty.
pub fn clean_device_name(text: &str, client: &Client) -> String {
    let cleaned: String =
        text.chars().filter(|character| !character.is_control()).take(100).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { client.display_name() } else { cleaned.to_owned() }
}
