//! The front doors' part of the configuration file: `[gateway]`, `[[imap]]`, `[[smtp]]`,
//! `[[pop3]]` and `[[dav]]`. The `letterlock` binary reads them from the same file as the
//! authorization server's sections, so one file describes a whole installation;
//! `letterlock gateway` reads the same file and uses only these sections and `issuer`. Every key
//! is documented in `docs/CONFIGURATION.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use letterlock_protocol::scope;
use serde::Deserialize;

/// The scope every mail front door requires unless configured otherwise.
pub const MAIL_SCOPE: &str = scope::MAIL;

/// `[gateway]`: what all front doors share. Its `Debug` hides the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The client id the front doors use to follow the issuer's revocation feed (one of the
    /// issuer's `[[resource_servers]]`). Inside `letterlock serve` it can be left out: the server
    /// then makes an internal one.
    pub client_id: Option<String>,
    /// Its secret.
    pub secret: Option<String>,
    /// A PEM file of extra certificate authorities for reaching the issuer over HTTPS.
    pub issuer_ca_file: Option<PathBuf>,
    /// How long a session may outlive its token's expiry before it is closed (RFC 7628 §5).
    pub session_grace_seconds: u64,
    /// How long a client may take for each line before logging in.
    pub login_timeout_seconds: u64,
    /// How long an authenticated session may stay silent in both directions.
    pub idle_timeout_seconds: u64,
    /// The longest command line accepted before logging in (a JWT access token is a few KiB).
    pub max_line_bytes: usize,
    /// Open connections allowed from one address, across all front doors.
    pub connections_per_address: u32,
    /// Failed authentications allowed per minute from one address (discovery probes with an
    /// empty token do not count).
    pub failures_per_minute_per_address: u32,
    /// Failed authentications allowed per minute for one user, counted only under the `sub` of
    /// a token whose signature verified (a back-end refusal, a token for the wrong host).
    pub failures_per_minute_per_user: u32,
    /// How much of an IPv6 address the per-address limits look at: a host picks any address in
    /// its network, so they count by network (/64 by default).
    pub ipv6_prefix_length: u8,
    /// How long open sessions get to finish when the gateway shuts down.
    pub shutdown_grace_seconds: u64,
    /// Threads serving the IMAP, SMTP and POP3 doors, each with its own event loop and its own
    /// listening socket on every door (`SO_REUSEPORT`); 0 means one per CPU.
    pub threads: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            secret: None,
            issuer_ca_file: None,
            session_grace_seconds: 3600,
            login_timeout_seconds: 60,
            idle_timeout_seconds: 31 * 60,
            max_line_bytes: 64 * 1024,
            connections_per_address: 50,
            failures_per_minute_per_address: 20,
            failures_per_minute_per_user: 10,
            ipv6_prefix_length: 64,
            shutdown_grace_seconds: 10,
            threads: 0,
        }
    }
}

/// How a listener or a back-end connection uses TLS.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text: allowed for listeners only on loopback addresses.
    #[default]
    None,
    /// Plain text upgraded by the protocol's STARTTLS (IMAP `STARTTLS`, SMTP `STARTTLS`, POP3
    /// `STLS`).
    Starttls,
    /// TLS from the first byte (ports 993, 465, 995).
    Implicit,
}

