//! Issue 17, point 2: a passkey in the real Chromium. `letterlock serve` runs as
//! `http://localhost:<port>` (a WebAuthn RP ID must be a domain, and browsers treat `localhost`
//! as a secure context), with an IMAP door in front of Debian's Dovecot. Chromium's virtual
//! authenticator (CDP `WebAuthn`, through playwright-core: `tests/browser/passkey.mjs`) plays
//! the person's device: they sign in with their password, add a passkey on the account page,
//! sign out, then sign in to a mail program's authorization request with the passkey alone,
//! approve, and the program's token opens their mailbox at the IMAP door.

use std::path::Path;
use std::process::Command;

use letterlock_test_support::dovecot::Dovecot;
use serde_json::Value;

use super::support::{MASTER, MASTER_PASSWORD, PASSWORD, USER};
use super::{DOVECOT, Server, free_port, oracles, user_command, wait_for};

#[test]
fn a_person_adds_a_passkey_and_signs_in_with_it_alone_through_to_the_imap_door() {
    if !oracles(&["curl", "node", "chromium", DOVECOT[0], DOVECOT[1], DOVECOT[2], DOVECOT[3]]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Dovecot's submission relay is never used here: nothing is sent.
    let dovecot = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, free_port(), None);
    let (port, imap) = (free_port(), free_port());
    let base = format!("http://localhost:{port}");
    let config = dir.path().join("letterlock.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n\
             [[resources]]\nuri = \"imap://127.0.0.1\"\n\
             [[imap]]\nlisten = \"127.0.0.1:{imap}\"\nresource = \"imap://127.0.0.1\"\n\
             [imap.backend]\naddress = \"unix:{}\"\nlogin = \"master\"\n\
             master_user = \"{MASTER}\"\nmaster_password = \"{MASTER_PASSWORD}\"\n",
            dir.path().join("data").display(),
            dovecot.imap_socket().display()
        ),
    )
    .unwrap();
    let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    wait_for("the IMAP door", || std::net::TcpStream::connect(("127.0.0.1", imap)).is_ok());

    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots/passkey");
    let output = Command::new("node")
        .arg(browser_tests.join("passkey.mjs"))
        .args([&base, USER, PASSWORD, "imap://127.0.0.1"])
        .arg(&screenshots)
        .current_dir(&browser_tests)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let seen: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    if !output.status.success() {
        let (_, log) = server.terminate();
        panic!(
            "the passkey flow failed: {text}\n{}\nscreenshot: {}\nLetterlock's log:\n{log}",
            String::from_utf8_lossy(&output.stderr),
            screenshots.join("failure.png").display()
        );
    }

    // The account page listed the new passkey; the authenticator holds a discoverable
    // credential for `localhost` whose user handle is the opaque user id, not the address.
    assert!(seen["accountPage"].as_str().unwrap().contains("Test laptop"), "{seen}");
    let credentials = seen["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{seen}");
    assert_eq!(credentials[0]["resident"], true, "{seen}");
    assert_eq!(credentials[0]["rpId"], "localhost", "{seen}");
    assert_ne!(credentials[0]["userHandleBytes"], USER.len(), "{seen}");
    // The sign-in page offered the passkey, and nothing was typed: the consent page names fay.
    assert!(seen["signInPage"].as_str().unwrap().contains("Sign in with a passkey"), "{seen}");
    assert!(seen["consentText"].as_str().unwrap().contains(USER), "{seen}");
    assert_eq!(seen["redirect"]["iss"], base.as_str(), "{seen}");
    assert_eq!(seen["redirect"]["state"], "passkey-state", "{seen}");
    // The virtual authenticator's counter grew with the sign-in (the server checks it).
    assert!(seen["signCountAfter"][0].as_u64().unwrap() > 0, "{seen}");

    // The token opens fay's mailbox at the IMAP door, in front of Dovecot.
    let token = seen["accessToken"].as_str().unwrap_or_else(|| panic!("{seen}"));
    let listed = letterlock_test_support::curl_within(
        20,
        &[
            &format!("imap://127.0.0.1:{imap}/"),
            "-u",
            &format!("{USER}:"),
            "--oauth2-bearer",
            token,
        ],
    );
    let (status, log) = server.terminate();
    assert!(
        listed.status.success(),
        "{}\n{}\n{log}",
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("INBOX"), "{log}");
    assert!(status.success(), "{log}");
    assert!(log.contains("source=\"passkey\"") || log.contains("source=passkey"), "{log}");
}
