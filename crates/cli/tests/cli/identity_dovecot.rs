//! Issue 17, point 1: `letterlock serve` signing people in with Dovecot's auth service alone
//! (local accounts off). A person in Chromium signs in with the password Dovecot has, approves,
//! and the mail program's token opens their mailbox at the IMAP door (Python's imaplib). Once
//! with Dovecot's passwd-file passdb, once with its LDAP passdb in front of a real OpenLDAP.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::support::{MASTER, MASTER_PASSWORD};
use super::{
    DOVECOT, Dovecot, Server, free_port, loopback_config, oracles, user_command, wait_for,
};
use letterlock_test_support::ldap::{self, Ldap};

/// The resource of the IMAP door.
const IMAP: &str = "imap://127.0.0.1";

/// `letterlock serve` whose only password source is the Dovecot at `auth_socket`, with an IMAP
/// door in front of `backend` (a Dovecot taking logins by a master user), and a local account
/// (which must not sign in: local accounts are off). Returns the server, its port and the
/// door's port.
fn serve(dir: &Path, auth_socket: &Path, backend: &Dovecot) -> (Server, u16, u16) {
    let door = free_port();
    let (config, port) = loopback_config(
        dir,
        &format!(
            // Dovecot's penalty for an address with recent failures (up to 15 s) comes on top
            // of its failure delay: give it room, and the whole request more.
            "[[resources]]\nuri = \"{IMAP}\"\n[limits]\nrequest_timeout_seconds = 40\n\
             [sign_in]\n[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\n\
             socket = {auth_socket:?}\ntimeout_seconds = 30\n\
             [[imap]]\nlisten = \"127.0.0.1:{door}\"\nresource = \"{IMAP}\"\n\
             [imap.backend]\naddress = \"unix:{}\"\nlogin = \"master\"\n\
             master_user = \"{MASTER}\"\nmaster_password = \"{MASTER_PASSWORD}\"\n",
            backend.imap_socket().display()
        ),
    );
    let added = user_command(
        &config,
        &["add", "local@example.com", "--password-stdin"],
        "a local password",
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    wait_for("the IMAP door to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", door)).is_ok()
    });
    (server, port, door)
}

/// Chromium signs in as `name` with `password` (`tests/browser/sign_in.mjs`).
fn sign_in(port: u16, name: &str, password: &str) -> Value {
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let output = Command::new("node")
        .arg(browser_tests.join("sign_in.mjs"))
        .args([&format!("http://127.0.0.1:{port}"), name, password, IMAP])
        .current_dir(&browser_tests)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "the browser sign-in failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// imaplib's verdict logging in at the door as `user` with `token` (`imap_login.py`).
fn imap_login(door: u16, user: &str, token: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/imap_login.py");
    let output = Command::new("python3")
        .arg(script)
        .args([&door.to_string(), user, token])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Signs `address` in with `password` in Chromium and checks the token at the door; then that
/// a wrong password and the local account are refused on the page.
fn signs_in_and_reaches_the_mailbox(port: u16, door: u16, address: &str, password: &str) {
    let seen = sign_in(port, address, password);
    assert_eq!(seen["signInTitle"], "Sign in", "{seen}");
    assert!(
        seen["consentText"].as_str().is_some_and(|text| text.contains("Sign-in Test Mail")),
        "{seen}"
    );
    let token = seen["tokens"]["access_token"].as_str().unwrap_or_else(|| panic!("{seen}"));
    let verdict = imap_login(door, address, token);
    assert!(verdict.starts_with("OK "), "imaplib with the token Dovecot's password got: {verdict}");
    // The token is the person's, not anyone's: it does not open another mailbox.
    let other = imap_login(door, "someone.else@example.com", token);
    assert!(other.starts_with("NO"), "{other}");

    let wrong = sign_in(port, address, "not the password");
    assert_eq!(wrong["signInRefused"]["status"], 401, "{wrong}");
    // Local accounts are off: the local table's right password is refused.
    let local = sign_in(port, "local@example.com", "a local password");
    assert_eq!(local["signInRefused"]["status"], 401, "{local}");
}

#[test]
fn chromium_signs_in_with_dovecots_passwd_file_and_the_token_opens_the_mailbox() {
    if !oracles(&["python3", "node", "chromium", DOVECOT[0], "doveadm"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auth = Dovecot::with_passwd_file(&[("gil@example.com", "gil's mail password")], "");
    let backend = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, free_port(), None);
    let (server, port, door) = serve(dir.path(), &auth.auth_client_socket(), &backend);
    signs_in_and_reaches_the_mailbox(port, door, "gil@example.com", "gil's mail password");
    assert!(auth.log().contains("service=letterlock"), "{}", auth.log());
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn chromium_signs_in_with_dovecots_ldap_passdb_and_the_token_opens_the_mailbox() {
    if !oracles(&["python3", "node", "chromium", DOVECOT[0]])
        || !oracles(ldap::PROGRAMS)
        || !oracles(&["/usr/lib/dovecot/modules/auth/libauthdb_ldap.so"])
    {
        return;
    }
    let Some(directory) = Ldap::start() else { return };
    // Dovecot finds the entry with the service account, then binds as it with the typed
    // password (auth_bind); `mail` names the user.
    let auth = Dovecot::with_ldap(&format!(
        "uris = {}\ndn = {}\ndnpass = {}\nauth_bind = yes\nbase = {}\n\
         pass_filter = (&(objectClass=inetOrgPerson)(mail=%u)(!(employeeType=disabled)))\n\
         pass_attrs = mail=user\n",
        directory.ldap_url(),
        ldap::SERVICE_DN,
        ldap::SERVICE_PASSWORD,
        ldap::PEOPLE_BASE,
    ));
    let backend = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, free_port(), None);
    let dir = tempfile::tempdir().unwrap();
    let (server, port, door) = serve(dir.path(), &auth.auth_client_socket(), &backend);
    signs_in_and_reaches_the_mailbox(port, door, ldap::ALICE.mail, ldap::ALICE.password);
    // A person the directory disables cannot sign in through Dovecot either.
    let disabled = sign_in(port, ldap::DISABLED.mail, ldap::DISABLED.password);
    assert_eq!(disabled["signInRefused"]["status"], 401, "{disabled}");
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
