//! Form and query parameters (`application/x-www-form-urlencoded`, the encoding of every OAuth
//! request: RFC 6749 §3.1, §3.2 and Appendix B), with repeats kept in order for `resource`
//! (RFC 8707 §2) and the RFC 6749 §3.1 rule that no other parameter may appear twice.

use std::collections::HashSet;
use std::fmt;

/// The longest query or form accepted, in bytes. An authorization request naming every service
/// is well under 2 KiB; 16 KiB leaves room for a long `state` (see `MAX_STATE_BYTES`).
pub const MAX_BYTES: usize = 16 * 1024;

/// The most parameters a query or form may have. The largest request a client needs (an
/// authorization request naming every service as a `resource`) has about 15; the bound keeps
/// every look-up short, whoever sends the request.
pub const MAX_PARAMETERS: usize = 100;

/// The one parameter that may repeat (RFC 8707 §2: several `resource` values).
pub const REPEATABLE: &str = "resource";

/// Why a query or form was refused before any parameter was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Longer than [`MAX_BYTES`].
    #[error("The request is too long.")]
    TooLong,
    /// More than [`MAX_PARAMETERS`] parameters.
    #[error("The request has too many parameters (at most {MAX_PARAMETERS}).")]
    TooMany,
    /// A form body declared with another content type (RFC 6749 §3.2 requires
    /// `application/x-www-form-urlencoded`).
    #[error("the body must be application/x-www-form-urlencoded (RFC 6749 §3.2)")]
    ContentType,
    /// A form body that is not UTF-8 (RFC 6749 Appendix B).
    #[error("the body is not UTF-8")]
    NotUtf8,
}

/// Query or form parameters, keeping repeats (for `resource`) and noticing duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a query string or a form body (without the `?`), within [`MAX_BYTES`] and
    /// [`MAX_PARAMETERS`].
    pub fn parse(text: &str) -> Result<Self, ParamsError> {
        if text.len() > MAX_BYTES {
            return Err(ParamsError::TooLong);
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .take(MAX_PARAMETERS + 1)
            .collect();
        if pairs.len() > MAX_PARAMETERS {
            return Err(ParamsError::TooMany);
        }
        Ok(Self(pairs))
    }

    /// Parses a form body after checking what RFC 6749 §3.2 and Appendix B require of it: the
    /// content type `application/x-www-form-urlencoded` (parameters such as `charset` allowed,
    /// compared without regard to case) and UTF-8.
    pub fn from_form_body(content_type: Option<&str>, body: &[u8]) -> Result<Self, ParamsError> {
        let media_type = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ParamsError::ContentType);
        }
        let text = std::str::from_utf8(body).map_err(|_| ParamsError::NotUtf8)?;
        Self::parse(text)
    }

    /// Parameters from name-value pairs, as a client builds a request.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self(pairs.into_iter().map(|(name, value)| (name.into(), value.into())).collect())
    }

    /// The value of a parameter; the first if it repeats; `None` if absent or empty (RFC 6749
    /// §3.1: "parameters sent without a value MUST be treated as if they were omitted").
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

    /// A parameter other than `resource` that appears twice (RFC 6749 §3.1: "request and
    /// response parameters MUST NOT be included more than once").
    pub fn duplicate(&self) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(key, _)| key.as_str())
            .find(|key| *key != REPEATABLE && !seen.insert(*key))
    }

    /// Adds a parameter.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Adds a parameter if there is a value.
    pub fn push_some(&mut self, name: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.push(name, value);
        }
    }

    /// The name-value pairs, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parameters encoded as a query string or form body (without `?`).
    pub fn encode(&self) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.0 {
            serializer.append_pair(name, value);
        }
        serializer.finish()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_kept_and_duplicates_noticed() {
        let params = Params::parse("a=1&resource=x&resource=y&b=&c=%20").unwrap();
        assert_eq!(params.single("a"), Some("1"));
        assert_eq!(params.single("b"), None, "empty is absent (RFC 6749 §3.1)");
        assert_eq!(params.single("c"), Some(" "));
        assert_eq!(params.all("resource").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(params.duplicate(), None);
        assert_eq!(Params::parse("a=1&b=2&a=3").unwrap().duplicate(), Some("a"));
    }

    #[test]
    fn limits() {
        assert_eq!(Params::parse(&"a".repeat(MAX_BYTES + 1)), Err(ParamsError::TooLong));
        let many = vec!["a=1"; MAX_PARAMETERS + 1].join("&");
        assert_eq!(Params::parse(&many), Err(ParamsError::TooMany));
        let enough = vec!["a=1"; MAX_PARAMETERS].join("&");
        assert!(Params::parse(&enough).is_ok());
    }

    #[test]
    fn form_bodies_need_the_form_type_and_utf8() {
        let form = "application/x-www-form-urlencoded; charset=UTF-8";
        assert!(Params::from_form_body(Some(form), b"a=1").is_ok());
        assert!(Params::from_form_body(Some("Application/X-WWW-Form-Urlencoded"), b"").is_ok());
        assert_eq!(
            Params::from_form_body(Some("application/json"), b"{}"),
            Err(ParamsError::ContentType)
        );
        assert_eq!(Params::from_form_body(None, b"a=1"), Err(ParamsError::ContentType));
        assert_eq!(Params::from_form_body(Some(form), b"a=\xff"), Err(ParamsError::NotUtf8));
    }

    #[test]
    fn encoding_round_trips() {
        let params = Params::from_pairs([("a b", "c&d"), ("resource", "x"), ("resource", "y")]);
        assert_eq!(Params::parse(&params.encode()).unwrap(), params);
    }
}
