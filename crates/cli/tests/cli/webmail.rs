//! Issue 16, "Real programs in the tests": a webmail. Debian's Roundcube 1.6 signs a person in
//! with Letterlock (OpenID Connect, as a configured confidential web client that authenticates
//! with `client_secret_post` and sends no PKCE), then reads their mail through the IMAP door and
//! sends mail through the SMTP door with XOAUTH2, Dovecot behind both. Chromium plays the person.
//! The configurations written here are the ones docs/clients/roundcube.md shows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{Stack, USER};
use super::{DOVECOT, free_port, oracles, wait_for};

/// Where Debian's roundcube-core puts the web root (its `index.php` includes the program).
const ROUNDCUBE_WEB_ROOT: &str = "/var/lib/roundcube/public_html";
/// Roundcube's SQLite schema, from roundcube-core.
const ROUNDCUBE_SCHEMA: &str = "/usr/share/roundcube/SQL/sqlite.initial.sql";
/// The client secret the test gives Roundcube and Letterlock.
const SECRET: &str = "roundcube-secret-0b8e41c2f7";

/// Roundcube under PHP's built-in web server, with its own configuration, database, logs and
/// temporary files in `dir`; killed when dropped.
struct Roundcube {
    child: Child,
    url: String,
    logs: PathBuf,
}

impl Roundcube {
    fn start(dir: &Path, port: u16, issuer: &str, imap: u16, smtp: u16) -> Self {
        let config = dir.join("config");
        let logs = dir.join("logs");
        let temp = dir.join("temp");
        for folder in [&config, &logs, &temp] {
            std::fs::create_dir_all(folder).unwrap();
        }
        // Roundcube's own defaults (and MIME types) beside the private config.inc.php.
        for file in ["defaults.inc.php", "mimetypes.php"] {
            std::fs::copy(Path::new("/etc/roundcube").join(file), config.join(file)).unwrap();
        }
        let database = dir.join("roundcube.db");
        let schema = std::fs::File::open(ROUNDCUBE_SCHEMA).unwrap();
        let created = Command::new("sqlite3").arg(&database).stdin(schema).output().unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        std::fs::write(
            config.join("config.inc.php"),
            config_inc_php(&database, &logs, &temp, issuer, imap, smtp),
        )
        .unwrap();
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t", ROUNDCUBE_WEB_ROOT])
            .env("ROUNDCUBE_CONFIG_DIR", &config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(logs.join("php-server.log")).unwrap())
            .spawn()
            .unwrap();
        wait_for("Roundcube under php -S", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, url: format!("http://127.0.0.1:{port}/"), logs }
    }

    /// Every file of Roundcube's logs folder, for a failure message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(&self.logs).into_iter().flatten().flatten() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            text += &format!("--- {} ---\n{content}\n", entry.path().display());
        }
        text
    }
}

impl Drop for Roundcube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Roundcube's `config.inc.php` for Letterlock (docs/clients/roundcube.md shows the same keys).
fn config_inc_php(
    database: &Path,
    logs: &Path,
    temp: &Path,
    issuer: &str,
    imap: u16,
    smtp: u16,
) -> String {
    format!(
        r#"<?php
$config = [];
$config['db_dsnw'] = 'sqlite:///{database}?mode=0600';
$config['log_dir'] = '{logs}/';
$config['temp_dir'] = '{temp}/';
$config['des_key'] = 'a-test-key-of-24-chars!!';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['create_default_folders'] = true;
$config['debug_level'] = 1;
$config['imap_debug'] = true;
$config['smtp_debug'] = true;
$config['log_logins'] = true;
// Letterlock's IMAP and SMTP doors (plain TCP on loopback in this test; imaps:// and
// ssl:// or tls:// in production).
$config['imap_host'] = '127.0.0.1:{imap}';
$config['smtp_host'] = '127.0.0.1:{smtp}';
$config['smtp_user'] = '%u';
$config['smtp_pass'] = '%p';
// Sign in with Letterlock (OpenID Connect); the token logs in to IMAP and SMTP (XOAUTH2).
$config['oauth_provider'] = 'generic';
$config['oauth_provider_name'] = 'Letterlock';
$config['oauth_client_id'] = 'roundcube';
$config['oauth_client_secret'] = '{SECRET}';
$config['oauth_auth_uri'] = '{issuer}/authorize';
$config['oauth_token_uri'] = '{issuer}/token';
$config['oauth_identity_uri'] = '{issuer}/userinfo';
$config['oauth_scope'] = 'openid email urn:ietf:params:oauth:scope:mail offline_access';
$config['oauth_identity_fields'] = ['email'];
$config['oauth_verify_peer'] = true;
"#,
        database = database.display(),
        logs = logs.display(),
        temp = temp.display(),
    )
}

