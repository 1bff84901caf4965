//! The HTTP listener: plain or TLS (rustls), HTTP/1.1 and HTTP/2, a header read timeout, the
//! peer address for rate limits, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::ServerError;
use crate::config::TlsConfig;

/// The client's address, put in every request's extensions: the connection's peer, or the
/// address a trusted proxy forwarded (see [`crate::proxy`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

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

/// Serves the router on a bound listener until `shutdown` completes, then lets open
/// connections finish for up to ten seconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    serve_behind(listener, router, tls, header_read_timeout, Vec::new(), shutdown).await;
}

/// [`serve`], believing `X-Forwarded-For` from the `trusted_proxies`.
pub async fn serve_behind(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    trusted_proxies: Vec<crate::proxy::Cidr>,
    shutdown: impl Future<Output = ()>,
) {
    let trusted_proxies = Arc::new(trusted_proxies);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        let _ = stream.set_nodelay(true);
        let trusted = trusted_proxies.clone();
        let service =
            router.clone().map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request: Request = request.map(axum::body::Body::new);
                let client = crate::proxy::client_address(peer.ip(), request.headers(), &trusted);
                request
                    .extensions_mut()
                    .insert(PeerAddr(std::net::SocketAddr::new(client, peer.port())));
                request
            });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        match &tls {
            None => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                return tracing::debug!(%peer, %error, "TLS handshake failed");
                            }
                            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                        };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
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
