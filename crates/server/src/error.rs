//! Errors as they leave the server: OAuth error JSON with the right status, never a secret, and
//! for a server fault only an incident id (the details go to the log).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use letterlock_protocol::{BearerError, ErrorBody, ErrorCode};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and description.
    pub fn new(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(code, description),
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: ErrorCode, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// 401 `invalid_token` with an RFC 6750 §3 challenge.
    pub fn invalid_token(description: &str) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, description);
        // RFC 6750 §3: the description in the header is printable ASCII without quotes or
        // backslashes (`BearerError::auth_params` drops those two; the rest of what is not
        // printable ASCII is dropped here, so that the header stays valid); the JSON body
        // carries it in full.
        let header_text: String =
            description.chars().filter(|character| matches!(character, ' '..='~')).collect();
        let params = BearerError::InvalidToken.auth_params(None, Some(&header_text));
        error.www_authenticate = Some(format!("Bearer {params}"));
        error
    }

    /// 429 `temporarily_unavailable` with `Retry-After` (RFC 6585 §4): `what` came too often
    /// from the client's address.
    pub fn too_many_requests(retry_after: crate::limits::RetryAfter, what: &str) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable,
            format!("too many {what} from this address; try again later"),
        );
        error.retry_after = Some(retry_after.0.max(1));
        error
    }

    /// 500: logs the cause with an incident id and shows only the id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let incident = log_incident(cause);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            format!("internal error, incident {incident}"),
        )
    }

    /// Sets a `WWW-Authenticate` challenge.
    pub fn set_www_authenticate(&mut self, challenge: &str) {
        self.www_authenticate = Some(challenge.to_owned());
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Logs a fault of ours with a new incident id, and returns the id: the only detail a client or
/// person is shown.
pub fn log_incident(cause: &dyn std::fmt::Display) -> String {
    let incident = incident_id();
    tracing::error!(incident, %cause, "internal error");
    incident
}

/// An id to find the log line by. Not a secret, so when the generator has failed (perhaps the
/// very fault being reported) a count and the time stand in, which still tell incidents apart.
fn incident_id() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    crate::random::Randomness::system().token(6).unwrap_or_else(|_| {
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        format!("t{seconds:x}-{count}")
    })
}

/// Something on the server's side failed: storage or the random generator. It becomes a 500
/// with an incident id; the cause goes only to the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// The random generator failed, so no secret was made.
    #[error(transparent)]
    Random(#[from] crate::random::RandomFailed),
}

impl From<InternalError> for ApiError {
    fn from(error: InternalError) -> Self {
        Self::internal(&error)
    }
}

impl From<crate::random::RandomFailed> for ApiError {
    fn from(error: crate::random::RandomFailed) -> Self {
        Self::internal(&error)
    }
}

/// A JSON response that no cache may keep: every OAuth answer carries tokens, secrets or
/// per-user state (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_else(|_| {
            format!(r#"{{"error":"{}"}}"#, ErrorCode::ServerError).into_bytes()
        });
        let mut response = no_store_json(self.status, body);
        let headers = response.headers_mut();
        if let Some(challenge) =
            self.www_authenticate.and_then(|value| HeaderValue::from_str(&value).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<letterlock_store::Error> for ApiError {
    fn from(error: letterlock_store::Error) -> Self {
        Self::internal(&error)
    }
}

impl From<crate::clients::ClientIdError> for ApiError {
    /// RFC 6749 §5.2: a client id that does not open is `invalid_client` (401), whatever the
    /// reason; the reason goes in the description, except storage failures, which are ours.
    fn from(error: crate::clients::ClientIdError) -> Self {
        match error {
            crate::clients::ClientIdError::Storage(cause) => Self::internal(&cause),
            reason => {
                Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient, reason.to_string())
            }
        }
    }
}

impl From<crate::clients::RegisterError> for ApiError {
    fn from(error: crate::clients::RegisterError) -> Self {
        match error {
            crate::clients::RegisterError::Refused { code, description } => {
                Self::bad_request(code, description)
            }
            internal @ crate::clients::RegisterError::Internal(_) => Self::internal(&internal),
        }
    }
}

/// A metadata error as RFC 7591 §3.2.2 JSON.
pub fn registration_error(error: letterlock_protocol::RegistrationError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}

impl From<crate::grants::GrantError> for ApiError {
    /// A refusal is a 400 with its code and description (RFC 6749 §5.2); a fault of ours is a
    /// 500 with an incident id.
    fn from(error: crate::grants::GrantError) -> Self {
        if error.is_internal() {
            Self::internal(&error)
        } else {
            Self::bad_request(error.code(), error.to_string())
        }
    }
}
