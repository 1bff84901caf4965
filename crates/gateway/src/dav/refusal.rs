//! Refusals: each [`Refused`] as its answer, with the `WWW-Authenticate` challenges of
//! RFC 6750 §3, RFC 9449 §7.1 and RFC 9728 §5.1 where a token is at fault.

use std::net::SocketAddr;

use hyper::Response;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};

use super::body::BodyError;
use super::{Body, DPOP_ALGS, DavDoor, Refused, text};

impl DavDoor {
    /// A refusal with its `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9449 §7.1, RFC 9728
    /// §5.1).
    pub(super) fn refusal(&self, refused: Refused, peer: SocketAddr) -> Response<Body> {
        tracing::debug!(%peer, ?refused, "DAV request refused");
        let metadata = format!("resource_metadata=\"{}\"", self.metadata_url);
        let algs = format!("algs=\"{DPOP_ALGS}\"");
        let (status, bearer, dpop, body) = match &refused {
            Refused::NoToken => (
                StatusCode::UNAUTHORIZED,
                metadata.clone(),
                format!("{algs}, {metadata}"),
                "a token is needed; see the resource metadata\n".to_owned(),
            ),
            Refused::Request(reason) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "error=\"invalid_request\", error_description=\"{}\", {metadata}",
                    quoted(reason)
                ),
                format!("{algs}, {metadata}"),
                format!("{reason}\n"),
            ),
            Refused::Token(reason) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "error=\"invalid_token\", error_description=\"{}\", {metadata}",
                    quoted(reason)
                ),
                format!("{algs}, {metadata}"),
                format!("{reason}\n"),
            ),
            Refused::Scope(scopes) => (
                StatusCode::FORBIDDEN,
                format!(
                    "error=\"insufficient_scope\", scope=\"{scopes}\", error_description=\"the token lacks the scope this path needs\", {metadata}"
                ),
                format!("{algs}, {metadata}"),
                format!("this path needs the scope {scopes}\n"),
            ),
            Refused::Proof(reason) => (
                StatusCode::UNAUTHORIZED,
                metadata.clone(),
                format!(
                    "error=\"invalid_dpop_proof\", error_description=\"{}\", {algs}, {metadata}",
                    quoted(reason)
                ),
                format!("{reason}\n"),
            ),
            Refused::Path => {
                return text(StatusCode::BAD_REQUEST, "this path is not passed on\n");
            }
            Refused::Elsewhere => {
                return text(StatusCode::BAD_GATEWAY, "the destination is on another server\n");
            }
            Refused::User => {
                return text(StatusCode::FORBIDDEN, "the user name cannot be passed on\n");
            }
            Refused::Backend => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    "the server behind this one did not answer\n",
                );
            }
            Refused::Body(error) => return body_refusal(error),
        };
        let mut response = text(status, &body);
        let headers = response.headers_mut();
        for challenge in [format!("Bearer {bearer}"), format!("DPoP {dpop}")] {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Text fit for a quoted-string: no quotes, backslashes or control characters.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '"' | '\\') && !c.is_control()).collect()
}

/// The answer to a body the door could not gather.
fn body_refusal(error: &BodyError) -> Response<Body> {
    match error {
        BodyError::TooLarge => {
            text(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large\n")
        }
        BodyError::Stalled => text(StatusCode::REQUEST_TIMEOUT, "the request body stalled\n"),
        BodyError::BrokeOff => text(StatusCode::BAD_REQUEST, "the request body broke off\n"),
        BodyError::Busy | BodyError::Spool(_) => {
            if let BodyError::Spool(error) = error {
                tracing::warn!(%error, "a DAV request body could not be spooled");
            }
            let mut response =
                text(StatusCode::SERVICE_UNAVAILABLE, "too many uploads at once; try again\n");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            response
        }
    }
}
