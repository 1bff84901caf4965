//! The `gateway` crate's own session tests (issue 15): each door against a stub issuer (an axum
//! router serving metadata, the JWKS of a key the test holds, and the revocation feed) and a
//! scripted back end, both on port 0. The real Dovecot and Postfix stay the oracle in
//! `crates/cli/tests`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failed test"
)]

/// IMAP: greeting, STARTTLS, login and relay, refusals, the failure limit, revocation.
mod imap;
/// POP3: greeting and capabilities, login and relay, refusals.
mod pop3;
/// SMTP submission: greeting and EHLO, login and relay, refusals.
mod smtp;
/// The stub issuer, tokens, a gateway on port 0, line clients and scripted back ends.
mod support;
