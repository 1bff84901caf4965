//! The HTTP listener: plain or TLS (rustls), HTTP/1.1 and HTTP/2, a header read timeout, an
//! idle timeout, connection caps (in total and per address block), the peer address for rate
//! limits, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use letterlock_protocol::address::{AddressBlock, ConnectionCounter, Ipv6Prefix};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::ServerError;
use crate::config::{LimitsConfig, TlsConfig};
use crate::proxy::Cidr;

/// The client's address, put in every request's extensions: the connection's peer, or the
/// address a trusted proxy forwarded (see [`crate::proxy`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The client's IP address for per-address limits; without a [`PeerAddr`] (a router driven
/// without the listener) every request counts as `0.0.0.0`.
pub fn client_ip(peer: Option<axum::Extension<PeerAddr>>) -> std::net::IpAddr {
    peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |axum::Extension(PeerAddr(address))| {
        address.ip()
    })
}

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads a rustls server configuration from PEM files.
pub fn tls_acceptor(config: &TlsConfig) -> Result<TlsAcceptor, ServerError> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|error| ServerError::Tls(format!("{}: {error}", path.display())))
    };
    let certificates = CertificateDer::pem_slice_iter(&read(&config.certificate)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ServerError::Tls(format!("{}: {error}", config.certificate.display())))?;
    if certificates.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate found",
            config.certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&config.private_key)?)
        .map_err(|error| ServerError::Tls(format!("{}: {error}", config.private_key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ServerError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| ServerError::Tls(error.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// How the listener treats connections: timeouts, caps, and whose `X-Forwarded-For` to believe.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// The longest a client may take to send an HTTP/1.1 request head.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Open connections at once, in total.
    pub max_connections: u32,
    /// Open connections at once from one address block (not counted for trusted proxies,
    /// whose connections carry many clients).
    pub connections_per_address: u32,
    /// How IPv6 addresses are grouped into blocks.
    pub ipv6_prefix: Ipv6Prefix,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self::from_limits(&LimitsConfig::default(), Vec::new())
    }
}

impl ListenOptions {
    /// The options `[limits]` sets (values already checked by [`crate::AppState::new`];
    /// impossible ones fall back to their defaults here).
    pub fn from_limits(limits: &LimitsConfig, trusted_proxies: Vec<Cidr>) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_seconds.max(1)),
            idle_timeout: Duration::from_secs(limits.idle_timeout_seconds.max(1)),
            max_connections: limits.max_connections.max(1),
            connections_per_address: limits.connections_per_address.max(1),
            ipv6_prefix: Ipv6Prefix::new(limits.ipv6_prefix_length).unwrap_or_default(),
            trusted_proxies,
        }
    }
}

/// Serves the router on a bound listener until `shutdown` completes, then lets open
/// connections finish for up to ten seconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let options = ListenOptions { header_read_timeout, ..ListenOptions::default() };
    serve_with(listener, router, tls, options, shutdown).await;
}

/// [`serve`], believing `X-Forwarded-For` from the `trusted_proxies`.
pub async fn serve_behind(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    trusted_proxies: Vec<Cidr>,
    shutdown: impl Future<Output = ()>,
) {
    let options =
        ListenOptions { header_read_timeout, trusted_proxies, ..ListenOptions::default() };
    serve_with(listener, router, tls, options, shutdown).await;
}

/// [`serve`] with every option.
///
/// Connections are capped in total (a permit is taken before `accept`, so that beyond the cap
/// clients wait in the kernel's listen queue instead of costing a file descriptor) and per
/// address block (more are closed at once). A connection with no request in flight for
/// `idle_timeout` is closed gracefully (HTTP/2 GOAWAY, RFC 9113 §6.8): without that an HTTP/2
/// client could hold a connection for ever by sending nothing after its SETTINGS, since
/// `header_read_timeout` covers only HTTP/1.1.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    options: ListenOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    // Pings find peers that vanished while a request is in flight; the idle close below ends
    // connections that are alive but unused.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(options.idle_timeout)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    let options = Arc::new(options);
    let open = Arc::new(Semaphore::new(options.max_connections as usize));
    let per_address = Arc::new(ConnectionCounter::default());
    let (stopping, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let is_proxy = options.trusted_proxies.iter().any(|block| block.contains(peer.ip()));
        let slot = if is_proxy {
            None
        } else {
            let block = AddressBlock::of(peer.ip(), options.ipv6_prefix);
            match per_address.open(block, options.connections_per_address) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, %block, "too many connections from this address");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            options: options.clone(),
            stopped: stopped.clone(),
            peer,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            match tls {
                None => connection.run(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => connection.run(stream).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    let _ = stopping.send(true);
    // Every connection holds a permit until it ends: all of them back means all are closed.
    let all = open.acquire_many(options.max_connections);
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// How long an HTTP/2 peer has to answer a keep-alive ping.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// One accepted connection, before its protocol is known.
struct Connection {
    builder: Builder<TokioExecutor>,
    router: Router,
    options: Arc<ListenOptions>,
    stopped: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Connection {
    /// Serves HTTP/1.1 or HTTP/2 on the stream until the client leaves, the connection has been
    /// idle for `idle_timeout`, or the server stops; a connection asked to close gets
    /// [`SHUTDOWN_GRACE`] to finish what is in flight.
    async fn run<I>(self, stream: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self { builder, router, options, mut stopped, peer } = self;
        let activity = Arc::new(Activity::new());
        let service = {
            let activity = activity.clone();
            let trusted = options.clone();
            tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let busy = Busy::start(activity.clone());
                let mut request: Request = request.map(axum::body::Body::new);
                let client = crate::proxy::client_address(
                    peer.ip(),
                    request.headers(),
                    &trusted.trusted_proxies,
                );
                request.extensions_mut().insert(PeerAddr(SocketAddr::new(client, peer.port())));
                let router = router.clone();
                async move {
                    let response = router.oneshot(request).await;
                    drop(busy);
                    response
                }
            })
        };
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
        );
        tokio::pin!(connection);
        let mut closing: Option<tokio::time::Instant> = None;
        if *stopped.borrow() {
            connection.as_mut().graceful_shutdown();
            closing = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
        }
        loop {
            let idle_at = activity.idle_at(options.idle_timeout);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                _ = stopped.changed(), if closing.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                }
                () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                    if activity.is_idle(options.idle_timeout) {
                        tracing::debug!(%peer, "closing an idle connection");
                        connection.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                    }
                }
                () = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                    tracing::debug!(%peer, "a closing connection did not finish in time");
                    return;
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one started or ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<tokio::time::Instant>,
}

impl Activity {
    fn new() -> Self {
        Self { in_flight: AtomicUsize::new(0), last: Mutex::new(tokio::time::Instant::now()) }
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = tokio::time::Instant::now();
        }
    }

    fn last(&self) -> tokio::time::Instant {
        self.last.lock().map_or_else(|_| tokio::time::Instant::now(), |last| *last)
    }

    /// When the connection will have been idle for `timeout` if nothing happens meanwhile.
    fn idle_at(&self, timeout: Duration) -> tokio::time::Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::Instant::now() + timeout
        } else {
            self.last() + timeout
        }
    }

    fn is_idle(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.last().elapsed() >= timeout
    }
}

/// A request in flight; dropping it (when the response is ready) marks the connection active.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