/// Letterlock's `[[web_clients]]` entry for Roundcube (docs/clients/roundcube.md shows the same).
fn web_client_toml(roundcube_port: u16, secret_file: &Path) -> String {
    format!(
        "[[web_clients]]\nclient_id = \"roundcube\"\nname = \"Webmail (Roundcube)\"\n\
         redirect_uris = [\"http://127.0.0.1:{roundcube_port}/index.php/login/oauth\"]\n\
         secret_file = \"{}\"\n\
         token_endpoint_auth_methods = [\"client_secret_post\"]\n\
         # Roundcube 1.6 sends no PKCE (see docs/SECURITY.md).\n\
         require_pkce = false\n",
        secret_file.display()
    )
}

/// Runs `command` for at most `seconds`, then kills it; returns its status (None if killed)
/// and its standard output.
fn run_within(mut command: Command, seconds: u64) -> (Option<std::process::ExitStatus>, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, reader.join().unwrap_or_default())
}

/// Roundcube from Debian signs fay in through Letterlock's pages in Chromium, lists the message
/// put into her Dovecot mailbox beforehand (read through the IMAP door with XOAUTH2), and sends
/// a message through the SMTP door that then arrives in the same mailbox.
#[test]
fn roundcube_signs_in_with_letterlock_and_reads_and_sends_mail_through_the_doors() {
    if !oracles(&[
        "curl",
        "python3",
        "node",
        "chromium",
        "php",
        "sqlite3",
        "/usr/share/roundcube/index.php",
        DOVECOT[0],
        DOVECOT[1],
        DOVECOT[2],
        DOVECOT[3],
    ]) {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let roundcube_port = free_port();
    let secret_file = dir.path().join("roundcube-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut stack = Stack::start_with("", &web_client_toml(roundcube_port, &secret_file));
    let issuer = format!("http://127.0.0.1:{}", stack.port);

    // A known message in fay's mailbox, appended through the IMAP door by curl.
    let known = "Welcome to the webmail test";
    let message = dir.path().join("known.eml");
    std::fs::write(
        &message,
        format!("From: bob@example.com\r\nTo: {USER}\r\nSubject: {known}\r\n\r\nHello, fay.\r\n"),
    )
    .unwrap();
    let token = stack.token("imap://127.0.0.1");
    let appended = letterlock_test_support::curl_within(
        20,
        &[
            &format!("imap://127.0.0.1:{}/INBOX", stack.imap),
            "-u",
            &format!("{USER}:"),
            "--oauth2-bearer",
            &token,
            "-T",
            message.to_str().unwrap(),
        ],
    );
    assert!(appended.status.success(), "{}", String::from_utf8_lossy(&appended.stderr));

    let roundcube = Roundcube::start(
        &dir.path().join("roundcube"),
        roundcube_port,
        &issuer,
        stack.imap,
        stack.smtp,
    );
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots/roundcube");
    let sent = "Sent from Roundcube through Letterlock";
    let mut node = Command::new("node");
    node.arg(browser_tests.join("webmail.mjs"))
        .args([&roundcube.url, USER, super::support::PASSWORD, known])
        .arg(&screenshots)
        .arg(sent)
        .current_dir(&browser_tests);
    let (status, output) = run_within(node, 180);
    let seen: Value = serde_json::from_str(output.trim()).unwrap_or(Value::Null);
    if !status.is_some_and(|status| status.success()) {
        let log = stack.stop();
        panic!(
            "the Roundcube flow failed ({status:?}): {output}\nscreenshot: {}\n\
             Roundcube's logs:\n{}\nLetterlock's log (server and doors):\n{log}\n{}",
            screenshots.join("failure.png").display(),
            roundcube.logs(),
            stack.dovecot.log(),
        );
    }
    assert!(seen["oauthButton"].as_str().unwrap().contains("Letterlock"), "{seen}");
    // Roundcube 1.6's request: no PKCE, nothing but what its code writes.
    let authorize = seen["authorizeUrl"].as_str().unwrap();
    assert!(authorize.contains("client_id=roundcube"), "{authorize}");
    let consent = seen["consentText"].as_str().unwrap();
    for words in
        ["Webmail (Roundcube)", "Verified by your mail provider", "Read and send your mail"]
    {
        assert!(consent.contains(words), "the consent page lacks {words:?}:\n{consent}");
    }
    assert!(seen["messageList"].as_str().unwrap().contains(known), "{seen}");
    assert!(seen["messageListAfterSending"].as_str().unwrap().contains(sent), "{seen}");
    assert!(stack.sink.received().contains(&format!("Subject: {sent}")), "through the SMTP door");
    // Roundcube logged in as the address the ID token (or UserInfo) named.
    let logins = std::fs::read_to_string(roundcube.logs.join("userlogins.log")).unwrap_or_default();
    assert!(logins.contains(&format!("Successful login for {USER}")), "{logins}");
    let _ = stack.stop();
    eprintln!("the Roundcube test took {:?}", started.elapsed());
}
