//! Issue 16, "Real programs in the tests": Debian's Thunderbird, headless, driven through
//! Marionette (`thunderbird/driver.py`), signs in with its own PKCE flow and the external
//! browser (Chromium playing the person, `tests/browser/person.mjs`), logs in through the IMAP
//! door and sends a message through the SMTP door of `letterlock gateway`; the message is then
//! read back through the IMAP door. Behind the doors: Dovecot (IMAP, LMTP delivery) and Postfix
//! (trusting the SMTP door's `XCLIENT`, relaying to a sink that delivers into Dovecot).
//!
//! Thunderbird asks for its tokens without `resource` (RFC 8707) and uses one token for IMAP and
//! SMTP; the SMTP half shows that such a token is good at both doors (issue 16, point 1).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::{
    MASTER, MASTER_PASSWORD, PASSWORD, Sink, Tokens, USER, authlib_flow_for_resource,
};
use super::{
    DOVECOT, Dovecot, Server, free_port, loopback_config, oracles, user_command, wait_for,
};
use letterlock_test_support::postfix::Postfix;

/// Debian's Thunderbird (bookworm-security: 153 ESR).
const THUNDERBIRD: &str = "/usr/lib/thunderbird/thunderbird";

/// The public client id of the add-on, from `[[public_clients]]`.
const CLIENT_ID: &str = "open";

/// How long the driver may take in all (Thunderbird's start, the sign-in in Chromium, the IMAP
/// login, the message): a bound, not a timing assertion.
const DRIVER_SECONDS: u64 = 150;

/// The doors' transport security, as Thunderbird's `socketType` names it.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// `tls = "starttls"` at both doors (Thunderbird's socket type 2).
    StartTls,
    /// `tls = "implicit"` at both doors (socket type 3).
    Implicit,
}

impl Transport {
    fn socket_type(self) -> u8 {
        match self {
            Self::StartTls => 2,
            Self::Implicit => 3,
        }
    }

    fn door_tls(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        }
    }

    /// The add-on's `redirectionEndpoint`: Thunderbird 153's own default, `http://localhost`,
    /// with implicit TLS, and `http://127.0.0.1` with STARTTLS, so that both loopback forms a
    /// provider meets are run (RFC 8252 §7.3: any port).
    fn redirection_endpoint(self) -> &'static str {
        match self {
            Self::StartTls => "http://127.0.0.1",
            Self::Implicit => "http://localhost",
        }
    }

    /// The resource identifiers of the IMAP and SMTP doors.
    fn resources(self) -> (&'static str, &'static str) {
        match self {
            Self::StartTls => ("imap://127.0.0.1", "smtp://127.0.0.1"),
            Self::Implicit => ("imaps://127.0.0.1", "smtps://127.0.0.1"),
        }
    }
}

/// The issuer, the gateway with its two doors, and the mail servers behind them.
struct Setup {
    dir: tempfile::TempDir,
    server: Option<Server>,
    gateway: Option<Server>,
    port: u16,
    imap: u16,
    smtp: u16,
    certificate: letterlock_test_support::Certificate,
    sink: Sink,
    dovecot: Dovecot,
    postfix: Postfix,
}

