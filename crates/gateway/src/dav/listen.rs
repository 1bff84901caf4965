//! The listener and each connection's plumbing: TLS (through the doors' shared accept loop),
//! HTTP/1.1 and HTTP/2 with their header limits, the idle timer, and a graceful close on
//! shutdown. Each request goes to [`DavDoor::handle`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::DavDoor;
use super::idle::{Activity, Tracked};
use crate::stream::Stream;

impl DavDoor {
    /// Accepts connections until shutdown; open connections finish their requests.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let door = self.clone();
        let shared = self.shared.clone();
        shared
            .serve(listener, self.acceptor.clone(), move |stream, peer| {
                door.clone().connection(stream, peer)
            })
            .await;
    }

    async fn connection(self: Arc<Self>, stream: Stream, peer: SocketAddr) {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.login_timeout())
            .max_buf_size(self.config.max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.config.max_header_bytes).unwrap_or(u32::MAX));
        let activity = Activity::new();
        let door = self.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request| {
            let (door, in_flight) = (door.clone(), requests.begin());
            async move {
                let response = door.handle(request, peer).await;
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        let idle = Duration::from_secs(self.config.idle_timeout_seconds.max(1));
        tokio::select! {
            _ = connection.as_mut() => return,
            () = self.shared.shutting_down() => connection.as_mut().graceful_shutdown(),
            () = activity.idle_for(idle) => {
                tracing::debug!(%peer, "idle DAV connection closed");
                connection.as_mut().graceful_shutdown();
            }
        }
        let grace = Duration::from_secs(self.shared.settings.shutdown_grace_seconds.max(1));
        let _ = tokio::time::timeout(grace, connection).await;
    }
}
