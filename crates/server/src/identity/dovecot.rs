//! Dovecot's auth service as an identity source: the sign-in page's name and password go to
//! Dovecot as a PLAIN authentication, over its authentication client protocol (the one Postfix's
//! and Exim's "Dovecot SASL" speak), on a UNIX socket (an `auth-client` style `unix_listener`)
//! or TCP (an `inet_listener` of `service auth`). Whatever passdb Dovecot has (passwd-file, SQL,
//! LDAP, PAM) decides, with its own failure delay, penalties and policy, keyed on the client's
//! address that we pass on (`rip=`). The wire format is [`letterlock_sasl::dovecot`]; this
//! module is its I/O: one connection per check (a UNIX socket connection and Dovecot's
//! three-line handshake cost well under a millisecond next to Dovecot's password hash; over TCP
//! add a round trip), bounded in number and in time.
//!
//! - `OK` proves the person; the address is Dovecot's `user=` (the name its passdb settled on),
//!   with `domain` added when it has no `@`, normalized. A name that is still no mail address
//!   makes the source unavailable (a configuration to fix), not a refusal that a later source
//!   could overrule.
//! - `FAIL` refuses, except `code=temp_fail` (Dovecot's passdb is down): unavailable.
//! - No answer within `timeout_seconds` (a slow, silent or absent Dovecot), a broken handshake or
//!   a line that is not Dovecot's: unavailable.
//! - A name or password Dovecot could misread (a NUL, which would move PLAIN's separators, a
//!   control character in the name, an empty one, a line over Dovecot's 16 KiB) is refused
//!   without connecting.
//!
//! The refresh re-check ([`DovecotSource::standing`]) asks Dovecot's auth-master socket
//! (`master_socket`) for a passdb lookup, as `doveadm auth lookup` does: `PASS` is active,
//! `NOTFOUND` (no such user, disabled, password expired) is gone, anything else unknown.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use letterlock_sasl::dovecot::{
    AuthRequest, ClientHandshake, DovecotError, MASTER_VERSION, MAX_LINE_BYTES, MasterLine,
    Outcome, ServerLine, master_hello, pass_lookup,
};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::Semaphore;

use super::{Attempt, Standing, Verdict};
use crate::accounts::normalize_address;
use crate::config::ConfigError;

/// Where Debian's Dovecot (`base_dir = /run/dovecot`) has its `auth-client` socket.
const DEFAULT_SOCKET: &str = "/run/dovecot/auth-client";

/// `[[sign_in.sources]]` with `kind = "dovecot"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DovecotConfig {
    /// The source's name in logs and `users.source`.
    pub name: String,
    /// Dovecot's auth-client UNIX socket (default `/run/dovecot/auth-client` when `address` is
    /// not set either).
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Dovecot's auth-client TCP listener, `host:port` (instead of `socket`).
    #[serde(default)]
    pub address: Option<String>,
    /// The service name Dovecot's passdb sees (`%s`; default `letterlock`).
    #[serde(default = "default_service")]
    pub service: String,
    /// How long a check may take in all, waiting for a free connection included (default 5):
    /// longer than Dovecot's `auth_failure_delay` (2 s by default), which delays every `FAIL`.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How many checks may be under way at once (default 8); more wait, within the timeout.
    #[serde(default = "default_concurrency")]
    pub concurrent_checks: usize,
    /// Added as `@domain` to a typed name without `@`, and to a proven name without one.
    #[serde(default)]
    pub domain: Option<String>,
    /// Dovecot's auth-master UNIX socket, for the refresh re-check; without it the re-check
    /// cannot tell ([`Standing::Unknown`]).
    #[serde(default)]
    pub master_socket: Option<PathBuf>,
}

fn default_service() -> String {
    "letterlock".to_owned()
}

fn default_timeout() -> u64 {
    5
}

fn default_concurrency() -> usize {
    8
}

