//! Issue 16, "Real programs in the tests": Debian's neomutt reads mail through the IMAP door,
//! with `letterlock token` as its `imap_oauth_refresh_command` and Dovecot behind the door,
//! driven in a pseudo-terminal (`neomutt_session.py`). The configuration is the one
//! docs/clients/neomutt.md gives, with the test's addresses.

use std::path::Path;
use std::process::Command;

use super::client::{Computer, text};
use super::support::{Stack, USER};
use super::{DOVECOT, free_port, oracles};

/// neomutt's configuration for the STARTTLS IMAP door on `port`: docs/clients/neomutt.md's,
/// with the door's self-signed certificate trusted, and nothing neomutt would ask about.
/// (neomutt sends OAUTHBEARER and XOAUTH2 only over TLS and only with SASL-IR.)
fn neomuttrc(port: u16, certificate: &Path) -> String {
    let letterlock = env!("CARGO_BIN_EXE_letterlock");
    format!(
        "set realname = \"Fay\"\n\
         set from = \"{USER}\"\n\
         set imap_user = \"{USER}\"\n\
         set folder = \"imap://127.0.0.1:{port}/\"\n\
         set spoolfile = \"+INBOX\"\n\
         set imap_authenticators = \"oauthbearer:xoauth2\"\n\
         set imap_oauth_refresh_command = \"{letterlock} token {USER} --service imap\"\n\
         set record = \"\"\n\
         set postponed = \"\"\n\
         set ssl_starttls = yes\n\
         set ssl_force_tls = yes\n\
         set certificate_file = \"{certificate}\"\n\
         set ssl_ca_certificates_file = \"{certificate}\"\n\
         set header_cache = \"\"\n\
         set message_cachedir = \"\"\n",
        certificate = certificate.display()
    )
}

#[test]
fn neomutt_reads_the_inbox_through_the_imap_door_with_letterlock_token() {
    if !oracles(&["curl", "python3", DOVECOT[0], DOVECOT[1], DOVECOT[2], DOVECOT[3], "neomutt"]) {
        return;
    }
    let mut stack = Stack::start();
    let computer = Computer::new();
    let imap = format!("imap://127.0.0.1:{}", stack.imap);
    let login = computer.run(&["login", USER, "--imap", &imap]);
    assert!(login.status.success(), "login: {}", text(&login.stderr));

    // A known message in the INBOX, delivered to Dovecot by LMTP (not through the door, so
    // that the only IMAP login in the door's log is neomutt's).
    let subject = format!("For neomutt {}", free_port());
    let delivered = Command::new("python3")
        .args([
            "-c",
            "import smtplib, sys\n\
             with smtplib.LMTP('127.0.0.1', int(sys.argv[1])) as lmtp:\n    \
             lmtp.sendmail(sys.argv[2], [sys.argv[2]], sys.argv[3])",
            &stack.dovecot.lmtp.to_string(),
            USER,
            &format!(
                "From: {USER}\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\nRead me in neomutt.\r\n"
            ),
        ])
        .output()
        .unwrap();
    assert!(delivered.status.success(), "LMTP delivery: {}", text(&delivered.stderr));

    // neomutt opens the INBOX through the door and shows the subject; `q` quits it.
    let home = computer.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let muttrc = home.join("neomuttrc");
    std::fs::write(&muttrc, neomuttrc(stack.imap_starttls, &stack.certificate)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/neomutt_session.py");
    let mut session = Command::new("python3");
    session.arg(script).arg(&muttrc).arg(&subject);
    computer.environment(&mut session);
    let debug_log = home.join("neomutt-debug.log");
    let output = session.env("HOME", &home).env("NEOMUTT_DEBUG_LOG", &debug_log).output().unwrap();
    assert!(output.status.success(), "neomutt_session.py: {}", text(&output.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let log = stack.stop();
    // neomutt numbers its debug log: `-l FILE` writes FILE0.
    let debug = std::fs::read_to_string(home.join("neomutt-debug.log0")).unwrap_or_default();
    let screen = &seen["screen"];
    assert_eq!(seen["seen"], true, "the subject on neomutt's index screen: {screen}\n{debug}");
    assert_eq!(seen["exit"], 0, "neomutt quit cleanly: {screen}");

    // neomutt tries OAUTHBEARER first, but Debian bookworm's neomutt (20220429) refuses to send
    // an OAUTHBEARER message of 2048 bytes or more ("OAUTH token is too big"), which a token
    // with its GS2 header and host and port is; it then logs in with XOAUTH2, which the door
    // logs with the user.
    assert!(debug.contains("Authenticating (OAUTHBEARER)"), "{debug}");
    let accepted: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("token accepted") && line.contains("imap"))
        .collect();
    assert!(
        accepted.iter().any(|line| line.contains("XOAUTH2") && line.contains(USER)),
        "an XOAUTH2 login by neomutt in the door's log: {log}"
    );
}
