//! The operator's tools, as functions over the store and the configuration: what the
//! `letterlock keys`, `user` and `dovecot-config` commands do, minus the printing. The binary
//! parses arguments and prints what these return; the rules (which sealing key seals, that
//! retiring the last one makes a fresh one, what Dovecot is told) live here, with tests.
//!
//! - [`keys`]: list, rotate and retire signing and sealing keys;
//! - [`users`]: add, change the password of, list and disable accounts;
//! - [`dovecot`]: Dovecot's oauth2 settings for one resource, and the key files it reads.

pub mod dovecot;
pub mod keys;
pub mod users;

use crate::ServerError;
use crate::accounts::AccountError;

/// Why an operator's command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The resource is not one of `[[resources]]`.
    #[error("{0} is not in [[resources]]")]
    UnknownResource(String),
    /// Local validation by Dovecot 2.3 needs plain `JWT` tokens for the resource.
    #[error("Dovecot 2.3 refuses typ at+jwt: set token_typ = \"JWT\" for {0} in [[resources]]")]
    AtJwtResource(String),
    /// Introspection needs a `[[resource_servers]]` entry serving the resource.
    #[error("no [[resource_servers]] entry serves {0}")]
    NoResourceServer(String),
    /// The issuer is not usable.
    #[error(transparent)]
    Issuer(#[from] letterlock_protocol::issuer::IssuerError),
    /// The issuer's endpoint has no scheme (an [`Issuer`](letterlock_protocol::Issuer) always
    /// has one; kept as an error rather than a panic).
    #[error("the issuer is not a URL")]
    IssuerNotUrl,
    /// A signing algorithm other than those Letterlock signs with.
    #[error("unknown algorithm {0}; use ES256 or EdDSA")]
    UnknownAlgorithm(String),
    /// `keys retire` named a sealing key that does not exist or is retired already.
    #[error("no sealing key {0} that is not retired already")]
    NoSuchSealingKey(String),
    /// An account operation failed (unknown address, bad password, storage).
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Storage or key handling failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}