/// Where Dovecot's auth-client listener is.
#[derive(Debug, Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// Dovecot's auth service.
pub struct DovecotSource {
    name: String,
    target: Target,
    master: Option<PathBuf>,
    service: String,
    timeout: Duration,
    domain: Option<String>,
    checks: Arc<Semaphore>,
    next_id: AtomicU32,
}

/// Why a check could not be completed, for the operator's log.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot reach Dovecot's auth service: {0}")]
    Io(#[from] std::io::Error),
    #[error("Dovecot's auth service closed the connection")]
    Closed,
    #[error("Dovecot's auth service sent something that is not its protocol: {0}")]
    Protocol(#[from] DovecotError),
    #[error("Dovecot's auth service sent a line that is not UTF-8")]
    NotUtf8,
    #[error("Dovecot asked for another round, which PLAIN never needs")]
    Continue,
}

impl DovecotSource {
    /// Checks the configuration: one of `socket` and `address`, a service name and domain
    /// without control characters, a timeout and a bound of at least 1.
    pub fn new(config: &DovecotConfig) -> Result<Self, ConfigError> {
        let key = |field: &str| format!("sign_in.sources.{field} (source '{}')", config.name);
        let target = match (&config.socket, &config.address) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    &key("socket"),
                    "set socket or address, not both",
                ));
            }
            (Some(socket), None) => Target::Unix(socket.clone()),
            (None, Some(address)) => {
                // host:port, where host may be a name or a bracketed IPv6 address.
                let port = address.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
                match port {
                    Some((host, Ok(port))) if !host.is_empty() && port != 0 => {}
                    _ => {
                        return Err(ConfigError::invalid(
                            &key("address"),
                            "must be host:port, such as 127.0.0.1:12345",
                        ));
                    }
                }
                Target::Tcp(address.clone())
            }
            (None, None) => Target::Unix(PathBuf::from(DEFAULT_SOCKET)),
        };
        let plain = |text: &str| !text.is_empty() && !text.chars().any(char::is_control);
        if !plain(&config.service) {
            return Err(ConfigError::invalid(&key("service"), "must be a non-empty name"));
        }
        if let Some(domain) = &config.domain
            && (!plain(domain) || domain.contains('@') || domain.contains(char::is_whitespace))
        {
            return Err(ConfigError::invalid(
                &key("domain"),
                "must be a domain such as example.com",
            ));
        }
        if config.timeout_seconds == 0 {
            return Err(ConfigError::invalid(&key("timeout_seconds"), "must be at least 1"));
        }
        if config.concurrent_checks == 0 {
            return Err(ConfigError::invalid(&key("concurrent_checks"), "must be at least 1"));
        }
        Ok(Self {
            name: config.name.clone(),
            target,
            master: config.master_socket.clone(),
            service: config.service.clone(),
            timeout: Duration::from_secs(config.timeout_seconds),
            domain: config.domain.as_ref().map(|domain| domain.to_lowercase()),
            checks: Arc::new(Semaphore::new(config.concurrent_checks)),
            next_id: AtomicU32::new(1),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name`, with `@domain` when it has none and a domain is configured.
    fn qualified(&self, name: &str) -> String {
        match &self.domain {
            Some(domain) if !name.contains('@') => format!("{name}@{domain}"),
            _ => name.to_owned(),
        }
    }

    /// Asks Dovecot about an attempt: a PLAIN authentication with the client's address.
    pub async fn check(&self, attempt: &Attempt<'_>) -> Verdict {
        let user = self.qualified(attempt.typed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let request = AuthRequest {
            id,
            service: &self.service,
            user: &user,
            password: attempt.password,
            remote_ip: known(attempt.peer),
            local_ip: None,
            // The password crossed TLS to reach the sign-in page: the issuer is https, or plain
            // http on a loopback host, which Dovecot counts as secure too.
            secured: true,
        };
        let line = match request.encode() {
            Ok(line) => line,
            // Refused here, without asking Dovecot: it would refuse too, or misread the name.
            Err(_) => return Verdict::Refused,
        };
        let asked = tokio::time::timeout(self.timeout, async {
            let _permit = self.checks.acquire().await.map_err(|_| Failure::Closed)?;
            self.authenticate(&line, id).await
        })
        .await;
        let outcome = match asked {
            Err(_) => {
                return Verdict::Unavailable {
                    reason: format!(
                        "Dovecot's auth service did not answer within {} s",
                        self.timeout.as_secs()
                    ),
                };
            }
            Ok(Err(failure)) => return Verdict::Unavailable { reason: failure.to_string() },
            Ok(Ok(outcome)) => outcome,
        };
        match outcome {
            Outcome::Success { user: proven } => {
                let proven = self.qualified(proven.as_deref().unwrap_or(&user));
                match normalize_address(&proven) {
                    Ok(address) => Verdict::Proven { address },
                    Err(_) => Verdict::Unavailable {
                        reason: format!(
                            "Dovecot proved the user '{proven}', which is not a mail address \
                             (set the source's `domain`)"
                        ),
                    },
                }
            }
            Outcome::Refused { code } => {
                tracing::debug!(source = self.name, code, "Dovecot refused a sign-in");
                Verdict::Refused
            }
            Outcome::TemporaryFailure { reason } => Verdict::Unavailable {
                reason: format!(
                    "Dovecot could not check the password (temp_fail: {})",
                    reason.as_deref().unwrap_or("no reason given")
                ),
            },
            Outcome::Continue => Verdict::Unavailable { reason: Failure::Continue.to_string() },
        }
    }

    /// One authentication on a fresh connection: the handshake, the request, its answer.
    async fn authenticate(&self, line: &str, id: u32) -> Result<Outcome, Failure> {
        let mut connection = BufReader::new(self.connect().await?);
        connection
            .get_mut()
            .write_all(ClientHandshake::hello(std::process::id()).as_bytes())
            .await?;
        let mut handshake = ClientHandshake::default();
        while !handshake.is_ready() {
            handshake.receive(&ServerLine::parse(&read_line(&mut connection).await?)?)?;
        }
        connection.get_mut().write_all(line.as_bytes()).await?;
        let answer = ServerLine::parse(&read_line(&mut connection).await?)?;
        // Only our request is on this connection: any other line is not Dovecot's answer.
        Outcome::of(&answer, id).ok_or(Failure::Protocol(DovecotError::OutOfOrder))
    }

    async fn connect(&self) -> Result<Box<dyn Connection>, Failure> {
        Ok(match &self.target {
            Target::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Target::Tcp(address) => Box::new(tokio::net::TcpStream::connect(address).await?),
        })
    }

    /// Asks Dovecot's auth-master socket whether a person is still there (a passdb lookup, as
    /// `doveadm auth lookup`). Unknown without `master_socket`, and whenever Dovecot cannot
    /// tell (its passdb cannot look users up without a password, as LDAP with `auth_bind`, or
    /// it is down or slow).
    pub async fn standing(&self, address: &str) -> Standing {
        let Some(master) = &self.master else {
            return Standing::Unknown;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let Ok(lookup) = pass_lookup(id, address, &self.service) else {
            return Standing::Unknown;
        };
        let asked = tokio::time::timeout(self.timeout, async {
            let _permit = self.checks.acquire().await.map_err(|_| Failure::Closed)?;
            let mut connection = BufReader::new(tokio::net::UnixStream::connect(master).await?);
            connection.get_mut().write_all((master_hello() + &lookup).as_bytes()).await?;
            loop {
                match MasterLine::parse(&read_line(&mut connection).await?)? {
                    MasterLine::Version { major } if major != MASTER_VERSION.0 => {
                        return Err(Failure::Protocol(DovecotError::IncompatibleVersion(major)));
                    }
                    MasterLine::Version { .. } | MasterLine::Spid => {}
                    MasterLine::Pass { id: answered } if answered == id => {
                        return Ok(Standing::Active);
                    }
                    MasterLine::NotFound { id: answered } if answered == id => {
                        return Ok(Standing::Gone);
                    }
                    MasterLine::Fail { id: answered } if answered == id => {
                        return Ok(Standing::Unknown);
                    }
                    _ => return Err(Failure::Protocol(DovecotError::OutOfOrder)),
                }
            }
        })
        .await;
        match asked {
            Ok(Ok(standing)) => standing,
            Ok(Err(failure)) => {
                tracing::warn!(source = self.name, %failure, "the refresh re-check could not ask Dovecot");
                Standing::Unknown
            }
            Err(_) => {
                tracing::warn!(
                    source = self.name,
                    "Dovecot's auth-master socket did not answer in time"
                );
                Standing::Unknown
            }
        }
    }
}

/// A connection to Dovecot, UNIX or TCP.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// The client's address for `rip=`, unless the listener could not tell (unspecified).
fn known(peer: IpAddr) -> Option<IpAddr> {
    (!peer.is_unspecified()).then_some(peer)
}

/// One line without its LF, at most [`MAX_LINE_BYTES`]: a longer one is not Dovecot's, and
/// is not read on into memory.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, Failure> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(Failure::Closed);
        }
        let (taken, end) = match available.iter().position(|byte| *byte == b'\n') {
            Some(position) => (position, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(if end { taken + 1 } else { taken });
        if line.len() > MAX_LINE_BYTES {
            return Err(Failure::Protocol(DovecotError::TooLong));
        }
        if end {
            return String::from_utf8(line).map_err(|_| Failure::NotUtf8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<DovecotSource, ConfigError> {
        let config: DovecotConfig = toml::from_str(&format!("name = \"mail\"\n{extra}")).unwrap();
        DovecotSource::new(&config)
    }

    #[test]
    fn defaults_and_checks() {
        let source = config("").unwrap();
        assert!(
            matches!(&source.target, Target::Unix(path) if path == std::path::Path::new(DEFAULT_SOCKET))
        );
        assert_eq!(source.service, "letterlock");
        assert_eq!(source.timeout, Duration::from_secs(5));
        assert_eq!(source.checks.available_permits(), 8);
        assert!(source.master.is_none());
        for bad in [
            "socket = \"/a\"\naddress = \"127.0.0.1:1\"",
            "address = \"127.0.0.1\"",
            "address = \":12\"",
            "address = \"localhost:0\"",
            "service = \"\"",
            "service = \"a\\tb\"",
            "domain = \"a@b\"",
            "domain = \"\"",
            "timeout_seconds = 0",
            "concurrent_checks = 0",
        ] {
            let error = config(bad).err().map(|error| error.to_string());
            assert!(error.is_some_and(|error| error.contains("source 'mail'")), "{bad}");
        }
        assert!(config("address = \"[::1]:12345\"").is_ok());
        assert!(toml::from_str::<DovecotConfig>("name = \"a\"\nsockett = \"/a\"").is_err());
    }

    #[test]
    fn the_domain_is_added_to_a_bare_name() {
        let source = config("domain = \"Example.com\"").unwrap();
        assert_eq!(source.qualified("bob"), "bob@example.com");
        assert_eq!(source.qualified("bob@other.example"), "bob@other.example");
        assert_eq!(config("").unwrap().qualified("bob"), "bob");
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut reader = BufReader::new(&long[..]);
        assert!(matches!(
            read_line(&mut reader).await,
            Err(Failure::Protocol(DovecotError::TooLong))
        ));
        let mut reader = BufReader::new(&b"OK\t1\nrest"[..]);
        assert_eq!(read_line(&mut reader).await.unwrap(), "OK\t1");
        assert!(matches!(read_line(&mut reader).await, Err(Failure::Closed)));
    }
}