/// `[[imap]]`, `[[smtp]]`, `[[pop3]]`: one front door.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// TLS towards clients.
    #[serde(default)]
    pub tls: TlsMode,
    /// The certificate chain (PEM), for `starttls` and `implicit`.
    pub certificate: Option<PathBuf>,
    /// The private key (PEM), for `starttls` and `implicit`.
    pub private_key: Option<PathBuf>,
    /// The resource identifier tokens must name in `aud` (RFC 8707), one of the issuer's
    /// `[[resources]]`, for example `imap://mail.example.com`.
    pub resource: String,
    /// The scope tokens must carry.
    #[serde(default = "mail_scope")]
    pub scope: String,
    /// Accept tokens whose header says `typ: JWT` as well as RFC 9068's `at+jwt` (for a resource
    /// whose tokens are made for Dovecot's own validation and also pass through this door).
    #[serde(default)]
    pub accept_jwt_typ: bool,
    /// Host names clients may name in OAUTHBEARER's `host=`; empty means the host of
    /// `resource`.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// Ports clients may name in OAUTHBEARER's `port=`; empty means the port the door listens
    /// on and the port of `resource` (its scheme's default port when it names none).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// The back-end user name made from the token's `sub`: `{sub}` (the default), or a template
    /// using `{local}` and `{domain}` (the parts around the last `@`).
    #[serde(default = "sub_template")]
    pub user: String,
    /// The mail domains this door serves; a token for a user of another domain is refused.
    /// Required when `user` uses `{local}` without `{domain}`, which would otherwise make
    /// `ann@a.example` and `ann@b.example` the same back-end user.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The mail server behind the door.
    pub backend: BackendConfig,
}

fn mail_scope() -> String {
    MAIL_SCOPE.to_owned()
}

fn sub_template() -> String {
    "{sub}".to_owned()
}

/// How the front door logs in to the mail server behind it.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// SASL PLAIN with the user as authorization identity and a master user's credentials
    /// (Dovecot master users, Cyrus proxy servers, Dovecot submission).
    #[default]
    Master,
    /// The client's token, passed on with OAUTHBEARER, for a back end that validates tokens
    /// itself (Dovecot's oauth2 passdb).
    Token,
    /// SMTP only: Postfix's `XCLIENT LOGIN=<user>` (the front door's address must be in
    /// Postfix's `smtpd_authorized_xclient_hosts`).
    Xclient,
}

/// `backend` of a front door. Its `Debug` hides the master password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `host:port` of the mail server, or `unix:` and the path of its UNIX socket (a back end on
    /// the same machine, without TLS).
    pub address: String,
    /// TLS towards the mail server.
    #[serde(default)]
    pub tls: TlsMode,
    /// The name its certificate must carry; by default the host of `address`.
    pub server_name: Option<String>,
    /// A PEM file of certificate authorities for its certificate; by default the system's.
    pub ca_file: Option<PathBuf>,
    /// How to log in.
    #[serde(default)]
    pub login: LoginMode,
    /// The master user (for `login = "master"`).
    pub master_user: Option<String>,
    /// The master user's password.
    pub master_password: Option<String>,
    /// A file holding the master user's password (the first line), instead of
    /// `master_password`.
    pub master_password_file: Option<PathBuf>,
}

/// What `Debug` shows instead of a configured secret.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            client_id,
            secret,
            issuer_ca_file,
            session_grace_seconds,
            login_timeout_seconds,
            idle_timeout_seconds,
            max_line_bytes,
            connections_per_address,
            failures_per_minute_per_address,
            failures_per_minute_per_user,
            ipv6_prefix_length,
            shutdown_grace_seconds,
            threads,
        } = self;
        formatter
            .debug_struct("GatewayConfig")
            .field("client_id", client_id)
            .field("secret", &secret.as_ref().map(|_| REDACTED))
            .field("issuer_ca_file", issuer_ca_file)
            .field("session_grace_seconds", session_grace_seconds)
            .field("login_timeout_seconds", login_timeout_seconds)
            .field("idle_timeout_seconds", idle_timeout_seconds)
            .field("max_line_bytes", max_line_bytes)
            .field("connections_per_address", connections_per_address)
            .field("failures_per_minute_per_address", failures_per_minute_per_address)
            .field("failures_per_minute_per_user", failures_per_minute_per_user)
            .field("ipv6_prefix_length", ipv6_prefix_length)
            .field("shutdown_grace_seconds", shutdown_grace_seconds)
            .field("threads", threads)
            .finish()
    }
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            address,
            tls,
            server_name,
            ca_file,
            login,
            master_user,
            master_password,
            master_password_file,
        } = self;
        formatter
            .debug_struct("BackendConfig")
            .field("address", address)
            .field("tls", tls)
            .field("server_name", server_name)
            .field("ca_file", ca_file)
            .field("login", login)
            .field("master_user", master_user)
            .field("master_password", &master_password.as_ref().map(|_| REDACTED))
            .field("master_password_file", master_password_file)
            .finish()
    }
}

