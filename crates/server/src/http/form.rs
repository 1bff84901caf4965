//! Form bodies and query strings: one parser, and one set of rules for the OAuth endpoints
//! that take a form (token, revoke, introspect, device authorization).

use axum::http::{HeaderMap, header};
use letterlock_protocol::ErrorCode;

use crate::error::ApiError;

/// The most parameters a query or form may have. The largest request a client needs (an
/// authorization request naming every service as a `resource`) has about 15; the bound keeps
/// every look-up short, whoever sends the request.
const MAX_PARAMETERS: usize = 100;

/// The longest query or form, in bytes.
const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Query or form parameters, keeping repeats (for `resource`) and noticing duplicates.
#[derive(Debug, Default)]
pub struct Parameters(Vec<(String, String)>);

impl Parameters {
    /// Parses `application/x-www-form-urlencoded` text, within the size and count bounds.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_TEXT_BYTES {
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
    pub fn single(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// Every value of a parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// A parameter other than `resource` that appears twice (RFC 6749 §3.1).
    pub fn duplicate(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(key, _)| key.as_str())
            .find(|key| *key != "resource" && !seen.insert(*key))
    }
}

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

/// Reads an OAuth endpoint's form: the content type (as `rule` says), UTF-8, the size and count
/// bounds of [`Parameters::parse`], and RFC 6749 §3.1: "Request and response parameters MUST
/// NOT be included more than once" (`resource` may repeat, RFC 8707 §2).
pub fn oauth_form(
    headers: &HeaderMap,
    body: &[u8],
    rule: ContentType,
) -> Result<Parameters, ApiError> {
    let bad = |message: String| ApiError::bad_request(ErrorCode::InvalidRequest, message);
    if rule == ContentType::Required {
        let content_type =
            headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        {
            return Err(bad(
                "the body must be application/x-www-form-urlencoded (RFC 6749 §3.2)".into()
            ));
        }
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let form = Parameters::parse(text).map_err(bad)?;
    if let Some(duplicate) = form.duplicate() {
        return Err(bad(format!("the parameter {duplicate} appears more than once")));
    }
    Ok(form)
}
