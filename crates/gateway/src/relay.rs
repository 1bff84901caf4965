//! After login, the front door copies bytes both ways until either side closes, and closes the
//! session itself when its grant is revoked, its token has expired past the grace period, the
//! gateway shuts down, or nothing moves for too long.
//!
//! Closing must not cut a response in half: the server-to-client direction is scanned for
//! response boundaries (end of a line that does not announce an IMAP literal, or the end of a
//! literal), and the farewell line (`* BYE ...`, `421 ...`) is written only at one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::stream::Stream;

/// Bytes read at a time in each direction, at first and when quiet: two of these are most of an
/// idle session's memory.
const CHUNK: usize = 8 * 1024;
/// The buffer grows up to this while reads fill it (a large FETCH or APPEND).
const MAX_CHUNK: usize = 128 * 1024;

/// Grows a relay buffer while reads fill it, and shrinks it back when traffic is light.
fn adapt(buffer: &mut Vec<u8>, read: usize) {
    if read == buffer.len() && buffer.len() < MAX_CHUNK {
        buffer.resize(buffer.len() * 2, 0);
    } else if buffer.len() > CHUNK && read < CHUNK / 2 {
        buffer.truncate(CHUNK);
        buffer.shrink_to_fit();
    }
}
/// How long to wait for a response boundary before closing anyway.
const BOUNDARY_WAIT: Duration = Duration::from_secs(5);

/// Finds response boundaries in a server-to-client byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundaries {
    /// IMAP (RFC 9051 §4.3): lines, and literals announced by `{n}` or `~{n}` at a line's end.
    Imap(Scanner),
    /// SMTP and POP3: lines.
    Lines {
        /// True between lines.
        at_boundary: bool,
    },
}

/// The IMAP literal scanner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scanner {
    literal_left: u64,
    /// The number being read after `{`, and whether `}` (and then CR) followed it.
    pending: Option<(u64, u8)>,
    in_line: bool,
}

impl Boundaries {
    /// For IMAP.
    pub fn imap() -> Self {
        Self::Imap(Scanner::default())
    }

    /// For SMTP and POP3.
    pub fn lines() -> Self {
        Self::Lines { at_boundary: true }
    }

    /// True between responses.
    pub fn at_boundary(&self) -> bool {
        match self {
            Self::Imap(scanner) => scanner.literal_left == 0 && !scanner.in_line,
            Self::Lines { at_boundary } => *at_boundary,
        }
    }

    /// Feeds bytes; returns the length of the longest prefix that ends at a boundary (0 when none
    /// does).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut last_boundary = 0;
        match self {
            Self::Lines { at_boundary } => {
                for (index, &byte) in data.iter().enumerate() {
                    *at_boundary = byte == b'\n';
                    if *at_boundary {
                        last_boundary = index + 1;
                    }
                }
            }
            Self::Imap(scanner) => {
                let mut index = 0;
                while index < data.len() {
                    if scanner.literal_left > 0 {
                        let take = scanner.literal_left.min((data.len() - index) as u64);
                        scanner.literal_left -= take;
                        index += take as usize;
                        if scanner.literal_left == 0 {
                            scanner.in_line = true;
                        }
                        continue;
                    }
                    let byte = data[index];
                    index += 1;
                    scanner.in_line = true;
                    if byte == b'\n' {
                        match scanner.pending.take() {
                            // A literal follows (perhaps empty); the line goes on after it.
                            Some((number, 1 | 2)) => scanner.literal_left = number,
                            _ => {
                                scanner.in_line = false;
                                last_boundary = index;
                            }
                        }
                        continue;
                    }
                    scanner.pending = match (scanner.pending, byte) {
                        (_, b'{') => Some((0, 0)),
                        (Some((number, 0)), b'0'..=b'9') => number
                            .checked_mul(10)
                            .and_then(|number| number.checked_add(u64::from(byte - b'0')))
                            .map(|number| (number, 0)),
                        (Some((number, 0)), b'+' | b'-') => Some((number, 0)),
                        (Some((number, 0)), b'}') => Some((number, 1)),
                        (Some((number, 1)), b'\r') => Some((number, 2)),
                        _ => None,
                    };
                }
            }
        }
        last_boundary
    }
}

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// One side closed the connection (or it failed).
    Closed,
    /// The grant was revoked.
    Revoked,
    /// The access token that opened the session was revoked (RFC 7009); the grant lives.
    TokenRevoked,
    /// The token expired and the grace period passed.
    Expired,
    /// The gateway is shutting down.
    Shutdown,
    /// Nothing moved for the idle timeout.
    Idle,
}