/// Why a front-door configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration key '{key}': {message}")]
pub struct DoorConfigError {
    /// The key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl DoorConfigError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl DoorConfig {
    /// Checks what types cannot: TLS files present when TLS is on, plain text only on loopback,
    /// a usable user template and back-end credentials.
    pub fn validate(&self, section: &str) -> Result<(), DoorConfigError> {
        let key = |name: &str| format!("{section}.{name}");
        validate_listener(section, &self.listen, self.tls, &self.certificate, &self.private_key)?;
        validate_user_template(section, &self.user)?;
        if self.user.contains("{local}")
            && !self.user.contains("{domain}")
            && self.domains.is_empty()
        {
            return Err(DoorConfigError::new(
                key("domains"),
                "user = \"{local}\" drops the domain: list the mail domains this door serves",
            ));
        }
        let backend = &self.backend;
        if backend.login == LoginMode::Master
            && (backend.master_user.is_none()
                || (backend.master_password.is_none() && backend.master_password_file.is_none()))
        {
            return Err(DoorConfigError::new(
                key("backend.master_user"),
                "login = \"master\" needs master_user and master_password (or master_password_file)",
            ));
        }
        if backend.login == LoginMode::Xclient && section != "smtp" {
            return Err(DoorConfigError::new(
                key("backend.login"),
                "xclient is for SMTP back ends only",
            ));
        }
        if let Some(path) = unix_socket(&backend.address) {
            if !std::path::Path::new(path).is_absolute() {
                return Err(DoorConfigError::new(
                    key("backend.address"),
                    "a UNIX socket needs an absolute path: unix:/path",
                ));
            }
            if backend.tls != TlsMode::None {
                return Err(DoorConfigError::new(
                    key("backend.tls"),
                    "a UNIX socket never leaves the machine: leave tls out",
                ));
            }
        } else if backend
            .address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            return Err(DoorConfigError::new(
                key("backend.address"),
                "must be host:port or unix:/path",
            ));
        }
        Ok(())
    }

    /// Whether a client that said OAUTHBEARER `host=host` reached this door (RFC 7628 §3.2: the
    /// host the client connected to, so that a token sent to one server cannot be replayed at
    /// another that trusts the same issuer and audience).
    pub fn accepts_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.host_names.is_empty() {
            return url::Url::parse(&self.resource).ok().and_then(|url| {
                url.host_str().map(|own| {
                    own.trim_start_matches('[').trim_end_matches(']').eq_ignore_ascii_case(host)
                })
            }) == Some(true);
        }
        self.host_names.iter().any(|name| name.eq_ignore_ascii_case(host))
    }

    /// Whether a client that said OAUTHBEARER `port=port` reached this door (RFC 7628 §3.2).
    pub fn accepts_port(&self, port: u16) -> bool {
        if self.ports.is_empty() {
            return port == self.listen.port()
                || url::Url::parse(&self.resource)
                    .ok()
                    .and_then(|url| url.port_or_known_default())
                    == Some(port)
                || default_port(&self.resource) == Some(port);
        }
        self.ports.contains(&port)
    }

    /// The back-end user name for a token subject, or `None` when the subject's domain is not
    /// one of `domains` (when they are listed).
    pub fn backend_user(&self, subject: &str) -> Option<String> {
        let domain = subject.rsplit_once('@').map_or("", |(_, domain)| domain);
        if !self.domains.is_empty()
            && !self.domains.iter().any(|served| served.eq_ignore_ascii_case(domain))
        {
            return None;
        }
        Some(user_from_template(&self.user, subject))
    }
}

/// The port a mail resource's scheme implies when it names none (the `url` crate knows only the
/// web's schemes): the table the issuer compares resource identifiers by
/// ([`letterlock_protocol::resource::default_port`]), so that a door and the issuer agree.
fn default_port(resource: &str) -> Option<u16> {
    let url = url::Url::parse(resource).ok()?;
    if url.port().is_some() {
        return None;
    }
    letterlock_protocol::resource::default_port(url.scheme())
}

