//! The `letterlock` binary end to end: a vendor makes a key and a statement, an operator trusts
//! it and runs the server, curl discovers and registers, keys rotate under a running server,
//! and SIGTERM shuts it down cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failed test"
)]

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod client;
mod dav;
mod gateway;
mod identity_dovecot;
mod identity_ldap;
mod identity_passkey;
mod identity_totp;
mod identity_upstream;
mod neomutt;
mod oidc;
mod support;
mod thunderbird;
mod webmail;

const BINARY: &str = env!("CARGO_BIN_EXE_letterlock");

fn letterlock(args: &[&str]) -> Output {
    Command::new(BINARY).args(args).env("LETTERLOCK_LOG", "warn").output().expect("run letterlock")
}

use letterlock_test_support::dovecot::{DOVECOT, Dovecot};
use letterlock_test_support::{curl_json as curl, free_port, wait_for};

/// The oracle rule (`letterlock-test-support`): false, after a "skipped" line, when one of the
/// programs a test talks to is not installed (under `LETTERLOCK_ORACLES=required`, a failure).
fn oracles(programs: &[&str]) -> bool {
    letterlock_test_support::oracle::all_available(programs)
}

/// A configuration for a server on a free loopback port, with its data in `dir`, plus `extra`
/// TOML. Returns the configuration file and the port.
fn loopback_config(dir: &Path, extra: &str) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let config = dir.join("letterlock.toml");
    let head = format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n",
        dir.join("data").display()
    );
    std::fs::write(&config, head + extra).unwrap();
    (config, port)
}

