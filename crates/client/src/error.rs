//! What can go wrong, sorted by what the caller should do about it.

use letterlock_protocol::ErrorCode;

/// A client error. Each variant says what is wrong in words fit for a person; the variant tells
/// a program what to do next (see `letterlock token`'s exit codes).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was not usable: a malformed address, URL or option.
    #[error("{0}")]
    Usage(String),
    /// No way to the issuer was found, or a service could not be reached.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// Something that answered is not to be trusted: an issuer that differs from where its
    /// metadata was fetched, a redirect, plain `http` to another machine, a service the issuer
    /// does not list. Nothing was sent.
    #[error("refused: {0}")]
    Refused(String),
    /// The network or the server failed (timeouts, 5xx, malformed answers).
    #[error("{0}")]
    Network(String),
    /// The authorization server said no, with an OAuth error (RFC 6749 §5.2). A code for which
    /// [`ErrorCode::is_temporary`] holds (`temporarily_unavailable`, `server_error`) means
    /// "try again later" rather than "no".
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|text| format!(" ({text})")).unwrap_or_default())]
    Server {
        /// The OAuth error code.
        error: ErrorCode,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// The person declined, or the authorization ended without a code.
    #[error("authorization did not complete: {0}")]
    Authorization(String),
    /// The grant is gone (revoked, expired, or never made): sign in again.
    #[error("{0}: sign in again with `letterlock login {1}`")]
    SignInAgain(String, String),
    /// Local storage failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl Error {
    pub(crate) fn network(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Network(format!("{what}: {error}"))
    }

    pub(crate) fn storage(what: impl std::fmt::Display, error: impl std::fmt::Display) -> Self {
        Self::Storage(format!("{what}: {error}"))
    }
}
