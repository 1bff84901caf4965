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

use crate::commands::{SmtpCommands, SmtpReplies, Step};
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
    /// POP3: lines.
    Lines {
        /// True between lines.
        at_boundary: bool,
    },
    /// SMTP: whole replies (RFC 5321 §4.2.1), counted so that the door's own answers to
    /// commands it keeps from the back end take their place among them.
    Smtp(SmtpReplies),
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

    /// For POP3.
    pub fn lines() -> Self {
        Self::Lines { at_boundary: true }
    }

    /// For SMTP.
    pub fn smtp() -> Self {
        Self::Smtp(SmtpReplies::default())
    }

    /// The back end's whole replies so far and the last one's code (SMTP only).
    fn replies(&self) -> Option<(u64, u16)> {
        match self {
            Self::Smtp(replies) => Some((replies.count, replies.last_code)),
            _ => None,
        }
    }

    /// True between responses.
    pub fn at_boundary(&self) -> bool {
        match self {
            Self::Imap(scanner) => scanner.literal_left == 0 && !scanner.in_line,
            Self::Lines { at_boundary } => *at_boundary,
            Self::Smtp(replies) => replies.at_boundary(),
        }
    }

    /// Feeds bytes; returns the length of the longest prefix that ends at a boundary (0 when none
    /// does).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        self.feed_until(data, None).1
    }

    /// Feeds bytes up to the end of the SMTP reply that makes the count of replies reach
    /// `stop_at` (all of them for other protocols, or when not given); returns how many were
    /// taken, and the length of the longest prefix of those that ends at a boundary.
    pub fn feed_until(&mut self, data: &[u8], stop_at: Option<u64>) -> (usize, usize) {
        let mut last_boundary = 0;
        match self {
            Self::Smtp(replies) => {
                let mut taken = 0;
                // Reply by reply, to know the last boundary.
                while taken < data.len() {
                    let count = replies.count;
                    taken += replies.feed(&data[taken..], Some(count + 1));
                    if replies.count > count {
                        last_boundary = taken;
                    }
                    if stop_at.is_some_and(|stop| replies.count >= stop) {
                        break;
                    }
                }
                return (taken, last_boundary);
            }
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
        (data.len(), last_boundary)
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

/// A line of the door's own for the client, due once the back end has sent `.0` replies.
type Injection = (u64, &'static str);

/// The door's goodbye when an SMTP command line after login is too long.
const SMTP_TOO_LONG: &str = "500 5.5.6 Line too long; closing connection\r\n";

/// Relays between client and back end. `to_backend` is what the client already sent (pipelined
/// after its login); with `commands` (SMTP), the client's stream is read as commands and those
/// the door keeps to itself are answered by it in the order of the back end's replies;
/// `farewell` makes the line sent to the client when the gateway ends the session.
pub async fn relay(
    client: Stream,
    to_backend: Vec<u8>,
    backend: Stream,
    mut boundaries: Boundaries,
    commands: Option<SmtpCommands>,
    farewell: impl Fn(Ending) -> Option<String>,
    limits: Limits<'_>,
) -> Ending {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut backend_read, mut backend_write) = tokio::io::split(backend);
    // Milliseconds from `started` to the last byte in either direction.
    let last_activity = AtomicU64::new(0);
    let started = Instant::now();
    let touch = || {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_activity.store(elapsed, Ordering::Relaxed);
    };
    let idle_deadline =
        || started + Duration::from_millis(last_activity.load(Ordering::Relaxed)) + limits.idle;
    // The door's own answers go down with the back end's replies; the count of those replies
    // and the last one's code come back up (the answer to DATA decides what follows it).
    let (inject_tx, mut inject_rx) = tokio::sync::mpsc::channel::<Injection>(64);
    let (replies_tx, replies_rx) = tokio::sync::watch::channel(boundaries.replies());
    let mut upstream = Box::pin(async {
        let mut buffer = vec![0u8; CHUNK];
        let Some(mut commands) = commands else {
            // IMAP and POP3: bytes as they come.
            if !to_backend.is_empty() && backend_write.write_all(&to_backend).await.is_err() {
                return;
            }
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
            return;
        };
        let mut pending = to_backend;
        let mut replies_rx = replies_rx;
        'session: loop {
            loop {
                match commands.step(&pending) {
                    Step::Forward(length) => {
                        if backend_write.write_all(&pending[..length]).await.is_err() {
                            break 'session;
                        }
                        pending.drain(..length);
                    }
                    Step::Refuse { length, after, reply } => {
                        pending.drain(..length);
                        if inject_tx.send((after, reply)).await.is_err() {
                            break 'session;
                        }
                    }
                    Step::AwaitReply(reply) => {
                        let Ok(seen) = replies_rx
                            .wait_for(|seen| seen.is_some_and(|(count, _)| count >= reply))
                            .await
                            .map(|seen| *seen)
                        else {
                            break 'session;
                        };
                        // Only the back end's reply number `reply` is the answer to DATA.
                        let code =
                            seen.filter(|(count, _)| *count == reply).map_or(0, |seen| seen.1);
                        commands.data_reply(code);
                    }
                    Step::Incomplete => break,
                    Step::TooLong => {
                        let _ = inject_tx.send((commands.owed(), SMTP_TOO_LONG)).await;
                        break 'session;
                    }
                }
            }
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            touch();
            pending.extend_from_slice(&buffer[..read]);
            adapt(&mut buffer, read);
        }
        let _ = backend_write.shutdown().await;
    });
    let (ending_tx, ending_rx) = tokio::sync::watch::channel(None::<Ending>);
    let mut downstream = Box::pin(async {
        let mut buffer = vec![0u8; CHUNK];
        let mut ending_rx = ending_rx;
        let mut closing: Option<(Ending, Instant)> = None;
        let mut injections = std::collections::VecDeque::<Injection>::new();
        let mut injecting = true;
        loop {
            if !inject_due(&mut client_write, &mut injections, &boundaries).await {
                return None;
            }
            if let Some((ending, _)) = closing
                && boundaries.at_boundary()
            {
                return say_farewell(&mut client_write, farewell(ending)).await.then_some(ending);
            }
            let wait_limit = closing.map(|(_, since)| since + BOUNDARY_WAIT);
            let read = tokio::select! {
                read = backend_read.read(&mut buffer) => read,
                injection = inject_rx.recv(), if injecting => {
                    match injection {
                        Some(injection) => injections.push_back(injection),
                        None => injecting = false,
                    }
                    continue;
                }
                changed = ending_rx.changed(), if closing.is_none() => {
                    if changed.is_ok() && let Some(ending) = *ending_rx.borrow() {
                        closing = Some((ending, Instant::now()));
                    }
                    continue;
                }
                () = sleep_until(wait_limit) => return Some(closing.map_or(Ending::Closed, |(ending, _)| ending)),
            };
            let read = match read {
                Ok(0) | Err(_) => {
                    // The back end's last reply may be what a door's answer waited for.
                    let _ = inject_due(&mut client_write, &mut injections, &boundaries).await;
                    return None;
                }
                Ok(read) => read,
            };
            touch();
            let mut chunk = &buffer[..read];
            while !chunk.is_empty() {
                let stop = injections.front().map(|(after, _)| *after);
                let (taken, boundary) = boundaries.feed_until(chunk, stop);
                if let Some((ending, _)) = closing
                    && boundary > 0
                {
                    if client_write.write_all(&chunk[..boundary]).await.is_err() {
                        return None;
                    }
                    return say_farewell(&mut client_write, farewell(ending))
                        .await
                        .then_some(ending);
                }
                if client_write.write_all(&chunk[..taken]).await.is_err() {
                    return None;
                }
                if boundaries.replies().is_some() {
                    replies_tx.send_replace(boundaries.replies());
                    if !inject_due(&mut client_write, &mut injections, &boundaries).await {
                        return None;
                    }
                }
                chunk = &chunk[taken..];
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

/// Writes the door's answers whose turn has come: the back end has sent every reply before them
/// and is between replies. False when the client is gone.
async fn inject_due(
    client: &mut (impl AsyncWrite + Unpin),
    injections: &mut std::collections::VecDeque<Injection>,
    boundaries: &Boundaries,
) -> bool {
    let Some((count, _)) = boundaries.replies() else { return true };
    while let Some(&(after, line)) = injections.front()
        && count >= after
        && boundaries.at_boundary()
    {
        if client.write_all(line.as_bytes()).await.is_err() {
            return false;
        }
        injections.pop_front();
    }
    true
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
