//! What IMAP, SMTP and POP3 front doors share: the listener, per-address limits, the token check
//! behind SASL, the connection to the back end, and [`drive`], the one loop that does a
//! connection's I/O before login for a protocol's [`Prelogin`] machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use letterlock_jose::access::AccessTokenClaims;
use letterlock_protocol::address::{AddressBlock, ConnectionCounter, Ipv6Prefix};
use letterlock_sasl::{BearerCredentials, ErrorChallenge, Mechanism};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::authority::Authority;
use crate::commands::SmtpCommands;
use crate::config::{DoorConfig, GatewayConfig, LoginMode, TlsMode};
use crate::limits::{FailureCounter, FailureKey};
use crate::prelogin::{Action, Prelogin, ReadError, Settings};
use crate::relay::{Boundaries, Ending, Limits};
use crate::stream::{LineError, LineStream, Stream};
use crate::{GatewayError, tls};
use tokio::io::AsyncWriteExt as _;

/// How long connecting to the back end may take.
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocols a front door speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP4rev1 / IMAP4rev2.
    Imap,
    /// SMTP submission.
    Smtp,
    /// POP3.
    Pop3,
}

impl Protocol {
    /// The configuration section's name.
    pub fn section(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Smtp => "smtp",
            Self::Pop3 => "pop3",
        }
    }
}

/// What every front door of a gateway shares.
#[derive(Debug)]
pub struct Shared {
    /// The issuer's keys and revocations.
    pub authority: Arc<Authority>,
    /// `[gateway]`.
    pub settings: GatewayConfig,
    /// `[gateway] ipv6_prefix_length`, checked.
    pub ipv6_prefix: Ipv6Prefix,
    /// Open connections per address.
    pub connections: Arc<ConnectionCounter>,
    /// Failed authentications per address and per user.
    pub failures: FailureCounter,
    /// Seconds since the epoch.
    pub clock: fn() -> i64,
    /// The shutdown stage ([`crate::DRAINING`], [`crate::CLOSING`]).
    pub shutdown: watch::Receiver<u8>,
}

impl Shared {
    /// The accept loop of every front door: until shutdown, takes a connection slot for the
    /// peer's address (over the limit: closed at once), makes the TLS handshake when `implicit`
    /// is given, and hands the stream to `session` in its own task.
    pub async fn serve<F, Fut>(
        self: Arc<Self>,
        listener: TcpListener,
        implicit: Option<TlsAcceptor>,
        session: F,
    ) where
        F: Fn(Stream, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let session = Arc::new(session);
        let mut shutdown = std::pin::pin!(self.shutting_down());
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let Some(slot) = self
                .connections
                .open(self.address_block(peer), self.settings.connections_per_address)
            else {
                tracing::info!(%peer, "too many connections from one address");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (implicit, session) = (implicit.clone(), session.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let stream = match &implicit {
                    Some(acceptor) => match tls::accept(acceptor, tcp).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                    },
                    None => Stream::Plain(tcp),
                };
                session(stream, peer).await;
            });
        }
    }

    /// The block of addresses that per-address limits count `peer` under (its IPv6 network).
    pub fn address_block(&self, peer: SocketAddr) -> AddressBlock {
        AddressBlock::of(peer.ip(), self.ipv6_prefix)
    }

    /// The line timeout before login.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.login_timeout_seconds.max(1))
    }

    /// Completes when the gateway starts shutting down: no new connections or logins.
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stage(crate::DRAINING)
    }

    /// Completes when the shutdown grace period is over: authenticated sessions close.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stage(crate::CLOSING)
    }

    fn stage(&self, stage: u8) -> impl Future<Output = ()> + Send + 'static {
        let mut shutdown = self.shutdown.clone();
        async move {
            if shutdown.wait_for(|current| *current >= stage).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// One front door, ready to serve.
pub struct Door {
    /// Its protocol.
    pub protocol: Protocol,
    /// Its configuration.
    pub config: DoorConfig,
    /// TLS towards clients.
    pub acceptor: Option<TlsAcceptor>,
    /// TLS towards the back end.
    pub connector: Option<TlsConnector>,
    /// The master user's password.
    pub master_password: Option<String>,
    /// What the doors share.
    pub shared: Arc<Shared>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Door")
            .field("protocol", &self.protocol)
            .field("listen", &self.config.listen)
            .field("resource", &self.config.resource)
            .finish_non_exhaustive()
    }
}

