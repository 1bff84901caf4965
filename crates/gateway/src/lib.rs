//! Letterlock's front doors: IMAP, SMTP and POP3 listeners that take SASL OAUTHBEARER and
//! XOAUTH2 (RFC 7628) in front of the mail server a provider already runs, log in to it as the
//! token's user, and relay the session; and an HTTP door for CardDAV and CalDAV (RFC 9728,
//! RFC 6750, RFC 9449) in front of a DAV server.
//!
//! - [`authority`]: the issuer's keys (JWKS, cached and refetched on an unknown `kid`), the
//!   revocation feed, and the live sessions of each grant, closed when it is revoked;
//! - [`door`]: what the protocols share: listener, limits, token check, back-end connection;
//! - [`imap`], [`smtp`], [`pop3`]: the protocols before login, and each one's back-end login;
//! - [`relay`]: bytes both ways after login, ended at a response boundary with the protocol's
//!   farewell;
//! - [`dav`]: the HTTP door: resource metadata, bearer and DPoP checks, path scopes, the
//!   reverse proxy with the user in a trusted header;
//! - [`config`]: `[gateway]`, `[[imap]]`, `[[smtp]]`, `[[pop3]]`, `[[dav]]`.
//!
//! A [`Gateway`] runs inside `letterlock serve` next to the authorization server, or alone as
//! `letterlock gateway`; either way it talks to the issuer over HTTP(S) only: metadata, JWKS and
//! the revocation feed.
#![forbid(unsafe_code)]

pub mod authority;
pub mod config;
pub mod dav;
pub mod door;
pub mod imap;
pub mod limits;
pub mod pop3;
pub mod relay;
pub mod smtp;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use letterlock_protocol::issuer::Issuer;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::authority::{Audience, Authority, IssuerError};
use crate::config::{DavConfig, DoorConfig, DoorConfigError, GatewayConfig};
use crate::dav::DavDoor;
use crate::door::{Door, Protocol, Shared};
use crate::limits::{ConnectionCounter, FailureCounter};

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A configuration value is unusable.
    #[error("{0}")]
    Config(String),
    /// TLS files could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The issuer could not be reached.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// A listener could not be opened.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<DoorConfigError> for GatewayError {
    fn from(error: DoorConfigError) -> Self {
        Self::Config(error.to_string())
    }
}

/// The front doors' sections of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontDoors {
    /// `[gateway]`.
    pub gateway: GatewayConfig,
    /// `[[imap]]`.
    pub imap: Vec<DoorConfig>,
    /// `[[smtp]]`.
    pub smtp: Vec<DoorConfig>,
    /// `[[pop3]]`.
    pub pop3: Vec<DoorConfig>,
    /// `[[dav]]`.
    pub dav: Vec<DavConfig>,
}

impl FrontDoors {
    /// True when no front door is configured.
    pub fn is_empty(&self) -> bool {
        self.imap.is_empty() && self.smtp.is_empty() && self.pop3.is_empty() && self.dav.is_empty()
    }

    /// Every door with its protocol.
    pub fn doors(&self) -> impl Iterator<Item = (Protocol, &DoorConfig)> {
        let imap = self.imap.iter().map(|door| (Protocol::Imap, door));
        let smtp = self.smtp.iter().map(|door| (Protocol::Smtp, door));
        let pop3 = self.pop3.iter().map(|door| (Protocol::Pop3, door));
        imap.chain(smtp).chain(pop3)
    }

