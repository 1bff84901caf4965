//! Form bodies at the OAuth endpoints that take one (token, revoke, introspect, device
//! authorization): a thin layer over [`Params`], whose rules (content type, UTF-8, size and
//! count bounds, the RFC 6749 §3.1 duplicate rule) live in `letterlock-protocol`.

use axum::http::{HeaderMap, header};
use letterlock_protocol::{ErrorCode, Params, ParamsError};

use crate::error::ApiError;

/// Whether an endpoint insists on the form's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/x-www-form-urlencoded` is required (RFC 6749 §3.2, RFC 7009 §2.1,
    /// RFC 8628 §3.1).
    Required,
    /// Any content type is read as a form. Only `/introspect`: Dovecot's `introspection_mode =
    /// post` (lib-oauth2) sends `token=...` without a `Content-Type`, and the CLI's Dovecot
    /// tests use it.
    Lenient,
}

/// Reads an OAuth endpoint's form: the content type (as `rule` says), UTF-8 and the bounds of
/// [`Params::from_form_body`], and RFC 6749 §3.1: "Request and response parameters MUST NOT
/// be included more than once" (`resource` may repeat, RFC 8707 §2).
pub fn oauth_form(headers: &HeaderMap, body: &[u8], rule: ContentType) -> Result<Params, ApiError> {
    let bad = |message: String| ApiError::bad_request(ErrorCode::InvalidRequest, message);
    let form = match rule {
        ContentType::Required => {
            let content_type =
                headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
            Params::from_form_body(content_type, body)
        }
        ContentType::Lenient => {
            std::str::from_utf8(body).map_err(|_| ParamsError::NotUtf8).and_then(Params::parse)
        }
    }
    .map_err(|error| bad(error.to_string()))?;
    if let Some(duplicate) = form.duplicate() {
        return Err(bad(format!("the parameter {duplicate} appears more than once")));
    }
    Ok(form)
}

/// A query string or a browser form's body, read leniently: a body that is not UTF-8, or
/// breaks the bounds of [`Params::parse`], reads as no parameters (the pages then say what is
/// missing).
pub fn lenient(text: &[u8]) -> Params {
    std::str::from_utf8(text).ok().and_then(|text| Params::parse(text).ok()).unwrap_or_default()
}