/// A client that proved who it is.
#[derive(Debug)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: AccessTokenClaims,
    /// The back-end user name.
    pub user: String,
    /// The token, for pass-through to the back end.
    pub token: letterlock_sasl::Secret<String>,
}

/// Why a token check failed.
#[derive(Debug)]
pub enum Failure {
    /// Send this RFC 7628 challenge, wait for the client's acknowledgement, then fail.
    Challenge(ErrorChallenge),
    /// Fail at once, with this reason (too many failures).
    Refuse(&'static str),
}

impl Door {
    /// Prepares a door: loads TLS files and the master password.
    pub fn new(
        protocol: Protocol,
        config: DoorConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, GatewayError> {
        let section = protocol.section();
        config.validate(section)?;
        let acceptor = match (&config.certificate, &config.private_key, config.tls) {
            (Some(certificate), Some(key), TlsMode::Starttls | TlsMode::Implicit) => {
                Some(tls::acceptor(certificate, key)?)
            }
            _ => None,
        };
        let connector = match config.backend.tls {
            TlsMode::None => None,
            _ => Some(tls::connector(config.backend.ca_file.as_deref())?),
        };
        let master_password =
            match (&config.backend.master_password, &config.backend.master_password_file) {
                (Some(password), _) => Some(password.clone()),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|error| {
                            GatewayError::Config(format!(
                                "{section}.backend.master_password_file: {}: {error}",
                                path.display()
                            ))
                        })?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                ),
                (None, None) => None,
            };
        Ok(Self { protocol, config, acceptor, connector, master_password, shared })
    }

    /// The challenge for a missing or refused token.
    pub fn challenge(&self, status: &str) -> ErrorChallenge {
        ErrorChallenge {
            status: status.into(),
            scope: Some(self.config.scope.clone()),
            openid_configuration: Some(self.shared.authority.discovery_url()),
        }
    }

    /// Checks OAUTHBEARER or XOAUTH2 credentials from `peer`.
    pub async fn authenticate(
        &self,
        credentials: BearerCredentials,
        peer: SocketAddr,
    ) -> Result<Authenticated, Failure> {
        let shared = &self.shared;
        let now = (shared.clock)();
        let Some(token) = credentials.token else {
            // RFC 7628 §4.3: an empty token asks where to get one; it is not an attack.
            return Err(Failure::Challenge(self.challenge("invalid_token")));
        };
        // Before the token is checked nothing names a user: a name the client claims (`a=`,
        // `user=`) is not counted against, or it would let anyone lock anyone out (issue 14,
        // point 3). The address pays for every failure; the user only for what a verified
        // token proves.
        let address = FailureKey::Address(self.shared.address_block(peer));
        let settings = &shared.settings;
        if shared.failures.exhausted(address, settings.failures_per_minute_per_address, now) {
            return Err(Failure::Refuse("too many failed authentications; try again later"));
        }
        let claims = match shared
            .authority
            .check(token.declassify(), &self.config.resource, &[&self.config.scope], now)
            .await
        {
            Ok(claims) => claims,
            Err(refusal) => {
                tracing::info!(%peer, reason = %refusal, "token refused");
                shared.failures.fail(address, now);
                return Err(Failure::Challenge(self.challenge(refusal.status())));
            }
        };
        let user = FailureKey::User(&claims.subject);
        if shared.failures.exhausted(user, settings.failures_per_minute_per_user, now) {
            return Err(Failure::Refuse("too many failed authentications; try again later"));
        }
        let fail = |status: &str| {
            shared.failures.fail(address, now);
            shared.failures.fail(user, now);
            Failure::Challenge(self.challenge(status))
        };
        if claims.jkt.is_some() {
            // RFC 9449 §7.1: a DPoP-bound token is good only with a proof of its key, and SASL
            // has no place for one; taken as a bearer token it would let a thief use it.
            tracing::info!(%peer, "a DPoP-bound token was offered as a bearer token");
            return Err(fail("invalid_token"));
        }
        if let Some(authzid) = &credentials.authzid
            && !authzid.eq_ignore_ascii_case(&claims.subject)
        {
            tracing::info!(%peer, "the authorization identity is not the token's subject");
            return Err(fail("invalid_token"));
        }
        let host_ok = credentials.host.as_deref().is_none_or(|host| self.config.accepts_host(host));
        let port_ok = credentials.port.is_none_or(|port| self.config.accepts_port(port));
        if !host_ok || !port_ok {
            tracing::info!(%peer, "the client named another host or port");
            return Err(fail("invalid_token"));
        }
        let Some(user) = self.config.backend_user(&claims.subject) else {
            tracing::info!(%peer, "the token's user is of a domain this door does not serve");
            return Err(fail("invalid_token"));
        };
        Ok(Authenticated { claims, user, token })
    }

