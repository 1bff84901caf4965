//! The harnesses of the front-door tests that run the `letterlock` binary: the test user and
//! Dovecot's master user, the SMTP sink behind Dovecot's submission service, the whole stack
//! (server, IMAP/SMTP/POP3 doors, Dovecot, sink, tokens), Postfix behind the SMTP door, and a
//! user's per-service tokens. Dovecot and Postfix themselves are in `letterlock-test-support`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use letterlock_test_support::dovecot::Dovecot;
use letterlock_test_support::postfix::Postfix;
use serde_json::{Value, json};

use super::{Server, curl, free_port, loopback_config, python_json, user_command, wait_for};

pub(crate) const USER: &str = "fay@example.com";
pub(crate) const PASSWORD: &str = "fay's long password";
pub(crate) const MASTER: &str = "letterlock";
pub(crate) const MASTER_PASSWORD: &str = "master secret 5f0c";

/// The relay behind Dovecot's submission service.
pub(crate) struct Sink {
    child: Child,
    file: std::path::PathBuf,
}

impl Sink {
    /// Listens on `port`; with `lmtp`, also delivers to Dovecot's mailboxes.
    pub(crate) fn start(dir: &Path, port: u16, lmtp: Option<u16>) -> Self {
        let file = dir.join("relayed.txt");
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/smtp_sink.py"))
            .arg(port.to_string())
            .arg(&file)
            .args(lmtp.map(|port| port.to_string()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the SMTP sink", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Self { child, file }
    }

    pub(crate) fn received(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server with three front doors, Dovecot behind them, and a signed-in user's tokens.
pub(crate) struct Stack {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) server: Option<Server>,
    pub(crate) port: u16,
    /// The IMAP door in front of Dovecot's UNIX socket.
    pub(crate) imap: u16,
    /// An IMAP door in front of Dovecot's TCP port, which tells Dovecot the client's address.
    pub(crate) imap_tcp: u16,
    /// An IMAP door with STARTTLS (a self-signed certificate for 127.0.0.1, `certificate`), in
    /// front of Dovecot's UNIX socket: for programs that send tokens only over TLS (neomutt).
    pub(crate) imap_starttls: u16,
    /// The STARTTLS door's certificate (PEM file).
    pub(crate) certificate: std::path::PathBuf,
    pub(crate) smtp: u16,
    pub(crate) pop3: u16,
    pub(crate) tokens: Tokens,
    pub(crate) sink: Sink,
    pub(crate) dovecot: Dovecot,
}

impl Stack {
    pub(crate) fn start() -> Self {
        Self::start_with("", "")
    }

    /// With extra `[gateway]` keys and extra sections.
    pub(crate) fn start_with(gateway_extra: &str, sections: &str) -> Self {
        Self::configured(gateway_extra, sections, 1000)
    }

    /// With extra `[gateway]` keys and sections, and failures allowed per user and minute (high
    /// by default so that tests of other things never meet the limit).
    pub(crate) fn configured(gateway_extra: &str, sections: &str, failures_per_user: u32) -> Self {
        Self::built(gateway_extra, sections, failures_per_user, &[])
    }

    /// With extra sections, and the grant asked for `scope` (the mail scope by default).
    pub(crate) fn with_scope(sections: &str, scope: &str) -> Self {
        Self::built("", sections, 1000, &[("LETTERLOCK_TEST_SCOPE", scope)])
    }

    fn built(
        gateway_extra: &str,
        sections: &str,
        failures_per_user: u32,
        flow_env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let relay = free_port();
        let dovecot = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, relay, None);
        let sink = Sink::start(dir.path(), relay, Some(dovecot.lmtp));
        let (imap, imap_tcp, smtp, pop3) = (free_port(), free_port(), free_port(), free_port());
        // No host_names or ports: OAUTHBEARER's host= and port= are checked against the
        // resource's host and the door's port (RFC 7628 §3.2), as by default.
        let door = |section: &str, port: u16, scheme: &str, backend: &str| {
            format!(
                "[[{section}]]\nlisten = \"127.0.0.1:{port}\"\nresource = \"{scheme}://127.0.0.1\"\n\
                 [{section}.backend]\naddress = \"{backend}\"\nlogin = \"master\"\n\
                 master_user = \"{MASTER}\"\nmaster_password = \"{MASTER_PASSWORD}\"\n"
            )
        };
        let tcp = |port: u16| format!("127.0.0.1:{port}");
        let imap_starttls = free_port();
        let certificate = letterlock_test_support::certificate(dir.path(), &["127.0.0.1"]);
        let starttls = format!(
            "[[imap]]\nlisten = \"127.0.0.1:{imap_starttls}\"\ntls = \"starttls\"\n\
             certificate = \"{}\"\nprivate_key = \"{}\"\nresource = \"imap://127.0.0.1\"\n\
             [imap.backend]\naddress = \"unix:{}\"\nlogin = \"master\"\n\
             master_user = \"{MASTER}\"\nmaster_password = \"{MASTER_PASSWORD}\"\n",
            certificate.certificate.display(),
            certificate.private_key.display(),
            dovecot.imap_socket().display()
        );
        let (config, port) = loopback_config(
            dir.path(),
            &format!(
                "[[resources]]\nuri = \"imap://127.0.0.1\"\n[[resources]]\nuri = \"smtp://127.0.0.1\"\n\
                 [[resources]]\nuri = \"pop3://127.0.0.1\"\n\
                 [gateway]\nlogin_timeout_seconds = 2\nconnections_per_address = 40\n\
                 failures_per_minute_per_address = 1000\n\
                 failures_per_minute_per_user = {failures_per_user}\n\
                 {gateway_extra}\n{sections}\n{}{}{}{}{starttls}",
                // IMAP through Dovecot's UNIX socket, as a door on the mail server's machine would.
                door("imap", imap, "imap", &format!("unix:{}", dovecot.imap_socket().display())),
                door("imap", imap_tcp, "imap", &tcp(dovecot.port)),
                door("smtp", smtp, "smtp", &tcp(dovecot.submission)),
                door("pop3", pop3, "pop3", &tcp(dovecot.pop3)),
            ),
        );
        let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let server = Server::start(&config, port);
        for door in [imap, imap_tcp, imap_starttls, smtp, pop3] {
            wait_for("a front door to listen", || {
                std::net::TcpStream::connect(("127.0.0.1", door)).is_ok()
            });
        }
        let flow = authlib_flow_for_resource(port, "smtp://127.0.0.1", flow_env);
        let tokens = Tokens::from_flow(port, &flow);
        Self {
            _dir: dir,
            server: Some(server),
            port,
            imap,
            imap_tcp,
            imap_starttls,
            certificate: certificate.certificate,
            smtp,
            pop3,
            tokens,
            sink,
            dovecot,
        }
    }

    pub(crate) fn token(&mut self, resource: &str) -> String {
        self.tokens.token(resource)
    }

    /// Starts `front_doors.py hold`: an IDLE session that reports the BYE ending it.
    pub(crate) fn hold(&self, token: &str) -> std::process::Child {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/front_doors.py");
        let parameters = json!({"imap": self.imap, "user": USER, "token": token});
        let mut child = Command::new("python3")
            .arg(script)
            .args(["hold", &parameters.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        child
    }

    pub(crate) fn stop(&mut self) -> String {
        let (status, log) = self.server.take().unwrap().terminate();
        assert!(status.success(), "{log}");
        log
    }
}

/// Postfix trusting the SMTP door's `XCLIENT`, behind the door with `login = "xclient"`: the
/// relay, Dovecot (for Postfix's SASL questions), Postfix, the server, and a token for the door.
pub(crate) struct PostfixBehindTheDoor {
    pub(crate) sink: Sink,
    pub(crate) postfix: Postfix,
    pub(crate) server: Server,
    pub(crate) door: u16,
    pub(crate) token: String,
    pub(crate) _dovecot: Dovecot,
    pub(crate) _dir: tempfile::TempDir,
}

impl PostfixBehindTheDoor {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let relay = free_port();
        let sink = Sink::start(dir.path(), relay, None);
        // Dovecot only answers Postfix's SASL questions here; it takes no logins of its own.
        let dovecot = Dovecot::with_master_user(MASTER, MASTER_PASSWORD, relay, None);
        let postfix = Postfix::start(relay, dovecot.auth);
        let door = free_port();
        let (config, port) = loopback_config(
            dir.path(),
            &format!(
                "[[resources]]\nuri = \"smtp://127.0.0.1\"\n\
                 [[smtp]]\nlisten = \"127.0.0.1:{door}\"\nresource = \"smtp://127.0.0.1\"\n\
                 host_names = [\"127.0.0.1\"]\n\
                 [smtp.backend]\naddress = \"127.0.0.1:{}\"\nlogin = \"xclient\"\n",
                postfix.port
            ),
        );
        let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let server = Server::start(&config, port);
        wait_for("the SMTP door", || std::net::TcpStream::connect(("127.0.0.1", door)).is_ok());
        let flow = authlib_flow_for_resource(port, "smtp://127.0.0.1", &[]);
        let token = flow["smtp_access_token"].as_str().unwrap().to_owned();
        Self { sink, postfix, server, door, token, _dovecot: dovecot, _dir: dir }
    }
}

/// The Authlib flow (`authlib_flow.py`), whose per-service refresh asks for `resource`.
pub(crate) fn authlib_flow_for_resource(port: u16, resource: &str, env: &[(&str, &str)]) -> Value {
    let base = format!("http://127.0.0.1:{port}");
    python_json("authlib_flow.py", &[&base, USER, PASSWORD, resource], env)
}

/// A user's refresh token, for per-service access tokens.
pub(crate) struct Tokens {
    port: u16,
    pub(crate) client_id: String,
    pub(crate) refresh_token: String,
}

impl Tokens {
    /// The registration and refresh token an Authlib flow ended with.
    pub(crate) fn from_flow(port: u16, flow: &Value) -> Self {
        Self {
            port,
            client_id: flow["client_id"].as_str().unwrap().to_owned(),
            refresh_token: flow["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// An access token for one front door, by refresh with `resource` (RFC 8707).
    pub(crate) fn token(&mut self, resource: &str) -> String {
        self.narrowed(resource, None)
    }

    /// An access token for `resource`, narrowed to `scope` when given.
    pub(crate) fn narrowed(&mut self, resource: &str, scope: Option<&str>) -> String {
        self.refreshed(Some(resource), scope)
    }

    /// An access token asked without `resource` (as Thunderbird asks): for every granted
    /// service its scope reaches (issue 16).
    pub(crate) fn without_resource(&mut self, scope: Option<&str>) -> String {
        self.refreshed(None, scope)
    }

    fn refreshed(&mut self, resource: Option<&str>, scope: Option<&str>) -> String {
        let mut arguments = vec![
            format!("http://127.0.0.1:{}/token", self.port),
            "-d".into(),
            "grant_type=refresh_token".into(),
        ];
        for (name, value) in [
            ("refresh_token", Some(self.refresh_token.as_str())),
            ("client_id", Some(self.client_id.as_str())),
            ("resource", resource),
            ("scope", scope),
        ] {
            if let Some(value) = value {
                arguments.extend(["--data-urlencode".into(), format!("{name}={value}")]);
            }
        }
        let answer = curl(&arguments.iter().map(String::as_str).collect::<Vec<_>>());
        let rotated = answer["refresh_token"].as_str();
        self.refresh_token = rotated.unwrap_or_else(|| panic!("{answer}")).to_owned();
        answer["access_token"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
    }

    /// The current refresh token (for revocation).
    pub(crate) fn refresh_token(&self) -> &str {
        &self.refresh_token
    }
}
