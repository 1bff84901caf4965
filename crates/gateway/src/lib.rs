//! Letterlock's front doors: IMAP, SMTP and POP3 listeners that take SASL OAUTHBEARER and
//! XOAUTH2 (RFC 7628) in front of the mail server a provider already runs, log in to it as the
//! token's user, and relay the session; and an HTTP door for CardDAV and CalDAV (RFC 9728,
//! RFC 6750, RFC 9449) in front of a DAV server.
//!
//! - [`authority`]: the issuer's keys (JWKS, cached and refetched on an unknown `kid`), the
//!   revocation feed, and the live sessions of each grant, closed when it is revoked;
//! - [`door`]: what the protocols share: listener, limits, token check, back-end connection;
//! - [`prelogin`]: what the pre-login state machines share: the actions they ask for, the
//!   SASL exchange, and how it ended; [`door::drive`] is the one loop that does their I/O;
//! - [`imap`], [`smtp`], [`pop3`]: each protocol's pre-login machine (`machine`) and its
//!   back-end login;
//! - [`relay`]: bytes both ways after login, ended at a response boundary with the protocol's
//!   farewell;
//! - [`commands`]: the SMTP client's stream after login, read as commands so that `XCLIENT`,
//!   `XFORWARD` and a second `AUTH` never reach the back end;
//! - [`dav`]: the HTTP door: resource metadata, bearer and DPoP checks, path scopes, the
//!   reverse proxy with the user in a trusted header;
//! - [`config`]: `[gateway]`, `[[imap]]`, `[[smtp]]`, `[[pop3]]`, `[[dav]]`.
//!
//! A [`Gateway`] runs inside `letterlock serve` next to the authorization server, or alone as
//! `letterlock gateway`; either way it talks to the issuer over HTTP(S) only: metadata, JWKS and
//! the revocation feed.
#![forbid(unsafe_code)]

pub mod authority;
pub mod commands;
pub mod config;
pub mod dav;
pub mod door;
pub mod imap;
pub mod limits;
pub mod pop3;
pub mod prelogin;
pub mod relay;
pub mod smtp;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use letterlock_protocol::address::Ipv6Prefix;
use letterlock_protocol::issuer::Issuer;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::authority::{Audience, Authority, IssuerError};
use crate::config::{DavConfig, DoorConfig, DoorConfigError, GatewayConfig};
use crate::dav::DavDoor;
use crate::door::{Door, Protocol, Shared};
use crate::limits::FailureCounter;
use letterlock_protocol::address::ConnectionCounter;

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

/// `count` listening sockets on one address, sharing it with `SO_REUSEPORT` so the kernel
/// spreads new connections over them. A plain bind first makes sure nothing else listens there
/// (sockets with `SO_REUSEPORT` would otherwise quietly share the port with another instance)
/// and fixes the port when `address` has port 0.
fn bind_shared(
    address: SocketAddr,
    count: usize,
) -> Result<Vec<std::net::TcpListener>, GatewayError> {
    let failed =
        |source| GatewayError::Io { context: format!("cannot listen on {address}"), source };
    let address = std::net::TcpListener::bind(address)
        .and_then(|probe| probe.local_addr())
        .map_err(failed)?;
    (0..count)
        .map(|_| {
            let socket = match address {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }?;
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(address)?;
            socket.listen(1024)?.into_std()
        })
        .collect::<std::io::Result<_>>()
        .map_err(failed)
}

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Running front doors.
#[derive(Debug)]
pub struct Gateway {
    /// The mail doors, each with a listening socket per door thread.
    doors: Vec<(Arc<Door>, Vec<std::net::TcpListener>)>,
    dav_doors: Vec<(Arc<DavDoor>, TcpListener)>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<u8>,
}

/// Shutdown stages: 0 running, 1 draining (no new connections or logins), 2 closing sessions,
/// 3 stopped (the door threads end).
pub(crate) const DRAINING: u8 = 1;
pub(crate) const CLOSING: u8 = 2;
const STOPPED: u8 = 3;

impl Gateway {
    /// Connects to the issuer (metadata and keys) and opens every listener.
    pub async fn start(issuer: Issuer, config: FrontDoors) -> Result<Self, GatewayError> {
        Self::start_with_clock(issuer, config, system_clock).await
    }