    /// Logs a failed back-end login; one the back end refused also counts against the address.
    pub fn backend_failed(&self, peer: SocketAddr, user: &str, error: &BackendError) {
        match error {
            BackendError::Refused(text) => {
                tracing::warn!(%peer, user, back_end = text, "the back end refused the login");
                self.count_failure(peer);
            }
            BackendError::Busy(text) => {
                tracing::info!(%peer, user, back_end = text, "the back end declined the session");
            }
            BackendError::Unavailable(error) => {
                tracing::warn!(%peer, %error, "the back end is unavailable");
            }
        }
    }

    /// Counts a back-end login failure against the address (so a valid token for a user the
    /// back end does not know cannot be replayed endlessly).
    pub fn count_failure(&self, peer: SocketAddr) {
        let address = FailureKey::Address(self.shared.address_block(peer));
        self.shared.failures.fail(address, (self.shared.clock)());
    }

    /// Opens the connection to the back end: its UNIX socket, or TCP with implicit TLS if
    /// configured.
    pub async fn connect_backend(&self) -> std::io::Result<LineStream> {
        let connecting = async {
            let address = &self.config.backend.address;
            if let Some(path) = crate::config::unix_socket(address) {
                return Ok(Stream::Local(UnixStream::connect(path).await?));
            }
            let tcp = TcpStream::connect(address).await?;
            let _ = tcp.set_nodelay(true);
            match (self.config.backend.tls, &self.connector) {
                (TlsMode::Implicit, Some(connector)) => {
                    tls::connect(connector, &self.backend_name(), tcp).await
                }
                _ => Ok(Stream::Plain(tcp)),
            }
        };
        tokio::time::timeout(BACKEND_CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting"))?
            .map(LineStream::new)
    }

    /// Upgrades a back-end connection after its STARTTLS command succeeded.
    pub async fn backend_starttls(&self, stream: LineStream) -> std::io::Result<LineStream> {
        let Some(connector) = &self.connector else {
            return Err(std::io::Error::other("no TLS connector"));
        };
        let Stream::Plain(tcp) = stream.into_stream_for_tls() else {
            return Err(std::io::Error::other("TLS is already on"));
        };
        Ok(LineStream::new(tls::connect(connector, &self.backend_name(), tcp).await?))
    }

    /// The back end's certificate name.
    fn backend_name(&self) -> String {
        self.config.backend.server_name.clone().unwrap_or_else(|| {
            let address = &self.config.backend.address;
            let host = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host);
            host.trim_start_matches('[').trim_end_matches(']').to_owned()
        })
    }

    /// Whether the back end can be told the client's address: over TCP (Dovecot takes it from
    /// hosts in its `login_trusted_networks`); a UNIX socket has no addresses to override.
    pub fn forwards_client_address(&self) -> bool {
        crate::config::unix_socket(&self.config.backend.address).is_none()
    }

    /// Whether the back end wants the master user's PLAIN login.
    pub fn login_mode(&self) -> LoginMode {
        self.config.backend.login
    }

    /// The PLAIN response for the master-user login: authorization id = the user.
    pub fn master_plain(&self, user: &str) -> Vec<u8> {
        letterlock_sasl::plain::encode(
            Some(user),
            self.config.backend.master_user.as_deref().unwrap_or(""),
            self.master_password.as_deref().unwrap_or(""),
        )
    }

