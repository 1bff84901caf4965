//! OAuth error bodies: the `{"error": ..., "error_description": ..., "error_uri": ...}` JSON of
//! RFC 6749 §5.2, RFC 7591 §3.2.2 and RFC 7592, and the same three members as query parameters
//! of an authorization error response (RFC 6749 §4.1.2.1). Both directions: the server writes
//! them, the client reads them back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The registered OAuth error codes, in the order their RFCs list them. A code this crate does
/// not know, read from another server, is kept as [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749 §5.2: the request is malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed, or the client id cannot be opened.
    InvalidClient,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or another's.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the scope is invalid or wider than granted.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the server does not support this `response_type`.
    UnsupportedResponseType,
    /// RFC 8707 §2: the resource is not one this server issues tokens for, or not granted.
    InvalidTarget,
    /// RFC 8628 §3.5: the person has not decided yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; wait five more seconds.
    SlowDown,
    /// RFC 6749 §4.1.2.1, RFC 8628 §3.5: the person said no.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 9449 §5: the DPoP proof is invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server's nonce (sent in `DPoP-Nonce`).
    UseDpopNonce,
    /// RFC 6750 §3.1: the access token (here: the registration access token) is not valid.
    InvalidToken,
    /// RFC 7591 §3.2.2: a redirect URI is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: a metadata value is not acceptable.
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2: the software statement is invalid.
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2: the software statement is valid but not approved here.
    UnapprovedSoftwareStatement,
    /// Too many requests from one address (sent with HTTP 429 and `Retry-After`).
    TemporarilyUnavailable,
    /// Something failed inside the server; the description carries only an incident id.
    ServerError,
    /// RFC 6750 §3.1: the token does not carry the scope the resource needs.
    InsufficientScope,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the person must sign in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the person must consent.
    ConsentRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the person must interact.
    InteractionRequired,
    /// A code this crate does not know, as another server sent it. Never sent by Letterlock.
    Other(String),
}

impl ErrorCode {
    /// Every code this crate knows, in the order above (for parsing and tests).
    pub const KNOWN: [Self; 25] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::UnsupportedResponseType,
        Self::InvalidTarget,
        Self::AuthorizationPending,
        Self::SlowDown,
        Self::AccessDenied,
        Self::ExpiredToken,
        Self::InvalidDpopProof,
        Self::UseDpopNonce,
        Self::InvalidToken,
        Self::InvalidRedirectUri,
        Self::InvalidClientMetadata,
        Self::InvalidSoftwareStatement,
        Self::UnapprovedSoftwareStatement,
        Self::TemporarilyUnavailable,
        Self::ServerError,
        Self::InsufficientScope,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InteractionRequired,
    ];

    /// The code for a wire string: a known code, or [`ErrorCode::Other`].
    pub fn parse(text: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|code| code.as_str() == text)
            .unwrap_or_else(|| Self::Other(text.to_owned()))
    }

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidTarget => "invalid_target",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::Other(text) => text,
        }
    }

    /// True for the codes that mean "try again later" rather than "no": RFC 6749 §4.1.2.1's
    /// `temporarily_unavailable` and a `server_error`.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::TemporarilyUnavailable | Self::ServerError)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

/// An OAuth error body (RFC 6749 §5.2). The HTTP status is chosen where the error is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error code.
    pub error: ErrorCode,
    /// A sentence for the developer of the client; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page about the error (RFC 6749 §5.2); Letterlock sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorBody {
    /// An error with a description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self { error, error_description: Some(description.into()), error_uri: None }
    }

    /// Reads an error body from JSON bytes, as a token, registration or revocation endpoint
    /// answers (RFC 6749 §5.2). `None` if the bytes are not such a body.
    pub fn from_json(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The body as JSON.
    pub fn to_json(&self) -> String {
        // Serialising strings into a JSON object cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"error\":\"server_error\"}"))
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.error.as_str())?;
        if let Some(description) = &self.error_description {
            write!(formatter, " ({description})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_parses_back_and_unknown_ones_are_kept() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        assert_eq!(ErrorCode::parse("invalid_grant"), ErrorCode::InvalidGrant);
        assert_eq!(
            ErrorCode::parse("unsupported_response_type"),
            ErrorCode::UnsupportedResponseType
        );
        let other = ErrorCode::parse("something_new");
        assert_eq!(other, ErrorCode::Other("something_new".into()));
        assert_eq!(other.as_str(), "something_new");
        assert!(ErrorCode::TemporarilyUnavailable.is_temporary());
        assert!(!ErrorCode::InvalidGrant.is_temporary());
    }

    #[test]
    fn error_bodies_round_trip() {
        let body = ErrorBody::new(ErrorCode::InvalidGrant, "the code has expired");
        let json = body.to_json();
        assert_eq!(json, r#"{"error":"invalid_grant","error_description":"the code has expired"}"#);
        assert_eq!(ErrorBody::from_json(json.as_bytes()), Some(body));
        let other = ErrorBody::from_json(
            br#"{"error":"x_custom","error_uri":"https://example.com/e","extra":1}"#,
        )
        .unwrap();
        assert_eq!(other.error, ErrorCode::Other("x_custom".into()));
        assert_eq!(other.error_uri.as_deref(), Some("https://example.com/e"));
        assert_eq!(ErrorBody::from_json(br#"{"error_description":"no code"}"#), None);
        assert_eq!(ErrorBody::from_json(b"<html>"), None);
        assert_eq!(other.to_string(), "x_custom");
    }
}
