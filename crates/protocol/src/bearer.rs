//! Bearer token errors at a resource (RFC 6750 §3.1), the `status` of an RFC 7628 §3.2.2 SASL
//! failure, and the `WWW-Authenticate: Bearer` value that carries them over HTTP (RFC 6750 §3).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RFC 6750 §3.1 error code, as a resource (a front door) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerError {
    /// RFC 6750 §3.1: the request is malformed (HTTP 400).
    InvalidRequest,
    /// RFC 6750 §3.1: the token is expired, revoked, malformed or for another service (401).
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope this resource needs (403).
    InsufficientScope,
    /// A status this crate does not know, as another server sent it (RFC 7628 §3.2.2 allows
    /// any OAuth error code). Never sent by Letterlock.
    Other(String),
}

impl BearerError {
    /// The code on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::Other(text) => text,
        }
    }

    /// The code for a wire string.
    pub fn parse(text: &str) -> Self {
        match text {
            "invalid_request" => Self::InvalidRequest,
            "invalid_token" => Self::InvalidToken,
            "insufficient_scope" => Self::InsufficientScope,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The HTTP status RFC 6750 §3.1 gives the code: 400, 401 or 403 (401 for unknown codes).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::InsufficientScope => 403,
            Self::InvalidToken | Self::Other(_) => 401,
        }
    }

    /// The auth-params of a `WWW-Authenticate: Bearer` (or `DPoP`) challenge for this error
    /// (RFC 6750 §3): `error="…"`, then `scope="…"` if given, then `error_description="…"` if
    /// given. Quoted-string values may not hold `"` or `\\` (RFC 6750 §3), so those are dropped;
    /// control characters too, so nothing can end the header line.
    pub fn auth_params(&self, scope: Option<&str>, description: Option<&str>) -> String {
        let mut value = format!("error=\"{}\"", quoted(self.as_str()));
        if let Some(scope) = scope {
            value.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        if let Some(description) = description {
            value.push_str(&format!(", error_description=\"{}\"", quoted(description)));
        }
        value
    }
}

/// A value made fit for an RFC 7230 quoted-string as RFC 6750 §3 restricts it.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

impl fmt::Display for BearerError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl From<&str> for BearerError {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<String> for BearerError {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

impl PartialEq<str> for BearerError {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for BearerError {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for BearerError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BearerError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_carry_their_status() {
        for (code, status) in [
            (BearerError::InvalidRequest, 400),
            (BearerError::InvalidToken, 401),
            (BearerError::InsufficientScope, 403),
        ] {
            assert_eq!(BearerError::parse(code.as_str()), code);
            assert_eq!(code.http_status(), status);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<BearerError>(&json).unwrap(), code);
        }
        assert_eq!(BearerError::parse("401"), BearerError::Other("401".into()));
        assert_eq!(BearerError::from("insufficient_scope"), "insufficient_scope");
    }

    #[test]
    fn auth_params_quote_safely() {
        assert_eq!(
            BearerError::InsufficientScope.auth_params(Some("a b"), Some("needs \"a\"")),
            r#"error="insufficient_scope", scope="a b", error_description="needs a""#
        );
        assert_eq!(
            BearerError::InvalidToken.auth_params(None, Some("x\r\ny")),
            r#"error="invalid_token", error_description="xy""#
        );
    }
}