    /// What ends an authenticated session besides its connections.
    pub fn relay_limits<'a>(
        &self,
        session: &'a crate::authority::SessionGuard,
        expires_at: i64,
    ) -> Limits<'a> {
        let now = (self.shared.clock)();
        let left = (expires_at + self.shared.settings.session_grace_seconds as i64 - now).max(0);
        Limits {
            revoked: Box::pin(async {
                match session.revoked().await {
                    crate::authority::Revoked::Grant => Ending::Revoked,
                    crate::authority::Revoked::Token => Ending::TokenRevoked,
                }
            }),
            shutdown: Box::pin(self.shared.closing()),
            expires: tokio::time::Instant::now() + Duration::from_secs(left as u64),
            idle: Duration::from_secs(self.shared.settings.idle_timeout_seconds.max(1)),
        }
    }

    /// Accepts connections until shutdown, handing each to `session`.
    pub async fn serve<F, Fut>(self: Arc<Self>, listener: TcpListener, session: F)
    where
        F: Fn(Arc<Self>, Stream, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // The acceptor also serves STARTTLS; the handshake on connect is for implicit TLS only.
        let implicit = self.acceptor.clone().filter(|_| self.config.tls == TlsMode::Implicit);
        let door = self.clone();
        let shared = self.shared.clone();
        shared
            .serve(listener, implicit, move |stream, peer| session(door.clone(), stream, peer))
            .await;
    }

    /// Upgrades a client connection after STARTTLS.
    pub async fn client_starttls(&self, stream: LineStream) -> std::io::Result<LineStream> {
        let Some(acceptor) = &self.acceptor else {
            return Err(std::io::Error::other("no TLS configured"));
        };
        let Stream::Plain(tcp) = stream.into_stream_for_tls() else {
            return Err(std::io::Error::other("TLS is already on"));
        };
        Ok(LineStream::new(tls::accept(acceptor, tcp).await?))
    }

    /// True on a STARTTLS door before the upgrade: STARTTLS is offered, and authentication must
    /// wait for it.
    pub fn awaits_starttls(&self, stream: &LineStream) -> bool {
        self.config.tls == TlsMode::Starttls && !stream.is_tls()
    }

    /// Tells the client it is logged in (`first_words`, then whatever the back end already
    /// sent), registers the session with its grant, and relays until the session ends (with
    /// `commands`, reading the client's SMTP commands on the way: see [`crate::commands`]).
    pub async fn relay(
        &self,
        client: LineStream,
        backend: LineStream,
        authenticated: &Authenticated,
        first_words: &str,
        (mut boundaries, commands): (Boundaries, Option<SmtpCommands>),
        farewell: fn(Ending) -> Option<String>,
    ) -> Ending {
        let (mut client, to_backend) = client.into_parts();
        let (backend, from_backend) = backend.into_parts();
        if client.write_all(first_words.as_bytes()).await.is_err()
            || client.write_all(&from_backend).await.is_err()
            || client.flush().await.is_err()
        {
            return Ending::Closed;
        }
        boundaries.feed(&from_backend);
        let session = self.shared.authority.register(&authenticated.claims);
        let limits = self.relay_limits(&session, authenticated.claims.expires_at);
        crate::relay::relay(client, to_backend, backend, boundaries, commands, farewell, limits)
            .await
    }

    /// Logs in to the back end as the authenticated user, in the door's protocol: the
    /// connection and the text of the back end's success reply (empty for SMTP).
    async fn backend_login(
        &self,
        authenticated: &Authenticated,
        peer: SocketAddr,
    ) -> Result<(LineStream, String), BackendError> {
        match self.protocol {
            Protocol::Imap => crate::imap::backend_login(self, authenticated, peer).await,
            Protocol::Smtp => crate::smtp::backend_login(self, authenticated, peer)
                .await
                .map(|backend| (backend, String::new())),
            Protocol::Pop3 => crate::pop3::backend_login(self, authenticated, peer).await,
        }
    }

    /// Logs a token accepted, with the SASL mechanism that carried it.
    pub fn log_accepted(&self, peer: SocketAddr, user: &str, mechanism: Mechanism) {
        let (protocol, mechanism) = (self.protocol.section(), mechanism.as_str());
        tracing::info!(protocol, %peer, user, mechanism, "token accepted");
    }

    /// Logs how a session ended.
    pub fn log_ending(&self, peer: SocketAddr, user: &str, ending: Ending) {
        tracing::info!(protocol = self.protocol.section(), %peer, user, ?ending, "session ended");
    }
}