/// The path of a back end's UNIX socket, when `address` names one (`unix:/path`).
pub fn unix_socket(address: &str) -> Option<&str> {
    address.strip_prefix("unix:")
}

/// Plain text only on loopback; TLS needs a certificate and a key.
fn validate_listener(
    section: &str,
    listen: &SocketAddr,
    tls: TlsMode,
    certificate: &Option<PathBuf>,
    private_key: &Option<PathBuf>,
) -> Result<(), DoorConfigError> {
    match tls {
        TlsMode::None if !listen.ip().is_loopback() => Err(DoorConfigError::new(
            format!("{section}.tls"),
            "plain text is allowed only on loopback addresses; use starttls or implicit",
        )),
        TlsMode::Starttls | TlsMode::Implicit if certificate.is_none() || private_key.is_none() => {
            Err(DoorConfigError::new(
                format!("{section}.certificate"),
                "TLS needs certificate and private_key",
            ))
        }
        _ => Ok(()),
    }
}

fn validate_user_template(section: &str, template: &str) -> Result<(), DoorConfigError> {
    if template.contains('{') {
        Ok(())
    } else {
        Err(DoorConfigError::new(
            format!("{section}.user"),
            "the template must use {sub}, {local} or {domain}",
        ))
    }
}

/// `{sub}`, `{local}` and `{domain}` (the parts around the last `@`) of a token subject.
fn user_from_template(template: &str, subject: &str) -> String {
    let (local, domain) = subject.rsplit_once('@').unwrap_or((subject, ""));
    template.replace("{sub}", subject).replace("{local}", local).replace("{domain}", domain)
}

/// `[[dav]]`: an HTTP front door (RFC 9728, RFC 6750, RFC 9449) in front of a CardDAV and
/// CalDAV server, or of any HTTP mail API (JMAP) with other scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DavConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// TLS towards clients: `implicit` (HTTPS) or `none` (loopback only).
    #[serde(default)]
    pub tls: TlsMode,
    /// The certificate chain (PEM), for `implicit`.
    pub certificate: Option<PathBuf>,
    /// The private key (PEM), for `implicit`.
    pub private_key: Option<PathBuf>,
    /// The resource identifier (RFC 8707, RFC 9728 `resource`): the https URL clients use, for
    /// example `https://dav.example.com`. DPoP proofs name URLs under it (`htu`).
    pub resource: String,
    /// The scopes this door serves (the metadata's `scopes_supported`): a token needs at least
    /// one, and each request the one for what it touches (contacts for an address book,
    /// calendars for a calendar, every one where the door cannot tell).
    #[serde(default = "dav_scopes")]
    pub scopes: Vec<String>,
    /// Paths that need a scope besides what their collection needs: the first rule whose prefix
    /// matches (whatever the case) adds its scope.
    #[serde(default)]
    pub paths: Vec<PathScope>,
    /// The back-end user name made from the token's `sub` (as for the mail doors).
    #[serde(default = "sub_template")]
    pub user: String,
    /// The server behind the door: `http://host:port`, reachable only by the door (it trusts
    /// the user header).
    pub backend: String,
    /// The header that tells the back end the user (Radicale's `http_x_remote_user` reads
    /// `X-Remote-User`). A client's own copy of it is removed.
    #[serde(default = "remote_user_header")]
    pub user_header: String,
    /// The largest request body passed on, in bytes.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: u64,
    /// The largest request head (request line and headers), in bytes.
    #[serde(default = "max_header_bytes")]
    pub max_header_bytes: usize,
    /// Where bodies of unknown length too large for memory wait before they go on (unlinked
    /// files); the system's temporary directory by default.
    #[serde(default)]
    pub spool_directory: Option<PathBuf>,
    /// The most those waiting bodies may take on disk together (503 with `Retry-After` beyond).
    #[serde(default = "max_spool_bytes")]
    pub max_spool_bytes: u64,
    /// A connection with no request in flight for this long is closed (HTTP/2 with GOAWAY).
    #[serde(default = "dav_idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,
}