    /// [`Gateway::start`] with another clock (seconds since the epoch) for token lifetimes,
    /// failure windows and revocations, so that tests can be exact.
    pub async fn start_with_clock(
        issuer: Issuer,
        config: FrontDoors,
        clock: fn() -> i64,
    ) -> Result<Self, GatewayError> {
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
        let ipv6_prefix = Ipv6Prefix::new(settings.ipv6_prefix_length).ok_or_else(|| {
            GatewayError::Config("gateway.ipv6_prefix_length: must be between 1 and 128".into())
        })?;
        let (shutdown, shutdown_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            authority,
            settings,
            ipv6_prefix,
            connections: Arc::new(ConnectionCounter::default()),
            failures: FailureCounter::default(),
            clock,
            shutdown: shutdown_rx,
        });
        let threads = match shared.settings.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            threads => threads,
        };
        let mut doors = Vec::new();
        for (protocol, door_config) in config.doors() {
            let door = Door::new(protocol, door_config.clone(), shared.clone())?;
            doors.push((Arc::new(door), bind_shared(door_config.listen, threads)?));
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
            .filter_map(|(door, listeners)| {
                Some((door.protocol, listeners.first()?.local_addr().ok()?))
            })
            .collect()
    }

    /// Serves until `shutdown` completes; then stops accepting, gives open sessions the grace
    /// period to end, and closes the rest with the protocol's farewell.
    ///
    /// The mail doors run on their own threads, each a single-threaded event loop with its own
    /// listening socket on every door: a session's two connections stay on one thread, with no
    /// hand-offs between threads. The DAV doors and the revocation feed run on the caller's
    /// runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let feed =
            tokio::spawn(self.shared.authority.clone().follow_revocations(self.shared.clock));
        for (door, listeners) in &self.doors {
            tracing::info!(
                protocol = door.protocol.section(),
                address = %listeners.first().and_then(|listener| listener.local_addr().ok()).map_or(door.config.listen, |address| address),
                resource = door.config.resource,
                threads = listeners.len(),
                "front door listening"
            );
        }
        let threads = Self::spawn_door_threads(self.doors, &self.shutdown);
        let mut tasks = Vec::new();
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
        let _ = self.shutdown.send(STOPPED);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        feed.abort();
        for task in tasks {
            task.abort();
        }
    }

    /// Starts one thread per listening socket of the mail doors; each serves its share of every
    /// door until the gateway stops.
    fn spawn_door_threads(
        doors: Vec<(Arc<Door>, Vec<std::net::TcpListener>)>,
        shutdown: &watch::Sender<u8>,
    ) -> Vec<std::thread::JoinHandle<()>> {
        let count = doors.first().map_or(0, |(_, listeners)| listeners.len());
        let mut shares: Vec<Vec<(Arc<Door>, std::net::TcpListener)>> =
            (0..count).map(|_| Vec::new()).collect();
        for (door, listeners) in doors {
            for (share, listener) in shares.iter_mut().zip(listeners) {
                share.push((door.clone(), listener));
            }
        }
        let mut threads = Vec::with_capacity(count);
        for (index, doors) in shares.into_iter().enumerate() {
            let mut stop = shutdown.subscribe();
            let spawned = std::thread::Builder::new()
                .name(format!("letterlock-doors-{index}"))
                .spawn(move || {
                    let runtime =
                        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(runtime) => runtime,
                            Err(error) => {
                                tracing::error!(%error, "cannot start a front-door thread");
                                return;
                            }
                        };
                    runtime.block_on(async move {
                        for (door, listener) in doors {
                            let listener = match TcpListener::from_std(listener) {
                                Ok(listener) => listener,
                                Err(error) => {
                                    tracing::error!(%error, "cannot use a listening socket");
                                    continue;
                                }
                            };
                            match door.protocol {
                                Protocol::Imap => tokio::spawn(door.serve(listener, imap::session)),
                                Protocol::Smtp => tokio::spawn(door.serve(listener, smtp::session)),
                                Protocol::Pop3 => tokio::spawn(door.serve(listener, pop3::session)),
                            };
                        }
                        let _ = stop.wait_for(|stage| *stage >= STOPPED).await;
                    });
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(error) => tracing::error!(%error, "cannot start a front-door thread"),
            }
        }
        threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn door_threads_share_one_port_that_nothing_else_can_take() {
        let listeners = bind_shared("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let addresses: Vec<SocketAddr> =
            listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
        assert_ne!(addresses[0].port(), 0);
        assert!(addresses.iter().all(|address| *address == addresses[0]), "{addresses:?}");
        // Another gateway (or anything else) on the same port is refused, not let in to share it.
        let taken = bind_shared(addresses[0], 2).unwrap_err();
        assert!(taken.to_string().contains("cannot listen"), "{taken}");
        assert!(std::net::TcpListener::bind(addresses[0]).is_err());
    }
}
