//! Issue 17, point 1: `letterlock serve` with an LDAP directory as its only identity source
//! (OpenLDAP's slapd from `letterlock-test-support`, over ldaps with its CA), a person who exists
//! only in the directory signs in through Debian's Chromium (`tests/browser/person.mjs`), and
//! the token their mail program gets logs in at the IMAP door, Dovecot behind it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use letterlock_test_support::ldap::{BASE, FILTER, Ldap, SERVICE_DN};
use serde_json::{Value, json};

use super::support::{PASSWORD, Stack, USER};
use super::{DOVECOT, curl, oracles};

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// In the directory only: never added with `letterlock user add`.
const GUS: &str = "gus@example.com";
const GUS_PASSWORD: &str = "gus's directory password";

/// The mail program's loopback redirect listener (RFC 8252 §7.3): answers one request with a
/// page and hands back its query string.
fn redirect_listener() -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line).unwrap();
        let page = "<!doctype html><title>Done</title><h1>You can close this window.</h1>";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
        .unwrap();
        let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        target.split_once('?').map(|(_, query)| query.to_owned()).unwrap_or_default()
    });
    (port, handle)
}

/// Chromium plays the person at `authorize`: signs in with `address` and `password`, approves.
fn person_in_chromium(authorize: &str, address: &str, password: &str) -> Value {
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let output = Command::new("node")
        .arg(browser_tests.join("person.mjs"))
        .args([authorize, address, password])
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
fn a_directory_person_signs_in_through_chromium_and_the_token_opens_the_imap_door() {
    let mut programs = vec!["curl", "python3", "node", "chromium"];
    programs.extend(DOVECOT);
    programs.extend(letterlock_test_support::ldap::PROGRAMS);
    if !oracles(&programs) {
        return;
    }
    let Some(ldap) = Ldap::start() else { return };
    // The stack's own test user signs in through the directory too: local accounts are off.
    ldap.add_user("fay", USER, PASSWORD);
    ldap.add_user("gus", GUS, GUS_PASSWORD);
    let sections = format!(
        "[sign_in]\n[[sign_in.sources]]\nkind = \"ldap\"\nname = \"directory\"\n\
         url = \"{}\"\nca_file = \"{}\"\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_file = \"{}\"\nbase = \"{BASE}\"\nfilter = \"{FILTER}\"\n",
        ldap.ldaps_url(),
        ldap.ca_file().display(),
        ldap.service_password_file().display(),
    );
    let mut stack = Stack::start_with("", &sections);
    let base = format!("http://127.0.0.1:{}", stack.port);

    let registered = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &json!({"redirect_uris": ["http://127.0.0.1/callback"], "client_name": "Directory Mail"})
            .to_string(),
        &format!("{base}/register"),
    ]);
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let (listener_port, redirected) = redirect_listener();
    let redirect_uri = format!("http://127.0.0.1:{listener_port}/callback");
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "urn:ietf:params:oauth:scope:mail offline_access")
        .append_pair("state", "directory-state")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", "imap://127.0.0.1");
    let seen = person_in_chromium(authorize.as_str(), GUS, GUS_PASSWORD);
    assert!(
        seen["consentText"].as_str().is_some_and(|text| text.contains("Directory Mail")),
        "{seen}"
    );
    let query = redirected.join().unwrap();
    let parameters: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(parameters.get("state").map(String::as_str), Some("directory-state"), "{query}");
    let code = parameters.get("code").unwrap_or_else(|| panic!("no code: {query}"));

    let tokens = curl(&[
        &format!("{base}/token"),
        "-d",
        "grant_type=authorization_code",
        "--data-urlencode",
        &format!("code={code}"),
        "--data-urlencode",
        &format!("code_verifier={VERIFIER}"),
        "--data-urlencode",
        &format!("client_id={client_id}"),
        "--data-urlencode",
        &format!("redirect_uri={redirect_uri}"),
    ]);
    let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}"));
    assert_eq!(super::jwt_claims(access)["sub"], GUS, "the token names the directory's address");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/imap_login.py");
    let imap = stack.imap.to_string();
    let login = |user: &str, token: &str| {
        let output =
            Command::new("python3").arg(&script).args([&imap, user, token]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let answer = login(GUS, access);
    assert!(answer.starts_with("OK"), "gus's token at the IMAP door: {answer}");
    // The door logs in as the token's subject, not as a name the client picks.
    let other = login(USER, access);
    assert!(other.starts_with("NO"), "gus's token as fay: {other}");

    // Local accounts are off: the directory answers for every sign-in, and the stack's own
    // Authlib flow (fay, in the directory) went through it too.
    let fay_token = stack.token("imap://127.0.0.1");
    assert!(login(USER, &fay_token).starts_with("OK"));
    stack.stop();
}