/// `[[dav.paths]]`: one path rule. `*` in `prefix` stands for one whole path segment, so
/// `/*/calendar/` matches `/ann%40example.com/calendar/event.ics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathScope {
    /// The path prefix, segment by segment (after percent-decoding).
    pub prefix: String,
    /// The scope requests under it need.
    pub scope: String,
}

fn dav_scopes() -> Vec<String> {
    vec![scope::CONTACTS.to_owned(), scope::CALENDARS.to_owned()]
}

fn remote_user_header() -> String {
    "X-Remote-User".to_owned()
}

fn max_body_bytes() -> u64 {
    64 * 1024 * 1024
}

fn max_header_bytes() -> usize {
    16 * 1024
}

fn max_spool_bytes() -> u64 {
    1024 * 1024 * 1024
}

fn dav_idle_timeout_seconds() -> u64 {
    60
}

impl DavConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), DoorConfigError> {
        let key = |name: &str| format!("dav.{name}");
        validate_listener("dav", &self.listen, self.tls, &self.certificate, &self.private_key)?;
        if self.tls == TlsMode::Starttls {
            return Err(DoorConfigError::new(key("tls"), "HTTP has no STARTTLS: use implicit"));
        }
        validate_user_template("dav", &self.user)?;
        let resource = url::Url::parse(&self.resource).ok();
        if !resource
            .as_ref()
            .is_some_and(|url| matches!(url.scheme(), "https" | "http") && url.host_str().is_some())
            || self.resource.contains(['?', '#'])
        {
            return Err(DoorConfigError::new(
                key("resource"),
                "must be an https URL without query or fragment",
            ));
        }
        if !self.backend.starts_with("http://")
            || url::Url::parse(&self.backend)
                .ok()
                .and_then(|url| url.host_str().map(str::len))
                .is_none()
        {
            return Err(DoorConfigError::new(key("backend"), "must be an http://host:port URL"));
        }
        let header = self.user_header.to_ascii_lowercase();
        if header.is_empty()
            || !header.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            || ["authorization", "dpop", "host", "cookie", "x-forwarded-for"]
                .contains(&header.as_str())
        {
            return Err(DoorConfigError::new(key("user_header"), "must be a plain header name"));
        }
        if self.scopes.is_empty() {
            return Err(DoorConfigError::new(key("scopes"), "name at least one scope"));
        }
        if let Some(rule) = self.paths.iter().find(|rule| !rule.prefix.starts_with('/')) {
            return Err(DoorConfigError::new(
                key("paths"),
                format!("prefix '{}' must start with /", rule.prefix),
            ));
        }
        if self.max_header_bytes < 8192 {
            return Err(DoorConfigError::new(key("max_header_bytes"), "must be at least 8192"));
        }
        if self.idle_timeout_seconds == 0 {
            return Err(DoorConfigError::new(key("idle_timeout_seconds"), "must be at least 1"));
        }
        if self.spool_directory.as_ref().is_some_and(|directory| !directory.is_absolute()) {
            return Err(DoorConfigError::new(key("spool_directory"), "must be an absolute path"));
        }
        Ok(())
    }

    /// The back-end user name for a token subject.
    pub fn backend_user(&self, subject: &str) -> String {
        user_from_template(&self.user, subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door(text: &str) -> DoorConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn user_templates() {
        let mut config = door(
            "listen = \"127.0.0.1:1143\"\nresource = \"imap://x\"\n[backend]\naddress = \"127.0.0.1:143\"\nlogin = \"token\"\n",
        );
        assert_eq!(config.backend_user("ann@example.com").unwrap(), "ann@example.com");
        config.user = "{domain}/{local}".into();
        assert_eq!(config.backend_user("ann@example.com").unwrap(), "example.com/ann");
        assert!(config.validate("imap").is_ok());
        // Finding 18 of the review: {local} alone would merge ann@a.example and ann@b.example.
        config.user = "{local}".into();
        assert_eq!(config.validate("imap").unwrap_err().key, "imap.domains");
        config.domains = vec!["Example.com".into()];
        assert!(config.validate("imap").is_ok());
        assert_eq!(config.backend_user("ann@example.com").unwrap(), "ann");
        assert_eq!(config.backend_user("ann@b.example"), None);
    }

    /// Issue 14: RFC 7628 §3.2's `host` and `port` are checked by default against the door's own.
    #[test]
    fn sasl_host_and_port_default_to_the_doors_own() {
        let mut config = door(
            "listen = \"127.0.0.1:1993\"\nresource = \"imaps://Mail.Example.com\"\n[backend]\naddress = \"127.0.0.1:143\"\nlogin = \"token\"\n",
        );
        assert!(config.accepts_host("mail.example.com"));
        assert!(!config.accepts_host("mail.example.org") && !config.accepts_host(""));
        assert!(config.accepts_port(1993) && config.accepts_port(993));
        assert!(!config.accepts_port(143) && !config.accepts_port(995));
        config.resource = "imap://[::1]:1143".into();
        assert!(config.accepts_host("::1") && config.accepts_host("[::1]"));
        assert!(config.accepts_port(1143) && !config.accepts_port(143));
        config.resource = "smtp://127.0.0.1".into();
        assert!(config.accepts_port(587) && !config.accepts_port(25));
        // Configured lists replace the defaults.
        config.host_names = vec!["imap.example.com".into()];
        config.ports = vec![993];
        assert!(config.accepts_host("IMAP.example.com") && !config.accepts_host("127.0.0.1"));
        assert!(config.accepts_port(993) && !config.accepts_port(1993));
    }

    #[test]
    fn plain_text_only_on_loopback_and_master_needs_credentials() {
        let public = door(
            "listen = \"0.0.0.0:143\"\nresource = \"imap://x\"\n[backend]\naddress = \"127.0.0.1:143\"\nlogin = \"token\"\n",
        );
        assert_eq!(public.validate("imap").unwrap_err().key, "imap.tls");
        let master = door(
            "listen = \"127.0.0.1:143\"\nresource = \"imap://x\"\n[backend]\naddress = \"127.0.0.1:143\"\n",
        );
        assert_eq!(master.validate("imap").unwrap_err().key, "imap.backend.master_user");
    }

    #[test]
    fn back_end_addresses() {
        let with = |address: &str, tls: &str| {
            door(&format!(
                "listen = \"127.0.0.1:143\"\nresource = \"imap://x\"\n[backend]\naddress = \"{address}\"\ntls = \"{tls}\"\nlogin = \"token\"\n"
            ))
            .validate("imap")
            .map_err(|error| error.key)
        };
        assert_eq!(with("127.0.0.1:143", "none"), Ok(()));
        assert_eq!(with("[::1]:143", "implicit"), Ok(()));
        assert_eq!(with("unix:/run/dovecot/imap-door", "none"), Ok(()));
        assert_eq!(with("unix:run/imap", "none"), Err("imap.backend.address".into()));
        assert_eq!(with("unix:/run/imap", "starttls"), Err("imap.backend.tls".into()));
        assert_eq!(with("mail.example.com", "none"), Err("imap.backend.address".into()));
        assert_eq!(unix_socket("unix:/run/imap"), Some("/run/imap"));
        assert_eq!(unix_socket("127.0.0.1:143"), None);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let door = door(
            "listen = \"127.0.0.1:1143\"\nresource = \"imap://x\"\n[backend]\naddress = \"127.0.0.1:143\"\nmaster_user = \"letterlock\"\nmaster_password = \"master-secret\"\n",
        );
        let gateway: GatewayConfig =
            toml::from_str("client_id = \"gw\"\nsecret = \"feed-secret\"").unwrap();
        let shown = format!("{door:?} {gateway:?}");
        assert!(!shown.contains("master-secret") && !shown.contains("feed-secret"), "{shown}");
        assert!(shown.contains("letterlock") && shown.contains("\"gw\""), "{shown}");
    }
}
