//! Issue 6: the client commands (`letterlock login`, `token`, `accounts`, `logout`) against
//! Letterlock's server and front doors with Dovecot behind them. The browser is `browser.py` as
//! `$BROWSER` (it signs in and approves, as a person would); the mail programs are Debian's msmtp
//! (sending through the SMTP door with `passwordeval "letterlock token …"`) and curl (reading the
//! message back through the IMAP door).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::support::{PASSWORD, Stack, USER};
use super::{DOVECOT, free_port, jwt_claims, oracles};

/// Starts GNOME Keyring with the login password on the session bus, waits until it owns the
/// Secret Service's name (else the bus would start a second, locked daemon for the first
/// caller), then runs the command.
const KEYRING_SESSION: &str = r#"
printf secret | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1
tries=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets | grep -q true; do
    tries=$((tries + 1)); [ "$tries" -lt 200 ] || exit 1; sleep 0.05
done
exec "$@"
"#;

/// A person's computer: the client's data folder and the test browser.
pub(super) struct Computer {
    pub(super) dir: tempfile::TempDir,
}

impl Computer {
    pub(super) fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn client_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    fn browser_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("browser.log")).unwrap_or_default()
    }

    /// How many records of a kind (`registrations`, `refresh-tokens`, …) are files.
    fn files(&self, kind: &str) -> usize {
        std::fs::read_dir(self.client_dir().join(kind)).map_or(0, |entries| entries.count())
    }

    /// The environment of a program run on this computer.
    pub(super) fn environment(&self, command: &mut Command) {
        let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/browser.py");
        command
            .env("LETTERLOCK_CLIENT_DIR", self.client_dir())
            .env("BROWSER", format!("python3 {}", browser.display()))
            .env("LETTERLOCK_TEST_USER", USER)
            .env("LETTERLOCK_TEST_PASSWORD", PASSWORD)
            .env("LETTERLOCK_TEST_BROWSER_LOG", self.dir.path().join("browser.log"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            // Never the keyring of whoever runs the tests: files, unless `desktop` says.
            .env("LETTERLOCK_SECRETS", "file")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("LETTERLOCK_LOG", "warn");
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_letterlock"));
        command.args(args);
        self.environment(&mut command);
        for (name, value) in env {
            command.env(name, value);
        }
        command
    }

    /// `program args` on this computer's desktop: a D-Bus session bus of its own (as a
    /// graphical login has), with GNOME Keyring unlocked by the login password. The keyring's
    /// files are under the computer's home, so they outlive the session, as on a real desktop.
    fn desktop(&self, program: &str, args: &[&str]) -> Output {
        let letterlock = env!("CARGO_BIN_EXE_letterlock");
        let program = if program == "letterlock" { letterlock } else { program };
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut desktop = Command::new("dbus-run-session");
        desktop.args(["--", "sh", "-c", KEYRING_SESSION, "sh", program]).args(args);
        self.environment(&mut desktop);
        desktop
            .env("LETTERLOCK_SECRETS", "auto")
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .expect("dbus-run-session and gnome-keyring are installed by scripts/test")
    }

    pub(super) fn run(&self, args: &[&str]) -> Output {
        self.command(args, &[]).output().unwrap()
    }

    pub(super) fn token(&self, service: &str) -> String {
        let output = self.run(&["token", USER, "--service", service]);
        assert!(output.status.success(), "token {service}: {}", text(&output.stderr));
        let token = String::from_utf8(output.stdout).unwrap();
        assert_eq!(token.lines().count(), 1, "stdout is the token and nothing else: {token}");
        token.trim().to_owned()
    }
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The whole journey from the client's side: discovery by the front doors' SASL challenge and
/// the DAV door's RFC 9728 metadata, registration, one consent, per-service tokens, msmtp and
/// curl with those tokens, two programs refreshing at once, and logout.
#[test]
fn the_client_signs_in_and_mail_programs_use_its_tokens() {
    if !oracles(&["curl", "python3", DOVECOT[0], DOVECOT[1], DOVECOT[2], DOVECOT[3], "msmtp"]) {
        return;
    }
    let dav = free_port();
    let dav_resource = format!("http://127.0.0.1:{dav}");
    let mut stack = Stack::start_with(
        "",
        &format!(
            "[[resources]]\nuri = \"{dav_resource}\"\n\
             [[dav]]\nlisten = \"127.0.0.1:{dav}\"\nresource = \"{dav_resource}\"\n\
             backend = \"http://127.0.0.1:9\"\n"
        ),
    );
    let computer = Computer::new();
    let (imap, smtp) =
        (format!("imap://127.0.0.1:{}", stack.imap), format!("smtp://127.0.0.1:{}", stack.smtp));
    let carddav = format!("{dav_resource}/fay/contacts/");

    // login: the doors say where to sign in; the browser signs in and approves once.
    let output =
        computer.run(&["login", USER, "--imap", &imap, "--smtp", &smtp, "--carddav", &carddav]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "login: {stderr}");
    assert!(output.stdout.is_empty(), "login prints nothing on stdout");
    assert!(stderr.contains(&format!("found by the SASL challenge of {imap}")), "{stderr}");
    assert!(stderr.contains("Registering this installation"), "{stderr}");
    let log = computer.browser_log();
    let opened: Vec<&str> = log.lines().filter_map(|line| line.strip_prefix("open ")).collect();
    assert_eq!(opened.len(), 1, "one consent for every service: {log}");
    assert!(log.contains("consent unverified"), "no software statement: {log}");
    let page = url::Url::parse(opened[0]).unwrap();
    let query: Vec<(String, String)> = page.query_pairs().into_owned().collect();
    let values = |name: &str| -> Vec<&str> {
        query.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    };
    assert_eq!(values("code_challenge_method"), ["S256"]);
    assert_eq!(values("login_hint"), [USER]);
    assert_eq!(values("resource"), ["imap://127.0.0.1", "smtp://127.0.0.1", dav_resource.as_str()]);
    assert_eq!(
        values("scope"),
        ["urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:contacts offline_access"]
    );
    assert!(values("redirect_uri")[0].starts_with("http://127.0.0.1:"));
    assert_eq!(values("state").len(), 1);

    // The records are the user's alone.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(computer.client_dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    // accounts: one line per issuer.
    let listed = computer.run(&["accounts"]);
    let listing = text(&listed.stdout);
    let issuer = format!("http://127.0.0.1:{}", stack.port);
    assert!(listing.starts_with(&format!("{USER}\t{issuer}\timap={imap}")), "{listing}");

    // token: one per service, audience by service, cached until shortly before expiry.
    let imap_token = computer.token("imap");
    assert_eq!(computer.token("imap"), imap_token, "cached");
    let claims = jwt_claims(&imap_token);
    assert_eq!(claims["aud"], "imap://127.0.0.1");
    assert_eq!(claims["sub"], USER);
    assert_eq!(claims["scope"], "urn:ietf:params:oauth:scope:mail");
    assert_eq!(jwt_claims(&computer.token("smtp"))["aud"], "smtp://127.0.0.1");
    let contacts = jwt_claims(&computer.token("carddav"));
    assert_eq!(
        (contacts["aud"].as_str(), contacts["scope"].as_str()),
        (Some(dav_resource.as_str()), Some("urn:ietf:params:oauth:scope:contacts"))
    );
    let missing = computer.run(&["token", USER, "--service", "caldav"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(missing.stdout.is_empty());

    // msmtp sends through the SMTP door with a token from `letterlock token`.
    let msmtprc = computer.dir.path().join("msmtprc");
    std::fs::write(
        &msmtprc,
        format!(
            "account fay\nhost 127.0.0.1\nport {}\ntls off\nauth oauthbearer\nuser {USER}\nfrom {USER}\n\
             passwordeval \"{} token {USER} --service smtp\"\naccount default : fay\n",
            stack.smtp,
            env!("CARGO_BIN_EXE_letterlock")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&msmtprc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let subject = format!("Sent by msmtp {}", free_port());
    let mut sending = Command::new("msmtp")
        .args(["-C", msmtprc.to_str().unwrap(), USER])
        .env("LETTERLOCK_CLIENT_DIR", computer.client_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("msmtp is installed (scripts/test installs it)");
    std::io::Write::write_all(
        sending.stdin.as_mut().unwrap(),
        format!(
            "From: {USER}\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\nHello through the doors.\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let sent = sending.wait_with_output().unwrap();
    assert!(sent.status.success(), "msmtp: {}{}", text(&sent.stdout), text(&sent.stderr));
    super::wait_for("the message to be relayed", || stack.sink.received().contains(&subject));

    // curl reads it back through the IMAP door.
    let token = computer.token("imap");
    let found = retry(|| {
        let search = curl(
            &[&format!("{imap}/INBOX"), "-X", &format!("SEARCH SUBJECT \"{subject}\"")],
            &token,
        );
        let uid =
            search.split_whitespace().last().filter(|word| word.parse::<u32>().is_ok())?.to_owned();
        Some(curl(&[&format!("{imap}/INBOX;MAILINDEX={uid}")], &token))
    });
    assert!(found.contains(&subject) && found.contains("Hello through the doors."), "{found}");

    // Two programs refreshing at the same moment: the lock keeps one refresh token in use; the
    // grant survives (a reused refresh token would revoke it, RFC 9700 §4.14.2).
    std::fs::remove_dir_all(computer.client_dir().join("access-tokens")).unwrap();
    let racers: Vec<_> = ["imap", "smtp", "carddav", "imap", "smtp", "carddav"]
        .iter()
        .map(|service| {
            computer
                .command(&["token", USER, "--service", service], &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for racer in racers {
        let output = racer.wait_with_output().unwrap();
        assert!(output.status.success(), "a concurrent token call: {}", text(&output.stderr));
    }
    std::fs::remove_dir_all(computer.client_dir().join("access-tokens")).unwrap();
    let after = computer.run(&["token", USER, "--service", "imap"]);
    assert!(after.status.success(), "the grant survived the race: {}", text(&after.stderr));

    // logout revokes at the issuer: the refresh token is dead and the account forgotten.
    let refresh = std::fs::read_dir(computer.client_dir().join("refresh-tokens")).unwrap().count();
    assert_eq!(refresh, 1);
    let logout = computer.run(&["logout", USER]);
    assert!(logout.status.success(), "logout: {}", text(&logout.stderr));
    assert!(text(&logout.stderr).contains(&format!("Revoked {USER}'s access at {issuer}")));
    let gone = computer.run(&["token", USER, "--service", "imap"]);
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
    assert!(text(&gone.stderr).contains("letterlock login"));
    let _ = stack.stop();
}

/// Tries `attempt` for up to 20 seconds until it gives an answer.
fn retry(mut attempt: impl FnMut() -> Option<String>) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(answer) = attempt() {
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "no answer in time");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// curl with a bearer token as the test user; its stdout.
fn curl(args: &[&str], token: &str) -> String {
    let user = format!("{USER}:");
    let mut all = args.to_vec();
    all.extend(["-u", &user, "--oauth2-bearer", token]);
    let output = letterlock_test_support::curl_within(20, &all);
    text(&output.stdout)
}

/// Runs `letterlock login` with `args`, waits on its stderr for the line `url_in` finds a URL
/// in, opens that URL with the test browser, and returns login's whole stderr once it is done.
fn login_opening_the_printed_url(
    computer: &Computer,
    args: &[&str],
    url_in: impl Fn(&str) -> Option<String>,
) -> String {
    use std::io::BufRead as _;
    let mut login = computer
        .command(args, &[("BROWSER", "false")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(login.stderr.take().unwrap());
    let mut seen = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "login ended early: {seen}");
        seen.push_str(&line);
        if let Some(url) = url_in(&line) {
            break url;
        }
    };
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/browser.py");
    let opened = Command::new("python3")
        .arg(browser)
        .arg(&url)
        .env("LETTERLOCK_TEST_USER", USER)
        .env("LETTERLOCK_TEST_PASSWORD", PASSWORD)
        .env("LETTERLOCK_TEST_BROWSER_LOG", computer.dir.path().join("browser.log"))
        .output()
        .unwrap();
    assert!(opened.status.success(), "browser: {}", text(&opened.stderr));
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = login.wait().unwrap();
    assert!(status.success(), "login: {seen}");
    seen
}

/// Without a browser on this machine: the device grant (RFC 8628), and `--no-browser` printing
/// the URL. With a software statement from a vendor the server trusts, the consent page says
/// the application is verified. A registration the server no longer knows is made again.
#[test]
fn the_client_signs_in_without_a_browser_and_with_a_vendor_statement() {
    if !oracles(&["curl", "python3", DOVECOT[0], DOVECOT[1], DOVECOT[2], DOVECOT[3]]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("vendor.pem");
    let keygen = super::letterlock(&["vendor", "keygen", "--out", key.to_str().unwrap()]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    let jwks = dir.path().join("vendor.jwks.json");
    std::fs::write(&jwks, &keygen.stdout).unwrap();
    let signed = super::letterlock(&[
        "vendor",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--issuer",
        "https://vendor.example",
        "--software-id",
        "org.letterlock.cli",
        "--client-name",
        "Letterlock",
        "--redirect-uri",
        "http://127.0.0.1/callback",
    ]);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let statement = dir.path().join("statement.jwt");
    std::fs::write(&statement, &signed.stdout).unwrap();
    let mut stack = Stack::start_with(
        "",
        &format!(
            "[[vendors]]\nissuer = \"https://vendor.example\"\nname = \"Example Vendor\"\njwks_file = \"{}\"\n",
            jwks.display()
        ),
    );
    let computer = Computer::new();
    let imap = format!("imap://127.0.0.1:{}", stack.imap);

    // The device grant: the code is shown on stderr; the person approves elsewhere.
    let seen = login_opening_the_printed_url(
        &computer,
        &[
            "login",
            USER,
            "--imap",
            &imap,
            "--device",
            "--software-statement",
            statement.to_str().unwrap(),
        ],
        |line| line.strip_prefix("On any device, open ").map(|url| url.trim().to_owned()),
    );
    assert!(seen.contains("enter the code"), "{seen}");
    assert!(computer.browser_log().contains("consent verified"), "{}", computer.browser_log());
    assert_eq!(jwt_claims(&computer.token("imap"))["aud"], "imap://127.0.0.1");

    // The server forgets the registration (here: its client id is spoiled); the next login
    // registers again, and --no-browser prints the URL for the person to open.
    let registrations = computer.client_dir().join("registrations");
    let file = std::fs::read_dir(&registrations).unwrap().next().unwrap().unwrap().path();
    let mut registration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    registration["client_id"] = "ll1.not-a-client-of-this-server".into();
    std::fs::write(&file, registration.to_string()).unwrap();
    let seen = login_opening_the_printed_url(
        &computer,
        &["login", USER, "--imap", &imap, "--no-browser"],
        |line| line.strip_prefix("  http://").map(|rest| format!("http://{}", rest.trim())),
    );
    assert!(seen.contains("no longer knows this installation; registering again"), "{seen}");
    assert_eq!(jwt_claims(&computer.token("imap"))["sub"], USER);

    // On another computer (a new installation, so the consent page is shown) the person
    // declines: exit code 6, and no account is stored.
    let other = Computer::new();
    let declined = other
        .command(&["login", USER, "--imap", &imap], &[("LETTERLOCK_TEST_DECISION", "deny")])
        .output()
        .unwrap();
    assert_eq!(declined.status.code(), Some(6), "{}", text(&declined.stderr));
    assert!(text(&declined.stderr).contains("access_denied"), "{}", text(&declined.stderr));
    assert!(other.run(&["accounts"]).stdout.is_empty());
    let _ = stack.stop();
}

/// Issue 6 §5: on a desktop with a keyring (GNOME Keyring on the session bus), the
/// installation's registration and the refresh token are kept there, not in files; libsecret's
/// `secret-tool`, a reader we did not write, finds them. A refresh token kept in a file before
/// the keyring was there still works, and moves into the keyring when it rotates. Logout takes
/// it out again.
#[test]
fn the_client_keeps_its_secrets_in_the_desktop_keyring() {
    if !oracles(&[
        "curl",
        "python3",
        DOVECOT[0],
        DOVECOT[1],
        DOVECOT[2],
        DOVECOT[3],
        "dbus-run-session",
        "gnome-keyring-daemon",
        "secret-tool",
    ]) {
        return;
    }
    let mut stack = Stack::start_with("", "");
    let computer = Computer::new();
    let imap = format!("imap://127.0.0.1:{}", stack.imap);
    let lookup = |kind: &str| {
        let found = computer
            .desktop("secret-tool", &["lookup", "application", "org.letterlock", "kind", kind]);
        found.status.success().then(|| text(&found.stdout))
    };

    // Signed in before there was a keyring: the secrets are files.
    let output = computer.run(&["login", USER, "--imap", &imap]);
    assert!(output.status.success(), "login: {}", text(&output.stderr));
    assert_eq!((computer.files("registrations"), computer.files("refresh-tokens")), (1, 1));

    // On the desktop, a refresh reads the file's refresh token and keeps the rotated one in
    // the keyring only. (Login cached no access token, so this one comes by refresh.)
    assert_eq!(computer.files("access-tokens"), 0);
    let token = computer.desktop("letterlock", &["token", USER, "--service", "imap"]);
    assert!(token.status.success(), "token: {}", text(&token.stderr));
    assert_eq!(jwt_claims(text(&token.stdout).trim())["aud"], "imap://127.0.0.1");
    assert_eq!(computer.files("refresh-tokens"), 0, "the rotated refresh token left the file");
    let kept = lookup("refresh-token").expect("secret-tool finds the refresh token");
    assert!(kept.len() > 20, "{kept}");

    // A second refresh, in a new desktop session, uses the keyring's token.
    std::fs::remove_dir_all(computer.client_dir().join("access-tokens")).unwrap();
    let again = computer.desktop("letterlock", &["token", USER, "--service", "imap"]);
    assert!(again.status.success(), "token: {}", text(&again.stderr));
    assert_ne!(lookup("refresh-token").unwrap(), kept, "rotated again, in the keyring");

    // A new installation signing in on the desktop writes no secret to a file at all.
    let other = Computer::new();
    let login = other.desktop("letterlock", &["login", USER, "--imap", &imap]);
    assert!(login.status.success(), "login: {}", text(&login.stderr));
    assert_eq!((other.files("registrations"), other.files("refresh-tokens")), (0, 0));
    assert!(other.desktop("secret-tool", &["lookup", "kind", "registration"]).status.success());
    let token = other.desktop("letterlock", &["token", USER, "--service", "imap"]);
    assert!(token.status.success(), "token: {}", text(&token.stderr));

    // Logout revokes and forgets: the keyring no longer holds the refresh token.
    let logout = computer.desktop("letterlock", &["logout", USER]);
    assert!(logout.status.success(), "logout: {}", text(&logout.stderr));
    assert_eq!(lookup("refresh-token"), None);
    let _ = stack.stop();
}

/// A provider's `autoconfig.example.com` over HTTPS (`autoconfig_server.py`), serving the file
/// `config-v1.1.xml` in its folder; the client reaches it with `--resolve` and `--ca-file`.
struct Autoconfig {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Autoconfig {
    fn serve(xml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certificate =
            letterlock_test_support::certificate(dir.path(), &["autoconfig.example.com"]);
        std::fs::write(dir.path().join("config-v1.1.xml"), xml).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/autoconfig_server.py"))
            .arg(port.to_string())
            .arg(&certificate.certificate)
            .arg(&certificate.private_key)
            .arg(dir.path().join("config-v1.1.xml"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_for("the autoconfig server", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, dir, port }
    }

    fn change(&self, xml: &str) {
        std::fs::write(self.dir.path().join("config-v1.1.xml"), xml).unwrap();
    }

    /// The options that make the client find this server as `autoconfig.example.com`.
    fn client_options(&self) -> [String; 4] {
        [
            "--resolve".into(),
            format!("autoconfig.example.com=127.0.0.1:{}", self.port),
            "--ca-file".into(),
            self.dir.path().join("cert.pem").display().to_string(),
        ]
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("config-v1.1.xml.log")).unwrap_or_default()
    }
}

impl Drop for Autoconfig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An autoconfig file naming `issuer` with `<clientID>`.
fn autoconfig_xml(issuer: &str, client_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<clientConfig version=\"1.1\"><emailProvider id=\"example.com\">\
         <domain>example.com</domain></emailProvider>\
         <oAuth2><issuer>{issuer}</issuer><scope>IMAP SMTP</scope>\
         <clientID>{client_id}</clientID></oAuth2></clientConfig>\n"
    )
}

/// The server alone (no doors), configured with `extra`, and the test user.
fn bare_server(dir: &Path, extra: &str) -> (super::Server, u16) {
    let (config, port) =
        super::loopback_config(dir, &format!("[[resources]]\nuri = \"imap://127.0.0.1\"\n{extra}"));
    let added = super::user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
    assert!(added.status.success(), "{}", text(&added.stderr));
    (super::Server::start(&config, port), port)
}

/// The stored registration at `issuer` (files, as the tests keep them).
fn stored_registration(computer: &Computer) -> serde_json::Value {
    let registrations = computer.client_dir().join("registrations");
    let file = std::fs::read_dir(&registrations).unwrap().next().unwrap().unwrap().path();
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Issue 16 point 7: an issuer without dynamic registration (`[registration] enabled = false`)
/// and the `open` public client; the address's autoconfig publishes `<clientID>open</clientID>`
/// and the client signs in with it. A client id that autoconfig publishes for another issuer is
/// not used.
#[test]
fn the_client_uses_the_client_id_autoconfig_publishes_when_registration_is_closed() {
    if !oracles(&["curl", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = bare_server(
        dir.path(),
        "[registration]\nenabled = false\n[[public_clients]]\nclient_id = \"open\"\nname = \"Mail program\"\n",
    );
    let issuer = format!("http://127.0.0.1:{port}");
    let autoconfig = Autoconfig::serve(&autoconfig_xml(&issuer, "open"));
    let imap = format!("imap://127.0.0.1:{}", free_port());
    let options = autoconfig.client_options();
    let mut args = vec!["login", USER, "--imap", &imap, "--issuer", &issuer];
    args.extend(options.iter().map(String::as_str));

    let computer = Computer::new();
    let output = computer.run(&args);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "login: {stderr}");
    assert!(
        stderr.contains(&format!(
            "{issuer} offers no registration; using the client id open that example.com's \
             autoconfig publishes"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Registering this installation"), "{stderr}");
    assert!(autoconfig.requests().contains("/mail/config-v1.1.xml"), "{}", autoconfig.requests());
    let registration = stored_registration(&computer);
    assert_eq!(registration["client_id"], "open");
    assert_eq!(registration["auth_method"], "none");
    let claims = jwt_claims(&computer.token("imap"));
    assert_eq!(claims["aud"], "imap://127.0.0.1");
    assert_eq!(claims["sub"], USER);

    // The same file naming another issuer: its client id is not for this one.
    autoconfig.change(&autoconfig_xml("https://login.example.net", "open"));
    let other = Computer::new();
    let refused = other.run(&args);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("offers no dynamic client registration (RFC 7591)"), "{stderr}");
    assert!(other.browser_log().is_empty(), "no page was opened: {}", other.browser_log());
    drop(server);
}

/// Issue 16 point 7: a provider that refuses loopback redirects at registration
/// (`[registration] loopback_redirects = false`, Fastmail's policy): the client registers the
/// private-use redirect `org.letterlock.cli:/callback` instead and, since the issuer offers the
/// device grant, signs in with a code approved in the browser.
#[test]
fn the_client_falls_back_to_the_device_grant_when_loopback_redirects_are_refused() {
    if !oracles(&["curl", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = bare_server(dir.path(), "[registration]\nloopback_redirects = false\n");
    let issuer = format!("http://127.0.0.1:{port}");
    let imap = format!("imap://127.0.0.1:{}", free_port());
    let computer = Computer::new();
    let seen = login_opening_the_printed_url(
        &computer,
        &["login", USER, "--imap", &imap, "--issuer", &issuer],
        |line| line.strip_prefix("On any device, open ").map(|url| url.trim().to_owned()),
    );
    assert!(seen.contains(&format!("{issuer} refused the loopback redirect")), "{seen}");
    assert!(seen.contains("registering org.letterlock.cli:/callback instead"), "{seen}");
    assert!(
        seen.contains(&format!(
            "{issuer} does not take loopback redirects; approving with a code instead (RFC 8628)"
        )),
        "{seen}"
    );
    assert_eq!(
        stored_registration(&computer)["private_use_redirect"],
        "org.letterlock.cli:/callback"
    );
    let claims = jwt_claims(&computer.token("imap"));
    assert_eq!(
        (claims["aud"].as_str(), claims["sub"].as_str()),
        (Some("imap://127.0.0.1"), Some(USER))
    );
    drop(server);
}