/// Why the back-end login failed.
#[derive(Debug)]
pub enum BackendError {
    /// The back end answered NO or BAD.
    Refused(String),
    /// The back end took the login but will not open this session now (a connection limit, the
    /// mailbox in use): its own response line, to pass on. Not the client's fault.
    Busy(String),
    /// It could not be reached or spoke nonsense.
    Unavailable(String),
}

impl From<std::io::Error> for BackendError {
    fn from(error: std::io::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<LineError> for BackendError {
    fn from(error: LineError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Runs one client connection: the pre-login machine `M` decides, this loop does the I/O (reads
/// with the login timeout, the TLS upgrade, the token check, the back-end login) and feeds the
/// results back, until the machine closes or hands over to the relay.
pub async fn drive<M: Prelogin>(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    let mut client = LineStream::new(stream);
    let shared = &door.shared;
    let mut machine = M::new(Settings {
        max_line_bytes: shared.settings.max_line_bytes,
        awaits_starttls: door.awaits_starttls(&client),
        issuer: shared.authority.issuer().to_string(),
        host_name: door.config.host_names.first().map_or("letterlock", String::as_str).to_owned(),
    });
    let mut authenticated: Option<Authenticated> = None;
    let mut backend: Option<LineStream> = None;
    let mut actions: std::collections::VecDeque<Action> = machine.start().into();
    while let Some(action) = actions.pop_front() {
        let next = match action {
            Action::Send(text) => {
                if client.send(text.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Action::ReadLine { max, until_shutdown } => {
                let read = tokio::select! {
                    read = client.read_line(max, shared.login_timeout()) => read,
                    () = shared.shutting_down(), if until_shutdown => {
                        actions.extend(machine.on_read_error(ReadError::ShuttingDown));
                        continue;
                    }
                };
                match read {
                    Ok(line) => machine.on_line(&line),
                    Err(error) => machine.on_read_error(read_error(&error)),
                }
            }
            Action::ReadLiteral(size) => {
                match client.read_exact(size, shared.login_timeout()).await {
                    Ok(bytes) => machine.on_literal(&bytes),
                    Err(error) => machine.on_read_error(read_error(&error)),
                }
            }
            Action::StartTls => match door.client_starttls(client).await {
                Ok(upgraded) => {
                    client = upgraded;
                    machine.on_tls()
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "STARTTLS failed");
                    return;
                }
            },
            Action::Authenticate(credentials) => {
                let mechanism = credentials.mechanism;
                match door.authenticate(credentials, peer).await {
                    Ok(proven) => {
                        door.log_accepted(peer, &proven.user, mechanism);
                        authenticated = Some(proven);
                        machine.on_checked(Ok(()))
                    }
                    Err(failure) => machine.on_checked(Err(failure)),
                }
            }
            Action::CountFailure => {
                door.count_failure(peer);
                continue;
            }
            Action::LogIn => {
                let Some(user) = &authenticated else { return };
                let result = match door.backend_login(user, peer).await {
                    Ok((connection, ok_text)) => {
                        backend = Some(connection);
                        Ok(ok_text)
                    }
                    Err(error) => {
                        door.backend_failed(peer, &user.user, &error);
                        Err(error)
                    }
                };
                machine.on_logged_in(result)
            }
            Action::Relay(first_words) => {
                let (Some(user), Some(backend)) = (&authenticated, backend.take()) else { return };
                let reading = machine.relay_reading();
                let ending =
                    door.relay(client, backend, user, &first_words, reading, M::farewell).await;
                door.log_ending(peer, &user.user, ending);
                return;
            }
            Action::Close => return,
        };
        actions.extend(next);
    }
}

fn read_error(error: &LineError) -> ReadError {
    match error {
        LineError::Timeout => ReadError::TimedOut,
        LineError::TooLong => ReadError::TooLong,
        LineError::Io(_) => ReadError::Closed,
    }
}
