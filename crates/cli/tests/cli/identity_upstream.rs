//! Issue 17, point 1: "Sign in with ..." an upstream OpenID provider, end to end. `letterlock
//! serve` with `[[sign_in.upstream]]` pointing at the real `oidc-provider` from npm
//! (`tests/browser/upstream_op.mjs`); a person in Chromium (`tests/browser/upstream_person.mjs`)
//! opens a mail client's authorization URL, clicks "Sign in with Example Corp", signs in on the
//! provider's own pages, approves on Letterlock's consent page; the client's token then opens
//! the mailbox at the IMAP door (Python's imaplib, through the door to Dovecot). A person whose
//! provider account names an address in another domain gets a clear refusal page instead.

use std::path::Path;
use std::process::Command;

use letterlock_test_support::dovecot::DOVECOT;
use letterlock_test_support::free_port;
use letterlock_test_support::upstream_op::{OpAccount, UpstreamOp};
use serde_json::Value;

use super::oracles;
use super::support::Stack;

const CLIENT_ID: &str = "letterlock-mail";
const CLIENT_SECRET: &str = "upstream client secret 7d1e";

/// Runs `upstream_person.mjs` as `login` at the provider; what it saw.
fn person(port: u16, login: &str, password: &str) -> Value {
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let output = Command::new("node")
        .arg(browser_tests.join("upstream_person.mjs"))
        .args([&format!("http://127.0.0.1:{port}"), "Example Corp", login, password])
        .arg("imap://127.0.0.1")
        .current_dir(&browser_tests)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "the browser flow failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_person_signs_in_with_the_upstream_provider_and_reads_mail_at_the_imap_door() {
    if !oracles(&["chromium", "node", "python3", "curl"]) || !oracles(DOVECOT) {
        return;
    }
    let op_port = free_port();
    let sections = format!(
        "[[sign_in.upstream]]\nname = \"corp\"\nlabel = \"Example Corp\"\n\
         issuer = \"http://127.0.0.1:{op_port}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\ndomains = [\"example.com\"]\n"
    );
    let mut stack = Stack::start_with("", &sections);
    let accounts = [
        OpAccount {
            login: "gil",
            password: "gil at the provider",
            email: "gil@example.com",
            email_verified: true,
        },
        OpAccount {
            login: "mallory",
            password: "mallory at the provider",
            email: "mallory@example.org",
            email_verified: true,
        },
    ];
    let callback = format!("http://127.0.0.1:{}/sign-in/upstream/corp/callback", stack.port);
    let Some(_op) = UpstreamOp::start_on(op_port, CLIENT_ID, CLIENT_SECRET, &[callback], &accounts)
    else {
        return;
    };

    // Gil has no account in Letterlock's own table: the provider's word makes his row.
    let seen = person(stack.port, "gil", "gil at the provider");
    assert_eq!(seen["providerOrigin"], format!("http://127.0.0.1:{op_port}"), "{seen}");
    let consent = seen["consent"].as_str().unwrap_or_else(|| panic!("no consent page: {seen}"));
    assert!(consent.contains("Signed in as gil@example.com"), "{consent}");
    let token = seen["tokens"]["access_token"].as_str().unwrap_or_else(|| panic!("{seen}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/imap_login.py");
    let output = Command::new("python3")
        .arg(script)
        .args([&stack.imap.to_string(), "gil@example.com", token])
        .output()
        .unwrap();
    let verdict = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(verdict.starts_with("OK "), "imaplib with the upstream person's token: {verdict}");

    // Mallory's provider account names an address of another domain: refused, with a page
    // that says why, and no consent page.
    let seen = person(stack.port, "mallory", "mallory at the provider");
    let refused = seen["refused"].as_str().unwrap_or_else(|| panic!("not refused: {seen}"));
    assert!(
        refused.contains("Example Corp signed you in as mallory@example.org, but this server serves mail only for example.com."),
        "{refused}"
    );
    let log = stack.stop();
    assert!(log.contains("an upstream sign-in was refused"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