impl Setup {
    fn start(transport: Transport) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certificate = letterlock_test_support::certificate(dir.path(), &["127.0.0.1"]);
        let relay = free_port();
        let dovecot = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, relay, None);
        // The relay behind Postfix delivers into Dovecot by LMTP, so the message can be read back.
        let sink = Sink::start(dir.path(), relay, Some(dovecot.lmtp));
        let postfix = Postfix::start(relay, dovecot.auth);
        let (imap_resource, smtp_resource) = transport.resources();
        let secret = "gateway feed secret 0123456789";
        // What an operator writes for Thunderbird (docs/clients/thunderbird.md shows the same).
        let (config, port) = loopback_config(
            dir.path(),
            &format!(
                "[[public_clients]]\nclient_id = \"{CLIENT_ID}\"\nname = \"Thunderbird\"\n\
                 [[resources]]\nuri = \"{imap_resource}\"\n[[resources]]\nuri = \"{smtp_resource}\"\n\
                 [[resource_servers]]\nclient_id = \"gateway\"\nsecret = \"{secret}\"\n\
                 resources = [\"{imap_resource}\", \"{smtp_resource}\"]\n"
            ),
        );
        let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let server = Server::start(&config, port);

        let (imap, smtp) = (free_port(), free_port());
        let tls = format!(
            "tls = \"{}\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
            transport.door_tls(),
            certificate.certificate.display(),
            certificate.private_key.display()
        );
        let gateway_config = dir.path().join("gateway.toml");
        std::fs::write(
            &gateway_config,
            format!(
                "issuer = \"http://127.0.0.1:{port}\"\n\
                 [gateway]\nclient_id = \"gateway\"\nsecret = \"{secret}\"\n\
                 [[imap]]\nlisten = \"127.0.0.1:{imap}\"\n{tls}resource = \"{imap_resource}\"\n\
                 [imap.backend]\naddress = \"127.0.0.1:{}\"\nlogin = \"master\"\n\
                 master_user = \"{MASTER}\"\nmaster_password = \"{MASTER_PASSWORD}\"\n\
                 [[smtp]]\nlisten = \"127.0.0.1:{smtp}\"\n{tls}resource = \"{smtp_resource}\"\n\
                 [smtp.backend]\naddress = \"127.0.0.1:{}\"\nlogin = \"xclient\"\n",
                dovecot.port, postfix.port,
            ),
        )
        .unwrap();
        let gateway = Command::new(super::BINARY)
            .args(["gateway", "--config"])
            .arg(&gateway_config)
            .env("LETTERLOCK_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let gateway = Server(gateway);
        for door in [imap, smtp] {
            wait_for("a door of the gateway", || {
                std::net::TcpStream::connect(("127.0.0.1", door)).is_ok()
            });
        }
        Self {
            dir,
            server: Some(server),
            gateway: Some(gateway),
            port,
            imap,
            smtp,
            certificate,
            sink,
            dovecot,
            postfix,
        }
    }

    /// Stops the gateway and the server; returns their logs.
    fn stop(&mut self) -> (String, String) {
        let mut logs = [String::new(), String::new()];
        for (log, process) in logs.iter_mut().zip([self.gateway.take(), self.server.take()]) {
            if let Some(process) = process {
                let (_, text) = process.terminate();
                *log = text;
            }
        }
        let [gateway, server] = logs;
        (gateway, server)
    }
}