    /// The resources the doors serve.
    pub fn resources(&self) -> Vec<String> {
        let mut resources: Vec<String> = self
            .doors()
            .map(|(_, door)| door.resource.clone())
            .chain(self.dav.iter().map(|door| door.resource.clone()))
            .collect();
        resources.sort();
        resources.dedup();
        resources
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(address).await.map_err(|source| GatewayError::Io {
        context: format!("cannot listen on {address}"),
        source,
    })
}

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Running front doors.
#[derive(Debug)]
pub struct Gateway {
    doors: Vec<(Arc<Door>, TcpListener)>,
    dav_doors: Vec<(Arc<DavDoor>, TcpListener)>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<u8>,
}

/// Shutdown stages: 0 running, 1 draining (no new connections or logins), 2 closing sessions.
pub(crate) const DRAINING: u8 = 1;
pub(crate) const CLOSING: u8 = 2;

impl Gateway {
    /// Connects to the issuer (metadata and keys) and opens every listener.
    pub async fn start(issuer: Issuer, config: FrontDoors) -> Result<Self, GatewayError> {
        let settings = config.gateway.clone();
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(45))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.issuer_ca_file {
            for certificate in tls::certificates(path)? {
                let certificate =
                    reqwest::Certificate::from_der(certificate.as_ref()).map_err(|error| {
                        GatewayError::Config(format!("gateway.issuer_ca_file: {error}"))
                    })?;
                http = http.add_root_certificate(certificate);
            }
        }
        let http =
            http.build().map_err(|error| GatewayError::Config(format!("HTTP client: {error}")))?;
        let audiences =
            config
                .doors()
                .map(|(_, door)| Audience {
                    resource: door.resource.clone(),
                    accept_jwt_typ: door.accept_jwt_typ,
                })
                .chain(config.dav.iter().map(|door| Audience {
                    resource: door.resource.clone(),
                    accept_jwt_typ: false,
                }))
                .collect();
        let credentials = settings.client_id.clone().zip(settings.secret.clone());
        let authority = Authority::connect(issuer, http, audiences, credentials).await?;
        let (shutdown, shutdown_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            authority,
            settings,
            connections: Arc::new(ConnectionCounter::default()),
            failures: FailureCounter::default(),
            clock: system_clock,
            shutdown: shutdown_rx,
        });
        let mut doors = Vec::new();
        for (protocol, door_config) in config.doors() {
            let door = Door::new(protocol, door_config.clone(), shared.clone())?;
            let listener = bind(door_config.listen).await?;
            doors.push((Arc::new(door), listener));
        }
        let mut dav_doors = Vec::new();
        for dav_config in &config.dav {
            let door = DavDoor::new(dav_config.clone(), shared.clone())?;
            let listener = bind(dav_config.listen).await?;
            dav_doors.push((Arc::new(door), listener));
        }
        Ok(Self { doors, dav_doors, shared, shutdown })
    }

    /// The listeners' addresses (useful with port 0).
    pub fn local_addresses(&self) -> Vec<(Protocol, SocketAddr)> {
        self.doors
            .iter()
            .filter_map(|(door, listener)| Some((door.protocol, listener.local_addr().ok()?)))
            .collect()
    }

    /// Serves until `shutdown` completes; then stops accepting, gives open sessions the grace
    /// period to end, and closes the rest with the protocol's farewell.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let feed = tokio::spawn(self.shared.authority.clone().follow_revocations(system_clock));
        let mut tasks = Vec::new();
        for (door, listener) in self.doors {
            tracing::info!(
                protocol = door.protocol.section(),
                address = %listener.local_addr().map_or(door.config.listen, |address| address),
                resource = door.config.resource,
                "front door listening"
            );
            let task = match door.protocol {
                Protocol::Imap => tokio::spawn(door.serve(listener, imap::session)),
                Protocol::Smtp => tokio::spawn(door.serve(listener, smtp::session)),
                Protocol::Pop3 => tokio::spawn(door.serve(listener, pop3::session)),
            };
            tasks.push(task);
        }
        for (door, listener) in self.dav_doors {
            tracing::info!(
                address = %listener.local_addr().map_or(door.config().listen, |address| address),
                resource = door.config().resource,
                backend = door.config().backend,
                "DAV front door listening"
            );
            tasks.push(tokio::spawn(door.serve(listener)));
        }
        shutdown.await;
        let _ = self.shutdown.send(DRAINING);
        let grace = Duration::from_secs(self.shared.settings.shutdown_grace_seconds);
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.connections.total() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.shutdown.send(CLOSING);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
        while self.shared.connections.total() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        feed.abort();
        for task in tasks {
            task.abort();
        }
    }
}