/// What ends a relay besides the connections themselves.
pub struct Limits<'a> {
    /// Completes when the grant or the session's token is revoked, with the ending to report.
    pub revoked: std::pin::Pin<Box<dyn Future<Output = Ending> + Send + 'a>>,
    /// Completes when the gateway shuts down.
    pub shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
    /// When the token's expiry plus the grace period passes.
    pub expires: Instant,
    /// The idle timeout.
    pub idle: Duration,
}

/// Relays between client and back end. `to_backend` is what the client already sent (pipelined
/// after its login); `farewell` makes the line sent to the client when the gateway ends the
/// session.
pub async fn relay(
    client: Stream,
    to_backend: Vec<u8>,
    backend: Stream,
    mut boundaries: Boundaries,
    farewell: impl Fn(Ending) -> Option<String>,
    limits: Limits<'_>,
) -> Ending {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut backend_read, mut backend_write) = tokio::io::split(backend);
    if !to_backend.is_empty() && backend_write.write_all(&to_backend).await.is_err() {
        return Ending::Closed;
    }
    // Milliseconds from `started` to the last byte in either direction.
    let last_activity = AtomicU64::new(0);
    let started = Instant::now();
    let touch = || {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_activity.store(elapsed, Ordering::Relaxed);
    };
    let idle_deadline =
        || started + Duration::from_millis(last_activity.load(Ordering::Relaxed)) + limits.idle;
    let mut upstream = Box::pin(async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            touch();
            if backend_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
            adapt(&mut buffer, read);
        }
        let _ = backend_write.shutdown().await;
    });
    let (ending_tx, ending_rx) = tokio::sync::watch::channel(None::<Ending>);
    let mut downstream = Box::pin(async {
        let mut buffer = vec![0u8; CHUNK];
        let mut ending_rx = ending_rx;
        let mut closing: Option<(Ending, Instant)> = None;
        loop {
            if let Some((ending, _)) = closing
                && boundaries.at_boundary()
            {
                return say_farewell(&mut client_write, farewell(ending)).await.then_some(ending);
            }
            let wait_limit = closing.map(|(_, since)| since + BOUNDARY_WAIT);
            let read = tokio::select! {
                read = backend_read.read(&mut buffer) => read,
                changed = ending_rx.changed(), if closing.is_none() => {
                    if changed.is_ok() && let Some(ending) = *ending_rx.borrow() {
                        closing = Some((ending, Instant::now()));
                    }
                    continue;
                }
                () = sleep_until(wait_limit) => return Some(closing.map_or(Ending::Closed, |(ending, _)| ending)),
            };
            let read = match read {
                Ok(0) | Err(_) => return None,
                Ok(read) => read,
            };
            touch();
            let boundary = boundaries.feed(&buffer[..read]);
            if let Some((ending, _)) = closing
                && boundary > 0
            {
                if client_write.write_all(&buffer[..boundary]).await.is_err() {
                    return None;
                }
                return say_farewell(&mut client_write, farewell(ending)).await.then_some(ending);
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return None;
            }
            adapt(&mut buffer, read);
        }
    });
    let mut revoked = limits.revoked;
    let mut shutdown = limits.shutdown;
    let mut upstream_done = false;
    let mut ending = None;
    loop {
        tokio::select! {
            () = &mut upstream, if !upstream_done => {
                upstream_done = true;
                if ending.is_none() {
                    // The client closed its side: let the back end's last words through, briefly.
                    let _ = tokio::time::timeout(BOUNDARY_WAIT, &mut downstream).await;
                    return Ending::Closed;
                }
            }
            result = &mut downstream => return result.unwrap_or(Ending::Closed),
            revocation = &mut revoked, if ending.is_none() => ending = Some(revocation),
            () = &mut shutdown, if ending.is_none() => ending = Some(Ending::Shutdown),
            () = tokio::time::sleep_until(limits.expires), if ending.is_none() => ending = Some(Ending::Expired),
            () = tokio::time::sleep_until(idle_deadline()), if ending.is_none() => {
                if idle_deadline() <= Instant::now() {
                    ending = Some(Ending::Idle);
                }
            }
        }
        if let Some(ending) = ending {
            let _ = ending_tx.send(Some(ending));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn say_farewell(client: &mut (impl AsyncWrite + Unpin), line: Option<String>) -> bool {
    if let Some(line) = line {
        let _ = client.write_all(line.as_bytes()).await;
    }
    let _ = client.shutdown().await;
    true
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn imap_literals_hide_boundaries() {
        let mut scanner = Boundaries::imap();
        assert!(scanner.at_boundary());
        let response = b"* 1 FETCH (BODY[] {5}\r\na\r\nbc)\r\n";
        assert_eq!(scanner.feed(&response[..10]), 0);
        assert!(!scanner.at_boundary());
        assert_eq!(
            scanner.feed(&response[10..25]),
            0,
            "the CRLF inside the literal is no boundary"
        );
        assert_eq!(scanner.feed(&response[25..]), response.len() - 25);
        assert!(scanner.at_boundary());
        // Binary literals (~{n}), non-synchronising forms, and two responses in one read.
        let two = b"* 2 FETCH (BINARY[] ~{3}\r\n\r\n\n)\r\n* OK done\r\n";
        assert_eq!(scanner.feed(two), two.len());
        // An empty literal still continues the line.
        let mut scanner = Boundaries::imap();
        assert_eq!(scanner.feed(b"* 3 FETCH (BODY[] {0}\r\n"), 0);
        assert_eq!(scanner.feed(b")\r\n"), 3);
    }

    #[test]
    fn lines_end_at_lf() {
        let mut lines = Boundaries::lines();
        assert_eq!(lines.feed(b"250-a\r\n250 b"), 7);
        assert!(!lines.at_boundary());
        assert_eq!(lines.feed(b"\r\n"), 2);
        assert!(lines.at_boundary());
    }

    proptest! {
        /// However a stream of responses is cut into reads, the scanner finds the same
        /// boundaries and ends at one.
        #[test]
        fn boundaries_do_not_depend_on_read_sizes(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            cuts in proptest::collection::vec(1usize..17, 1..40),
        ) {
            let mut stream = Vec::new();
            let mut ends = Vec::new();
            for (number, body) in bodies.iter().enumerate() {
                stream.extend_from_slice(format!("* {} FETCH (BODY[] {{{}}}\r\n", number + 1, body.len()).as_bytes());
                stream.extend_from_slice(body);
                stream.extend_from_slice(b")\r\n");
                ends.push(stream.len());
            }
            let mut scanner = Boundaries::imap();
            let mut found = Vec::new();
            let mut offset = 0;
            let mut cut = cuts.iter().cycle();
            while offset < stream.len() {
                let end = (offset + cut.next().copied().unwrap_or(1)).min(stream.len());
                let boundary = scanner.feed(&stream[offset..end]);
                if boundary > 0 {
                    found.push(offset + boundary);
                }
                offset = end;
            }
            prop_assert!(scanner.at_boundary());
            // Each read reports its last boundary, so every reported one is a real one.
            for end in &found {
                prop_assert!(ends.contains(end));
            }
            prop_assert_eq!(found.last(), ends.last());
        }
    }
}
