//! Idle connections. hyper closes an HTTP/1 connection that sends no request head within its
//! head timer, but has nothing for an HTTP/2 connection that opens, settles its SETTINGS and
//! then sits there holding a file descriptor. The door counts the requests each connection
//! has in flight (until their answers are sent or dropped) and closes it gracefully (GOAWAY for
//! HTTP/2) after `idle_timeout_seconds` with none.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Body, BoxError};

/// One connection's requests in flight and when the last one ended.
#[derive(Debug)]
pub(super) struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    /// A request begins; it ends when the guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                changed.await;
                continue;
            }
            let since = self.last.lock().map_or_else(|_| Instant::now(), |last| *last);
            tokio::select! {
                () = tokio::time::sleep_until(since + timeout) => {
                    if self.in_flight.load(Ordering::SeqCst) == 0 {
                        return;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// A request in flight on its connection.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last.lock() {
            *last = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// An answer's body that keeps its request in flight until it is sent or dropped.
pub(super) struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl Tracked {
    pub(super) fn new(body: Body, in_flight: InFlight) -> Self {
        Self { body, _in_flight: in_flight }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_in_flight() {
        let activity = Activity::new();
        let request = activity.begin();
        let idle = activity.idle_for(Duration::from_secs(2));
        let mut idle = std::pin::pin!(idle);
        // With a request in flight, no amount of time makes it idle.
        assert!(tokio::time::timeout(Duration::from_secs(60), idle.as_mut()).await.is_err());
        drop(request);
        let started = Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
