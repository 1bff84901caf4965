//! An upstream OpenID provider for the tests of "Sign in with ..." (issue 17): panva's
//! `oidc-provider` from npm (OpenID Certified), run by `crates/cli/tests/browser/upstream_op.mjs`
//! under Node on a free loopback port, with one confidential client and the given accounts. Its
//! login and consent pages are plain forms (`login`, `password`, then "Allow"), for Chromium or
//! an HTTP client to fill in.
//!
//! Oracle rule: without `node` or the npm package (`npm ci --prefix crates/cli/tests/browser`,
//! which `scripts/test` runs), [`UpstreamOp::start`] returns `None` after saying so, or fails
//! under `LETTERLOCK_ORACLES=required`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

/// One account at the provider.
#[derive(Debug, Clone)]
pub struct OpAccount {
    /// The user name typed on its login page (and the ID token's `sub`).
    pub login: &'static str,
    /// The password.
    pub password: &'static str,
    /// The `email` claim.
    pub email: &'static str,
    /// The `email_verified` claim.
    pub email_verified: bool,
}

/// A running provider; killed when dropped.
pub struct UpstreamOp {
    child: Child,
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    _dir: tempfile::TempDir,
}

/// The folder of the browser tests' Node project (its `node_modules` holds oidc-provider).
pub fn browser_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../cli/tests/browser"))
}

impl UpstreamOp {
    /// Starts the provider on a free port with a client (`client_secret_basic`) allowed to
    /// redirect to `redirect_uris`; `None` when Node or the package is missing (the oracle rule).
    pub fn start(
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
        accounts: &[OpAccount],
    ) -> Option<Self> {
        Self::start_on(0, client_id, client_secret, redirect_uris, accounts)
    }

    /// [`UpstreamOp::start`] on `port` (0: any free one), for a configuration that must name
    /// the issuer before the provider runs.
    pub fn start_on(
        port: u16,
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
        accounts: &[OpAccount],
    ) -> Option<Self> {
        let package = browser_dir().join("node_modules/oidc-provider/package.json");
        if !crate::oracle::available("node")
            || !crate::oracle::available(&package.display().to_string())
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = json!({
            "port": port,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": redirect_uris,
            "accounts": accounts.iter().map(|account| json!({
                "login": account.login,
                "password": account.password,
                "email": account.email,
                "email_verified": account.email_verified,
            })).collect::<Vec<_>>(),
        });
        let path = dir.path().join("op.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(browser_dir().join("upstream_op.mjs"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("ready ") {
                    let _ = sender.send(issuer.to_owned());
                }
            }
        });
        let Ok(issuer) = receiver.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("oidc-provider did not start within 30 s");
        };
        Some(Self { child, issuer, _dir: dir })
    }
}

impl Drop for UpstreamOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