/// Runs one of the Python scripts beside these tests (`tests/cli/<script>`) with `args` and
/// extra environment, and returns the JSON it prints; a failure shows its output.
fn python_json(script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli").join(script);
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{script} {}:\n{}\n{}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs the Authlib flow (`authlib_flow.py`) against the server on `port` and returns what it saw.
fn authlib_flow(port: u16, address: &str, password: &str) -> Value {
    python_json("authlib_flow.py", &[&format!("http://127.0.0.1:{port}"), address, password], &[])
}

struct Server(Child);

impl Server {
    fn start(config: &Path, port: u16) -> Self {
        let child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(config)
            .env("LETTERLOCK_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start letterlock serve");
        wait_for("the server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self(child)
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status =
            Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut log = String::new();
        self.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
        (status, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[test]
fn vendor_statement_registration_rotation_and_shutdown() {
    if !oracles(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("vendor-key.pem");

    // The vendor makes a key pair; the public JWK Set goes to stdout.
    let keygen = letterlock(&["vendor", "keygen", "--out", key.to_str().unwrap()]);
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let jwks: Value = serde_json::from_slice(&keygen.stdout).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(jwks["keys"][0].get("d").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = letterlock(&["vendor", "keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success(), "keygen must not overwrite a key");

    // The vendor signs a statement.
    let sign = letterlock(&[
        "vendor",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--issuer",
        "https://vendor.example",
        "--software-id",
        "example-mail",
        "--client-name",
        "Example Mail",
        "--software-version",
        "1.0",
        "--redirect-uri",
        "http://127.0.0.1/cb",
    ]);
    assert!(sign.status.success(), "{}", String::from_utf8_lossy(&sign.stderr));
    let statement = String::from_utf8(sign.stdout).unwrap().trim().to_owned();
    assert_eq!(statement.split('.').count(), 3);

    // The operator trusts the vendor and starts the server.
    let jwks_file = dir.path().join("vendor.jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        &format!(
            "[keys]\nreload_interval_seconds = 1\n\n\
             [[vendors]]\nissuer = \"https://vendor.example\"\nname = \"Example Vendor\"\njwks_file = \"{}\"\n\n\
             [[resources]]\nuri = \"imaps://mail.example.com\"\n",
            jwks_file.display()
        ),
    );
    let data = dir.path().join("data");
    let server = Server::start(&config, port);
    let base = format!("http://127.0.0.1:{port}");

    let metadata = curl(&[&format!("{base}/.well-known/oauth-authorization-server")]);
    assert_eq!(metadata["issuer"], base.as_str());
    assert_eq!(metadata["protected_resources"][0], "imaps://mail.example.com");

    let request = serde_json::json!({
        "redirect_uris": ["http://127.0.0.1/cb"],
        "client_name": "Self-asserted",
        "software_statement": statement,
    });
    let registered = curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        &request.to_string(),
        &format!("{base}/register"),
    ]);
    assert_eq!(registered["client_name"], "Example Mail", "the trusted statement's values win");
    assert_eq!(registered["software_statement"], statement.as_str());

    // State lives in the data folder, readable by the owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(data.join("letterlock.db")).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A rotation made with the CLI reaches the running server's JWKS.
    let list = letterlock(&["keys", "list", "--config", config.to_str().unwrap()]);
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(listing.contains("active"), "{listing}");
    let rotate = letterlock(&["keys", "rotate", "--config", config.to_str().unwrap()]);
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    wait_for("the new key in the JWKS", || {
        curl(&[&format!("{base}/jwks.json")])["keys"].as_array().unwrap().len() == 2
    });
    let listing = String::from_utf8(
        letterlock(&["keys", "list", "--config", config.to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert!(listing.contains("pending"), "{listing}");

    // SIGTERM: a clean exit.
    let (status, log) = server.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("plain http"), "the loopback http issuer is warned about:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn configuration_errors_are_clear_and_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "isuer = \"https://auth.example.com\"\n").unwrap();
    let output = letterlock(&["serve", "--config", config.to_str().unwrap()]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("unknown field") && message.contains("isuer"), "{message}");

    std::fs::write(&config, "issuer = \"http://auth.example.com\"\n").unwrap();
    let data = dir.path().join("data");
    let output = letterlock(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("https"), "{message}");
}

/// The first log lines of `letterlock serve` up to "letterlock is serving", with `format` as
/// `LETTERLOCK_LOG_FORMAT` (if any), stderr a pipe as under systemd.
fn serve_log_lines(format: Option<&str>) -> Vec<String> {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = loopback_config(dir.path(), "");
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("LETTERLOCK_LOG", "info")
        .env_remove("LETTERLOCK_LOG_FORMAT")
        .stderr(std::process::Stdio::piped());
    if let Some(format) = format {
        command.env("LETTERLOCK_LOG_FORMAT", format);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let serving = line.contains("letterlock is serving");
        lines.push(line);
        if serving || lines.len() > 50 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

/// Issue 18 point 5 (sysexits): a configuration that does not parse, or that the server's
/// checks refuse, exits with `EX_CONFIG` (78), which systemd and scripts tell apart from a
/// failure at run time; other failures exit with 1.
#[test]
fn configuration_errors_exit_with_ex_config() {
    let dir = tempfile::tempdir().unwrap();
    let exit = |args: &[&str]| {
        let output = Command::new(BINARY)
            .args(args)
            .env("LETTERLOCK_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let unparsable = dir.path().join("unparsable.toml");
    std::fs::write(&unparsable, "isser = \"https://auth.example.com\"\n").unwrap();
    let (code, stderr) = exit(&["user", "list", "--config", unparsable.to_str().unwrap()]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("isser"), "{stderr}");

    // Parses, but a sign-in source would outlast the request it answers.
    let (refused, _) = loopback_config(
        dir.path(),
        "[sign_in]\n[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\ntimeout_seconds = 30\n",
    );
    let (code, stderr) = exit(&["serve", "--config", refused.to_str().unwrap()]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("request_timeout_seconds"), "{stderr}");

    // A run-time failure is not a configuration error.
    let (code, stderr) =
        exit(&["user", "show", "nobody@example.com", "--config", refused.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no account for nobody@example.com"), "{stderr}");
}

#[test]
fn logs_are_json_on_request_and_without_colour_codes_when_not_on_a_terminal() {
    let json = serve_log_lines(Some("json"));
    assert!(json.iter().any(|line| line.contains("letterlock is serving")), "{json:?}");
    for line in &json {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(entry["level"].is_string() && entry["fields"]["message"].is_string(), "{line}");
    }
    let text = serve_log_lines(None);
    assert!(text.iter().any(|line| line.contains("INFO")), "{text:?}");
    assert!(text.iter().all(|line| !line.contains('\u{1b}')), "colour codes in a pipe: {text:?}");
}

fn user_command(config: &Path, args: &[&str], password: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(BINARY)
        .arg("user")
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .env("LETTERLOCK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&letterlock_protocol::base64url::decode(payload).unwrap()).unwrap()
}

/// Authlib (Python), an OAuth client we did not write, completes discovery, registration and
/// the code flow with PKCE against the real server, then gets a per-service token by refresh.
#[test]
fn an_independent_oauth_client_completes_the_flow() {
    if !oracles(&["python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        "[[resources]]\nuri = \"imaps://mail.example.com\"\n[[resources]]\nuri = \"smtps://mail.example.com\"\n",
    );

    // Accounts through the CLI.
    let added = user_command(
        &config,
        &["add", "Bob@Example.com", "--password-stdin"],
        "a long enough password",
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let again = user_command(
        &config,
        &["add", "bob@example.com", "--password-stdin"],
        "a long enough password",
    );
    assert!(!again.status.success(), "the address is taken");
    let short = user_command(&config, &["add", "carol@example.com", "--password-stdin"], "short");
    assert!(!short.status.success(), "too short a password");
    let list = letterlock(&["user", "list", "--config", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("bob@example.com  active"));

    let server = Server::start(&config, port);
    let seen = authlib_flow(port, "bob@example.com", "a long enough password");
    // Issue 16: the code exchange names no `resource`, so its token is for both services
    // (it was the first one alone); the refresh with `resource` is for that one.
    assert_eq!(
        jwt_claims(seen["access_token"].as_str().unwrap())["aud"],
        json!(["imaps://mail.example.com", "smtps://mail.example.com"])
    );
    assert_eq!(
        jwt_claims(seen["smtp_access_token"].as_str().unwrap())["aud"],
        "smtps://mail.example.com"
    );
    assert_eq!(jwt_claims(seen["access_token"].as_str().unwrap())["sub"], "bob@example.com");
    assert_eq!(seen["rotated"], true);

    // Disabling the account revokes its devices.
    let disabled =
        letterlock(&["user", "disable", "bob@example.com", "--config", config.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&disabled.stdout).contains("1 devices revoked"),
        "{}",
        String::from_utf8_lossy(&disabled.stdout)
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

/// A person in Debian's Chromium: sign-in, the one consent page, the loopback redirect with a
/// code, then the devices page and a revoke. Before that, pages on another loopback port and on
/// `localhost` try to sign the browser in as mallory (login CSRF). Screenshots are kept in
/// `target/browser-screenshots/`.
#[test]
fn a_person_in_chromium_signs_in_consents_and_revokes_the_device() {
    if !oracles(&["curl", "node", "chromium"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        "[[resources]]\nuri = \"imaps://mail.example.com\"\n[[resources]]\nuri = \"https://dav.example.com/\"\n",
    );
    let added = user_command(
        &config,
        &["add", "dana@example.com", "--password-stdin"],
        "dana's long password",
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let attacker = user_command(
        &config,
        &["add", "mallory@example.com", "--password-stdin"],
        "mallory's own password",
    );
    assert!(attacker.status.success(), "{}", String::from_utf8_lossy(&attacker.stderr));
    let server = Server::start(&config, port);

    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    let output = Command::new("node")
        .arg(browser_tests.join("flow.mjs"))
        .args([&format!("http://127.0.0.1:{port}"), "dana@example.com", "dana's long password"])
        .arg(&screenshots)
        .args(["mallory@example.com", "mallory's own password"])
        .current_dir(&browser_tests)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "the browser flow failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Issue 14, review finding 9: an attacker's page on another port, or on another site, posts
    // the sign-in form with the attacker's account; the browser is not signed in.
    for attack in ["otherPort", "otherSite"] {
        let result = &seen["loginCsrf"][attack];
        assert_eq!(result["status"], 403, "{attack}: {result}");
        let account = result["account"].as_str().unwrap();
        assert!(
            account.contains("Sign in") && !account.contains("mallory"),
            "{attack}: the browser was signed in by another site:\n{account}"
        );
    }
    // The browser's own sign-in is same-origin (Chromium sends `Origin: null` with it under the
    // pages' `Referrer-Policy: no-referrer`, which the server lets through).
    assert_eq!(seen["ownSignIn"]["fetchSite"], "same-origin", "{}", seen["ownSignIn"]);
    assert_eq!(seen["signInTitle"], "Sign in");
    assert_eq!(seen["addressPrefilled"], "dana@example.com", "login_hint fills the address");
    let consent = seen["consentText"].as_str().unwrap();
    for words in [
        "Browser Test Mail",
        "Read and send your mail",
        "Your contacts",
        "Your calendars",
        "Stay signed in on this device",
        "not verified",
        "127.0.0.1",
    ] {
        assert!(consent.contains(words), "the consent page lacks {words:?}:\n{consent}");
    }
    assert_eq!(seen["redirect"]["iss"], format!("http://127.0.0.1:{port}"));
    assert_eq!(seen["redirect"]["state"], seen["state"]);
    assert!(seen["redirect"]["code"].as_str().is_some_and(|code| code.len() > 30));
    assert_eq!(seen["tokenType"], "Bearer");
    assert!(seen["devicesBefore"].as_str().unwrap().contains("Browser laptop"));
    assert!(seen["devicesAfter"].as_str().unwrap().contains("Revoked"));
    assert!(
        !seen["framedContent"].as_str().unwrap().contains("Sign in"),
        "the page rendered inside a frame"
    );
    for shot in ["1-sign-in.png", "2-consent.png", "3-devices.png", "4-revoked.png"] {
        assert!(
            std::fs::metadata(screenshots.join(shot)).is_ok_and(|file| file.len() > 1000),
            "{shot}"
        );
    }

    // The revoked device's refresh token no longer works.
    let refresh = curl(&[
        "-d",
        "grant_type=refresh_token",
        "--data-urlencode",
        &format!("refresh_token={}", seen["refreshToken"].as_str().unwrap()),
        "--data-urlencode",
        &format!("client_id={}", seen["clientId"].as_str().unwrap()),
        &format!("http://127.0.0.1:{port}/token"),
    ]);
    assert_eq!(refresh["error"], "invalid_grant");
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

/// Logs in to Dovecot's IMAP port with `imap_login.py` (beside these tests).
trait DovecotLogin {
    /// The script's one-line verdict.
    fn login(&self, user: &str, token: &str) -> String;
}

impl DovecotLogin for Dovecot {
    fn login(&self, user: &str, token: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/imap_login.py");
        let output = Command::new("python3")
            .arg(script)
            .args([&self.port.to_string(), user, token])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// Issue 4, point 9: Debian's Dovecot validates Letterlock's tokens itself with the
/// configuration `letterlock dovecot-config` prints and the keys it writes.
#[test]
fn dovecot_validates_tokens_itself_with_the_printed_configuration() {
    if !oracles(&["python3", DOVECOT[0]]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        "[[resources]]\nuri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"\n\
             [[resources]]\nuri = \"smtps://mail.example.com\"\n\
             [[resource_servers]]\nclient_id = \"dovecot\"\nsecret = \"dovecot's secret: 0123/4567\"\n\
             resources = [\"imaps://mail.example.com\"]\n",
    );
    let added = user_command(
        &config,
        &["add", "erin@example.com", "--password-stdin"],
        "erin's long password",
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    let tokens = authlib_flow(port, "erin@example.com", "erin's long password");
    // Issue 16: the code exchange names no `resource`: its token is for both services, and
    // `JWT` since one of them is configured so. Dovecot 2.3.19's local validation does not
    // reliably accept an `aud` array (seen: the same token accepted, then refused), so Dovecot
    // is given a token asked for IMAP by `resource` (docs/DOVECOT.md).
    let every = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_claims(every)["aud"],
        json!(["imaps://mail.example.com", "smtps://mail.example.com"])
    );
    let header = every.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&letterlock_protocol::base64url::decode(header).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT", "one service of the token refuses at+jwt");
    let imap_token = &support::Tokens::from_flow(port, &tokens).token("imaps://mail.example.com");
    let smtp_token = tokens["smtp_access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(smtp_token)["aud"], "smtps://mail.example.com");

    // The configuration and the keys.
    let dovecot_dir = tempfile::tempdir().unwrap();
    let keys = dovecot_dir.path().join("keys");
    let dovecot_config = |resource: &str, extra: &[&str]| {
        let mut args = vec!["dovecot-config", "--config", config.to_str().unwrap()];
        args.extend(["--resource", resource, "--keys-dir", keys.to_str().unwrap()]);
        letterlock(&[&args, extra].concat())
    };
    // Issue 16 point 3: `--resource` in another spelling prints the configured identifier,
    // which is what Dovecot finds in `aud`.
    let printed = dovecot_config("IMAPS://Mail.Example.com:993", &[]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let conf = String::from_utf8(printed.stdout).unwrap();
    assert!(conf.contains("client_id = imaps://mail.example.com\n"), "{conf}");
    let refused = dovecot_config("smtps://mail.example.com", &[]);
    assert!(!refused.status.success(), "a resource with at+jwt tokens is refused");
    // The same settings in Dovecot 2.4's syntax (Debian 12 has no 2.4 to run them against).
    let printed = dovecot_config("imaps://mail.example.com", &["--dovecot", "2.4"]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let conf_2_4 = String::from_utf8(printed.stdout).unwrap();
    for line in [
        "oauth2_introspection_mode = local",
        "oauth2_client_id = imaps://mail.example.com",
        "oauth2_username_attribute = sub",
        &format!("      prefix = {}/", keys.display()),
    ] {
        assert!(conf_2_4.lines().any(|printed| printed == line), "{line} in {conf_2_4}");
    }
    assert!(!conf_2_4.contains("passdb {"), "2.4 needs no passdb: {conf_2_4}");
    let oauth2_conf = dovecot_dir.path().join("dovecot-oauth2.conf.ext");
    std::fs::write(&oauth2_conf, &conf).unwrap();
    Command::new("chmod").arg("-R").arg("a+rX").arg(dovecot_dir.path()).status().unwrap();

    let dovecot = Dovecot::start(&oauth2_conf);
    assert_eq!(dovecot.login("erin@example.com", imap_token), "OK 0 messages");
    let refused = dovecot.login("erin@example.com", smtp_token);
    assert!(refused.starts_with("NO"), "an SMTP token at IMAP: {refused}");
    let garbage = dovecot.login("erin@example.com", "not.a.token");
    assert!(garbage.starts_with("NO"), "{garbage}");
    assert!(
        garbage.contains("openid-configuration"),
        "Dovecot's failure points to the issuer: {garbage}"
    );

    // The introspection variant: Dovecot asks the server about each token, so it sees revocations.
    let printed = letterlock(&[
        "dovecot-config",
        "--config",
        config.to_str().unwrap(),
        "--resource",
        "imaps://mail.example.com",
        "--introspection",
    ]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let introspection_conf = dovecot_dir.path().join("dovecot-oauth2-introspection.conf.ext");
    std::fs::write(&introspection_conf, printed.stdout).unwrap();
    Command::new("chmod").arg("a+r").arg(&introspection_conf).status().unwrap();
    let asking = Dovecot::start(&introspection_conf);
    assert_eq!(asking.login("erin@example.com", imap_token), "OK 0 messages");
    assert!(
        asking.login("erin@example.com", smtp_token).starts_with("NO"),
        "introspection checks the audience too"
    );

    // Erin revokes every device. The asking Dovecot refuses the token at once; the one that
    // validates locally accepts it until it expires (docs/DOVECOT.md says so).
    let revoked = user_command(
        &config,
        &["passwd", "erin@example.com", "--password-stdin", "--revoke-devices"],
        "erin's new long password",
    );
    assert!(
        String::from_utf8_lossy(&revoked.stdout).contains("1 devices revoked"),
        "{}",
        String::from_utf8_lossy(&revoked.stdout)
    );
    assert!(
        asking.login("erin@example.com", imap_token).starts_with("NO"),
        "a revoked device is refused"
    );
    assert_eq!(
        dovecot.login("erin@example.com", imap_token),
        "OK 0 messages",
        "local validation cannot see revocations"
    );
    drop(asking);
    drop(dovecot);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

/// Runs `letterlock dovecot-config` for `resource` with its keys in `dir`/keys, writes the
/// output to `dir`/dovecot-oauth2.conf.ext for Dovecot's processes to read, and returns the
/// file and its text.
fn printed_dovecot_config(
    config: &Path,
    resource: &str,
    dir: &Path,
) -> (std::path::PathBuf, String) {
    let keys = dir.join("keys");
    let printed = letterlock(&[
        "dovecot-config",
        "--config",
        config.to_str().unwrap(),
        "--resource",
        resource,
        "--keys-dir",
        keys.to_str().unwrap(),
    ]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let text = String::from_utf8(printed.stdout).unwrap();
    let file = dir.join("dovecot-oauth2.conf.ext");
    std::fs::write(&file, &text).unwrap();
    Command::new("chmod").arg("-R").arg("a+rX").arg(dir).status().unwrap();
    (file, text)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A JWT's `exp`, read without checking the signature.
fn token_expiry(token: &str) -> u64 {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    claims["exp"].as_u64().unwrap()
}

/// Why the printed configuration says to keep Dovecot's auth cache off: with it, Debian's
/// Dovecot 2.3 accepts a token after it has expired; without it, Dovecot refuses it.
#[test]
fn dovecot_with_its_auth_cache_accepts_expired_tokens() {
    if !oracles(&["python3", DOVECOT[0]]) {
        return;
    }
    const LIFETIME: u64 = 6;
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        &format!(
            "[lifetimes]\naccess_token_seconds = {LIFETIME}\n\
             [[resources]]\nuri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"\n\
             [[resources]]\nuri = \"smtps://mail.example.com\"\n"
        ),
    );
    let added =
        user_command(&config, &["add", "gil@example.com", "--password-stdin"], "gil's password 88");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    let dovecot_dir = tempfile::tempdir().unwrap();
    let (oauth2_conf, conf) =
        printed_dovecot_config(&config, "imaps://mail.example.com", dovecot_dir.path());
    assert!(conf.contains("# Keep auth_cache_size = 0"), "{conf}");
    let caching = Dovecot::with_oauth2(&oauth2_conf, "auth_cache_size = 1M");
    let plain = Dovecot::start(&oauth2_conf);

    let tokens = authlib_flow(port, "gil@example.com", "gil's password 88");
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(caching.login("gil@example.com", token), "OK 0 messages");
    assert_eq!(plain.login("gil@example.com", token), "OK 0 messages");
    let expires = token_expiry(token);
    assert!(unix_now() < expires, "the first logins must happen while the token is valid");
    while unix_now() <= expires + 1 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let refused = plain.login("gil@example.com", token);
    assert!(refused.starts_with("NO"), "without the cache: {refused}");
    assert_eq!(
        caching.login("gil@example.com", token),
        "OK 0 messages",
        "with the cache, the expired token still opens the mailbox"
    );
    drop((caching, plain));
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
