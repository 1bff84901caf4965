//! What Letterlock's test suites share (issue 15): free loopback ports ([`free_port`]),
//! self-signed certificates ([`certificate`]), the curl helper ([`curl`]), a bounded wait
//! ([`wait_for`]), a throwaway PostgreSQL cluster ([`postgres`]), private Dovecot and Postfix
//! servers ([`dovecot`], [`postfix`]), a private OpenLDAP directory ([`ldap`]), and the rule for tests that need a program we did not
//! write ([`oracle`]).
//!
//! The oracle rule: a plain `cargo test` on a machine without Dovecot, Postfix, PostgreSQL,
//! Chromium or Radicale runs the pure tests, and each oracle test prints
//! `skipped: <program> not installed (scripts/test installs it)` and returns. `scripts/test` (and
//! so CI) sets `LETTERLOCK_ORACLES=required`, under which a missing program fails the test
//! instead, so that nothing is skipped silently where it matters.
//!
//! ```no_run
//! #[test]
//! fn dovecot_takes_our_tokens() {
//!     if !letterlock_test_support::oracle::available("dovecot") {
//!         return;
//!     }
//!     // ... start Dovecot and talk to it.
//! }
//! ```
//!
//! A dev-dependency only (`publish = false`); a panic here is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a panic is a failed test"
)]

pub mod dovecot;
pub mod ldap;
pub mod oracle;
pub mod postfix;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago (for programs that must be told their port; code
/// of ours binds port 0 instead).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A self-signed certificate and its key, in memory.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// A self-signed certificate for `names` (host names or IP addresses).
pub fn self_signed(names: &[&str]) -> SelfSigned {
    let certified = rcgen::generate_simple_self_signed(
        names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>(),
    )
    .expect("a self-signed certificate");
    SelfSigned {
        pem: certified.cert.pem(),
        der: certified.cert.der().to_vec(),
        key_pem: certified.signing_key.serialize_pem(),
        key_der: certified.signing_key.serialize_der(),
    }
}

/// A self-signed certificate and its key, written as PEM files.
#[derive(Debug)]
pub struct Certificate {
    /// The certificate's PEM file (`cert.pem`).
    pub certificate: PathBuf,
    /// The private key's PEM file (`key.pem`).
    pub private_key: PathBuf,
    /// The certificate's PEM text.
    pub pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// A self-signed certificate for `names` (host names or IP addresses), written to `dir` as
/// `cert.pem` and `key.pem`.
pub fn certificate(dir: &Path, names: &[&str]) -> Certificate {
    let made = self_signed(names);
    let (certificate, private_key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&certificate, &made.pem).expect("write cert.pem");
    std::fs::write(&private_key, &made.key_pem).expect("write key.pem");
    Certificate { certificate, private_key, pem: made.pem, der: made.der }
}

/// Runs curl (`-sS`, at most ten seconds) with `args`; the caller judges the output.
pub fn curl(args: &[&str]) -> Output {
    curl_within(10, args)
}

/// Runs curl (`-sS`, at most `seconds`) with `args`; the caller judges the output.
pub fn curl_within(seconds: u32, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", &seconds.to_string()])
        .args(args)
        .output()
        .expect("curl is installed")
}

/// Runs curl with `args`, requires success, and parses what it printed as JSON.
pub fn curl_json(args: &[&str]) -> serde_json::Value {
    let output = curl(args);
    assert!(output.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Waits (bounded) until the condition holds; a wait, not a timing assertion.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