/// Runs `thunderbird/driver.py` with `parameters`, within [`DRIVER_SECONDS`] (SIGTERM then, so
/// that the driver stops Thunderbird), and returns the JSON it printed.
fn drive_thunderbird(parameters: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/thunderbird/driver.py");
    let mut driver: Child = Command::new("python3")
        .arg(script)
        .arg(parameters.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let deadline = Instant::now() + Duration::from_secs(DRIVER_SECONDS);
    while driver.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-TERM", &driver.id().to_string()]).status();
            let stop = Instant::now() + Duration::from_secs(30);
            while driver.try_wait().unwrap().is_none() && Instant::now() < stop {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = driver.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = driver.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        json!({
            "error": format!(
                "the driver printed no report (status {}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    })
}

/// Everything a reader needs to see why a run failed: what the driver saw, Thunderbird's own
/// logs (its chrome console with `mailnews.oauth` and `mailnews.smtp` at `All`, its MOZ_LOG with
/// IMAP and OAuth2), the person's browser, the doors', the issuer's, Dovecot's and Postfix's.
fn logs(work: &Path, setup: &Setup, gateway: &str, server: &str) -> String {
    let read = |name: &str| std::fs::read_to_string(work.join(name)).unwrap_or_default();
    // MOZ_LOG_FILE names a prefix: the parent process writes `moz.log.moz_log`.
    let moz_log = read("moz.log.moz_log");
    // The MOZ_LOG file is long; its end holds the failure.
    let moz_tail: String = {
        let lines: Vec<&str> = moz_log.lines().collect();
        lines[lines.len().saturating_sub(200)..].join("\n")
    };
    // GTK's complaints about the missing screen are noise.
    let console: String = read("console.log")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.contains("gtk_icon_theme"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "--- Thunderbird's console\n{console}\n--- Thunderbird's MOZ_LOG (last 200 lines)\n{moz_tail}\n\
         --- the person's browser\n{}\n--- the gateway\n{gateway}\n--- the issuer\n{server}\n\
         --- Dovecot\n{}\n--- Postfix\n{}\n--- relayed\n{}",
        read("person.log"),
        setup.dovecot.log(),
        setup.postfix.log(),
        setup.sink.received(),
    )
}

/// Thunderbird signs in, logs in to IMAP, sends a message through the SMTP door; the message is
/// read back through the IMAP door with a token of an independent client (Authlib).
fn thunderbird_reads_and_sends(transport: Transport) {
    if !oracles(&[THUNDERBIRD, "chromium", "node", "python3", "curl", "postfix"])
        || !oracles(DOVECOT)
    {
        return;
    }
    let started = Instant::now();
    let mut setup = Setup::start(transport);
    let work = setup.dir.path().join("thunderbird");
    std::fs::create_dir_all(&work).unwrap();
    let subject = format!("Sent by Thunderbird over {transport:?}");
    use base64::Engine as _;
    let parameters = json!({
        "work": work,
        "issuer": format!("http://127.0.0.1:{}", setup.port),
        "client_id": CLIENT_ID,
        "redirection_endpoint": transport.redirection_endpoint(),
        "user": USER,
        "password": PASSWORD,
        "imap_port": setup.imap,
        "smtp_port": setup.smtp,
        "socket_type": transport.socket_type(),
        "certificate_der":
            base64::engine::general_purpose::STANDARD.encode(&setup.certificate.der),
        "subject": subject,
        "timeout": DRIVER_SECONDS - 20,
    });
    let seen = drive_thunderbird(&parameters);
    let driver_seconds = started.elapsed().as_secs_f64();

    // Read back through the IMAP door, as another client of the same user would.
    let (imap_resource, _) = transport.resources();
    let arrived = if seen["smtp"]["status"] == 0 {
        let flow = authlib_flow_for_resource(setup.port, imap_resource, &[]);
        let token = Tokens::from_flow(setup.port, &flow).token(imap_resource);
        let scheme = match transport {
            Transport::StartTls => "imap",
            Transport::Implicit => "imaps",
        };
        let url = format!("{scheme}://127.0.0.1:{}/INBOX;MAILINDEX=1", setup.imap);
        let cacert = setup.certificate.certificate.to_str().unwrap().to_owned();
        let user = format!("{USER}:");
        let mut fetched = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let output = letterlock_test_support::curl_within(
                20,
                &[&url, "--ssl-reqd", "--cacert", &cacert, "-u", &user, "--oauth2-bearer", &token],
            );
            fetched = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            if output.status.success() && fetched.contains(&format!("Subject: {subject}")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        fetched
    } else {
        String::new()
    };
    let (gateway, server) = setup.stop();
    let report =
        || format!("what the driver saw: {seen:#}\n{}", logs(&work, &setup, &gateway, &server));
    eprintln!(
        "thunderbird over {transport:?}: {driver_seconds:.1} s for the driver, {:.1} s in all \
         (Thunderbird ready after {} s, IMAP logged in after {} s, sent after {} s)",
        started.elapsed().as_secs_f64(),
        seen["ready_seconds"],
        seen["imap_seconds"],
        seen["smtp_seconds"],
    );

    assert!(seen.get("error").is_none(), "the driver failed: {}", report());
    // The add-on registered Letterlock as the provider of the mail host.
    assert_eq!(seen["provider"]["issuer"], "127.0.0.1", "{}", report());
    // The person saw the consent page of the public client and approved; the redirect went to
    // Thunderbird's own loopback listener with a code and the issuer (RFC 9207).
    let person = &seen["person"];
    let consent = person["consentText"].as_str().unwrap_or_default();
    assert!(consent.contains("Thunderbird") && consent.contains("not verified"), "{}", report());
    assert_eq!(person["addressPrefilled"], USER, "login_hint: {}", report());
    assert!(
        person["redirect"]["origin"].as_str().is_some_and(|origin| origin
            .starts_with(&format!("{}:", transport.redirection_endpoint()))
            && origin != format!("http://127.0.0.1:{}", setup.port)),
        "{}",
        report()
    );
    assert_eq!(person["redirect"]["iss"], format!("http://127.0.0.1:{}", setup.port));
    // Thunderbird's own code exchange (its console at `mailnews.oauth.loglevel = All`): the
    // public client id, PKCE, and no `resource` (RFC 8707), so one token serves both doors.
    let console = std::fs::read_to_string(work.join("console.log")).unwrap_or_default();
    let exchange = console
        .lines()
        .find(|line| line.contains("Sending request to the token endpoint with data:"))
        .unwrap_or_default();
    assert!(
        exchange.contains(&format!("client_id={CLIENT_ID}&grant_type=authorization_code"))
            && exchange.contains("code_verifier=")
            && !exchange.contains("resource="),
        "Thunderbird's token request: {exchange:?}\n{}",
        report()
    );
    // Issue 16, point 1: the token Thunderbird got without `resource` names both doors'
    // resources in `aud`, so one token serves IMAP and SMTP.
    let answer = console
        .lines()
        .find(|line| line.contains("Successful response from the authorization server:"))
        .unwrap_or_default();
    let access_token = answer
        .split("access_token\\\":\\\"")
        .nth(1)
        .and_then(|rest| rest.split('\\').next())
        .unwrap_or_else(|| panic!("no access token in Thunderbird's log: {}", report()));
    let (imap_resource, smtp_resource) = transport.resources();
    let audience = super::jwt_claims(access_token)["aud"].clone();
    assert!(
        audience.as_array().is_some_and(|audience| audience.len() == 2
            && audience.contains(&json!(imap_resource))
            && audience.contains(&json!(smtp_resource))),
        "the audience of Thunderbird's token: {audience}\n{}",
        report()
    );
    // IMAP: verifyLogon succeeded (status 0 is NS_OK).
    assert_eq!(seen["imap"]["status"], 0, "Thunderbird's IMAP login: {}", report());
    // SMTP: the message was sent through the SMTP door with the same token.
    assert_eq!(
        seen["smtp"]["status"],
        0,
        "Thunderbird's message through the SMTP door: {}",
        report()
    );
    assert!(
        arrived.contains(&format!("Subject: {subject}"))
            && arrived.contains("Sent by Thunderbird through Letterlock's SMTP door."),
        "the message read back through the IMAP door: {arrived}\n{}",
        report()
    );
    // The SMTP door logged the user in, and Postfix took the door's XCLIENT login.
    assert!(
        gateway.lines().any(|line| line.contains("session ended")
            && line.contains("\"smtp\"")
            && line.contains(&format!("\"{USER}\""))),
        "the SMTP door's session: {}",
        report()
    );
    assert!(
        setup.sink.received().contains(&format!("(Authenticated sender: {USER})")),
        "Postfix took the door's XCLIENT login: {}",
        report()
    );
}

/// Thunderbird through doors with STARTTLS (socket type 2), the common setup on ports 143/587.
#[test]
fn thunderbird_signs_in_reads_and_sends_through_starttls_doors() {
    thunderbird_reads_and_sends(Transport::StartTls);
}

/// Thunderbird through doors with implicit TLS (socket type 3), ports 993/465.
#[test]
fn thunderbird_signs_in_reads_and_sends_through_implicit_tls_doors() {
    thunderbird_reads_and_sends(Transport::Implicit);
}
