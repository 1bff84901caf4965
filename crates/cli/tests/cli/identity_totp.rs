//! Issue 17, point 2: a password plus a one-time code (TOTP, RFC 6238). In Debian's Chromium a
//! person sets up an authenticator app on the account page (`tests/browser/totp.mjs` plays the
//! app, computing codes with Node's own HMAC from the key the page shows), signs out, signs in
//! again through a mail client's authorization request with the password and a code, approves,
//! and the token opens the IMAP door in front of Dovecot.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::support::{PASSWORD, Stack, USER};
use super::{DOVECOT, jwt_claims, oracles};

#[test]
fn a_person_sets_up_totp_in_chromium_and_signs_in_with_password_and_code_to_the_imap_door() {
    if !oracles(&["curl", "node", "chromium", "python3", DOVECOT[0]]) {
        return;
    }
    // The person types a password twice and three codes within seconds; with the stack's own
    // sign-in, more than the default five attempts a minute for one account and address.
    let mut stack = Stack::start_with("", "[sign_in]\nattempts_per_minute_per_account = 60\n");
    let base = format!("http://127.0.0.1:{}", stack.port);
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    let output = Command::new("node")
        .arg(browser_tests.join("totp.mjs"))
        .args([&base, USER, PASSWORD, "imap://127.0.0.1"])
        .arg(&screenshots)
        .current_dir(&browser_tests)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "the browser flow failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        stack.stop()
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();

    // The set-up: off before, a 20-byte key in an otpauth URI, ten recovery codes, on after, and
    // the key never shown again.
    assert!(seen["statusBefore"].as_str().unwrap().starts_with("Off"), "{seen}");
    let uri = seen["uri"].as_str().unwrap();
    assert!(uri.starts_with(&format!("otpauth://totp/Letterlock:{USER}?secret=")), "{uri}");
    assert!(uri.ends_with("&issuer=Letterlock"), "{uri}");
    assert_eq!(seen["keyBytes"], 20);
    assert_eq!(seen["recoveryCodes"], 10);
    assert!(seen["statusAfter"].as_str().unwrap().starts_with("On"), "{seen}");
    assert_eq!(seen["accountShowsKey"], false);

    // The sign-in stopped at the code step; the used code was refused (unless the machine was
    // so slow that its step had left the window, which the server tests cover exactly).
    assert_eq!(seen["codeStepUrl"], "/login/second-factor");
    let replayed = seen["replayed"].as_str().unwrap();
    assert!(replayed.contains("used already") || replayed.starts_with("skipped"), "{replayed}");
    assert_eq!(seen["iss"], base);

    // The token is the person's, and the IMAP door in front of Dovecot takes it.
    let token = seen["accessToken"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["sub"], USER);
    let user = format!("{USER}:");
    let output = letterlock_test_support::curl_within(
        20,
        &[&format!("imap://127.0.0.1:{}/", stack.imap), "-u", &user, "--oauth2-bearer", token],
    );
    let listing = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && listing.contains("INBOX"), "curl IMAP: {listing}");
    let log = stack.stop();
    assert!(log.contains("second factor"), "{log}");
}
