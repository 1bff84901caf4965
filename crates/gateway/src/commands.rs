//! The SMTP door keeps reading what the client sends after login (issue 14, point 1): a relay
//! that only copies bytes lets a signed-in client say `XCLIENT LOGIN=someone-else` to a back end
//! that trusts the door, and then send mail as anyone. This module is the sans-I/O half of that
//! watch: [`SmtpCommands`] splits the client's stream into command lines, message data (RFC 5321
//! §4.1.1.4 `DATA` up to the lone `.`) and chunks (RFC 3030 `BDAT`), and says which commands the
//! door must answer itself; [`SmtpReplies`] counts the back end's replies so that the door's own
//! answer takes its place among them when commands are pipelined (RFC 2920 §3.1: replies come
//! in the order of the commands).

/// What to do with the front of the client's pending bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send this many bytes on to the back end.
    Forward(usize),
    /// Drop this many bytes (one command line) and answer the client with `reply` once the back
    /// end has sent `after` replies in all (every command before it has its answer).
    Refuse {
        /// The command line's length.
        length: usize,
        /// Back-end replies due before the door's.
        after: u64,
        /// The door's answer.
        reply: &'static str,
    },
    /// The meaning of what follows depends on the back end's reply number `reply` (the answer to
    /// `DATA`: 354 starts message data, anything else leaves command mode): read no further until
    /// it came, then call [`SmtpCommands::data_reply`].
    AwaitReply(u64),
    /// A command line is not complete yet: read more.
    Incomplete,
    /// A command line is longer than the limit.
    TooLong,
}

/// Where the client's stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Command lines.
    Commands,
    /// `DATA` was sent: waiting for the back end's reply number `.0`.
    AwaitingData(u64),
    /// Message data: `matched` bytes of `CR LF . CR LF` seen (the stream starts as if after a
    /// CR LF, so a lone `.` on the first line also ends the message).
    Data { matched: u8 },
    /// A `BDAT` chunk with this many octets left.
    Chunk(u64),
}

/// The terminator of message data (RFC 5321 §4.1.1.4).
const END_OF_DATA: &[u8] = b"\r\n.\r\n";

/// Replies of the door for what it does not let through.
const NOT_PERMITTED: &str = "550 5.7.0 Not permitted through this server\r\n";
const ALREADY_AUTHENTICATED: &str = "503 5.5.1 Already authenticated\r\n";
const TLS_ALREADY: &str = "503 5.5.1 TLS is already settled for this session\r\n";
const BAD_BDAT: &str = "501 5.5.4 Syntax: BDAT chunk-size [LAST]\r\n";

/// The client side of an SMTP session after login.
#[derive(Debug, Clone)]
pub struct SmtpCommands {
    mode: Mode,
    /// Replies the back end owes for what has been forwarded, counted from the start of the
    /// relay.
    owed: u64,
    max_line: usize,
}

impl SmtpCommands {
    /// A session in command mode; command lines longer than `max_line` bytes end it.
    pub fn new(max_line: usize) -> Self {
        Self { mode: Mode::Commands, owed: 0, max_line }
    }

    /// What to do with the front of `pending`, the client's bytes not yet dealt with.
    pub fn step(&mut self, pending: &[u8]) -> Step {
        if pending.is_empty() {
            return Step::Incomplete;
        }
        match self.mode {
            Mode::AwaitingData(reply) => Step::AwaitReply(reply),
            Mode::Chunk(left) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(pending.len());
                let left = left - take as u64;
                self.mode = if left == 0 { Mode::Commands } else { Mode::Chunk(left) };
                Step::Forward(take)
            }
            Mode::Data { mut matched } => {
                for (index, &byte) in pending.iter().enumerate() {
                    matched = if byte == END_OF_DATA[usize::from(matched)] {
                        matched + 1
                    } else if byte == b'\r' {
                        1
                    } else {
                        0
                    };
                    if usize::from(matched) == END_OF_DATA.len() {
                        // The back end answers the message as a whole.
                        self.owed += 1;
                        self.mode = Mode::Commands;
                        return Step::Forward(index + 1);
                    }
                }
                self.mode = Mode::Data { matched };
                Step::Forward(pending.len())
            }
            Mode::Commands => self.command(pending),
        }
    }

    fn command(&mut self, pending: &[u8]) -> Step {
        let Some(end) = pending.iter().position(|&byte| byte == b'\n') else {
            return if pending.len() > self.max_line { Step::TooLong } else { Step::Incomplete };
        };
        let length = end + 1;
        if length > self.max_line {
            return Step::TooLong;
        }
        let line = pending[..end].strip_suffix(b"\r").unwrap_or(&pending[..end]);
        let (verb, arguments) = match line.iter().position(|&byte| byte == b' ') {
            Some(space) => (&line[..space], &line[space + 1..]),
            None => (line, &b""[..]),
        };
        let refuse = |after, reply| Step::Refuse { length, after, reply };
        // XCLIENT and XFORWARD (Postfix) are for the door alone; other X- commands are
        // extensions between trusted peers too, and no mail program needs one.
        if verb.first().is_some_and(|first| first.eq_ignore_ascii_case(&b'X')) {
            return refuse(self.owed, NOT_PERMITTED);
        }
        if verb.eq_ignore_ascii_case(b"AUTH") {
            return refuse(self.owed, ALREADY_AUTHENTICATED);
        }
        if verb.eq_ignore_ascii_case(b"STARTTLS") {
            return refuse(self.owed, TLS_ALREADY);
        }
        if verb.eq_ignore_ascii_case(b"BDAT") {
            // RFC 3030 §4: the back end reads exactly chunk-size octets after the line whatever
            // it answers, so the door must know that size as surely as the back end does: a
            // BDAT it cannot read the same way never reaches the back end.
            let Some(size) = chunk_size(arguments) else {
                return refuse(self.owed, BAD_BDAT);
            };
            if size > 0 {
                self.mode = Mode::Chunk(size);
            }
        }
        self.owed += 1;
        if verb.eq_ignore_ascii_case(b"DATA") {
            self.mode = Mode::AwaitingData(self.owed);
        }
        Step::Forward(length)
    }

    /// True when the next bytes are read as a command line.
    pub fn in_command_mode(&self) -> bool {
        self.mode == Mode::Commands
    }

    /// Replies the back end owes for what has been forwarded so far.
    pub fn owed(&self) -> u64 {
        self.owed
    }

    /// The back end's reply to `DATA` arrived with `code`.
    pub fn data_reply(&mut self, code: u16) {
        if let Mode::AwaitingData(_) = self.mode {
            self.mode = if code == 354 { Mode::Data { matched: 2 } } else { Mode::Commands };
        }
    }
}

/// `chunk-size [SP "LAST"]` (RFC 3030 §4): digits only, no sign, no spaces around.
fn chunk_size(arguments: &[u8]) -> Option<u64> {
    let size = match arguments.iter().position(|&byte| byte == b' ') {
        Some(space) if arguments[space + 1..].eq_ignore_ascii_case(b"LAST") => &arguments[..space],
        Some(_) => return None,
        None => arguments,
    };
    if size.is_empty() || size.len() > 18 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(size).ok()?.parse().ok()
}

/// Counts the back end's replies: a reply ends with a line whose fourth byte is not `-`
/// (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmtpReplies {
    /// Whole replies so far.
    pub count: u64,
    /// The code of the last whole reply.
    pub last_code: u16,
    column: usize,
    code: u16,
    continued: bool,
}

impl SmtpReplies {
    /// True between replies.
    pub fn at_boundary(&self) -> bool {
        self.column == 0
    }

    /// Feeds bytes, stopping early right after the reply that makes [`Self::count`] reach
    /// `stop_at` (when given); returns how many bytes were taken.
    pub fn feed(&mut self, data: &[u8], stop_at: Option<u64>) -> usize {
        for (index, &byte) in data.iter().enumerate() {
            if byte == b'\n' {
                if !self.continued {
                    self.count += 1;
                    self.last_code = self.code;
                }
                (self.column, self.code, self.continued) = (0, 0, false);
                if stop_at.is_some_and(|stop| self.count >= stop) {
                    return index + 1;
                }
                continue;
            }
            if self.column < 3 {
                self.code = if byte.is_ascii_digit() {
                    self.code.saturating_mul(10).saturating_add(u16::from(byte - b'0'))
                } else {
                    0
                };
            } else if self.column == 3 {
                self.continued = byte == b'-';
            }
            self.column = self.column.saturating_add(1);
        }
        data.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Runs a client stream through the scanner the way the relay does, with every DATA answered
    /// by `data_code`; returns what reached the back end and the door's own replies.
    fn run(stream: &[u8], data_code: u16) -> (Vec<u8>, Vec<(u64, &'static str)>) {
        let mut commands = SmtpCommands::new(1000);
        let (mut forwarded, mut refused, mut offset) = (Vec::new(), Vec::new(), 0);
        loop {
            match commands.step(&stream[offset..]) {
                Step::Forward(length) => {
                    forwarded.extend_from_slice(&stream[offset..offset + length]);
                    offset += length;
                }
                Step::Refuse { length, after, reply } => {
                    refused.push((after, reply));
                    offset += length;
                }
                Step::AwaitReply(_) => commands.data_reply(data_code),
                Step::Incomplete | Step::TooLong => return (forwarded, refused),
            }
        }
    }

    #[test]
    fn xclient_xforward_auth_and_starttls_stay_with_the_door() {
        let (forwarded, refused) = run(
            b"NOOP\r\nXCLIENT LOGIN=ceo@example.com\r\nxforward ADDR=1.2.3.4\r\nAUTH PLAIN AGEAYg==\r\n\
              STARTTLS\r\nXUNKNOWN\r\nMAIL FROM:<a@example.com>\r\n",
            354,
        );
        assert_eq!(forwarded, b"NOOP\r\nMAIL FROM:<a@example.com>\r\n");
        assert_eq!(
            refused,
            [
                (1, NOT_PERMITTED),
                (1, NOT_PERMITTED),
                (1, ALREADY_AUTHENTICATED),
                (1, TLS_ALREADY),
                (1, NOT_PERMITTED)
            ]
        );
    }

    #[test]
    fn message_data_is_not_read_as_commands() {
        let message = b"DATA\r\nXCLIENT LOGIN=ceo\r\n..dot\r\n.\r\nXCLIENT LOGIN=ceo\r\nQUIT\r\n";
        let (forwarded, refused) = run(message, 354);
        assert_eq!(forwarded, b"DATA\r\nXCLIENT LOGIN=ceo\r\n..dot\r\n.\r\nQUIT\r\n");
        // DATA's 354 and the message's reply come before the refusal.
        assert_eq!(refused, [(2, NOT_PERMITTED)]);
        // A DATA the back end refused leaves command mode: what follows is commands again.
        let (forwarded, refused) = run(message, 503);
        assert_eq!(forwarded, b"DATA\r\n..dot\r\n.\r\nQUIT\r\n");
        assert_eq!(refused.len(), 2);
        // A message whose first line is the lone dot.
        let (forwarded, refused) = run(b"DATA\r\n.\r\nXCLIENT\r\n", 354);
        assert_eq!((forwarded.as_slice(), refused.len()), (&b"DATA\r\n.\r\n"[..], 1));
    }

    #[test]
    fn bdat_chunks_are_skipped_by_their_size_and_odd_sizes_refused() {
        let (forwarded, refused) =
            run(b"BDAT 19\r\nXCLIENT LOGIN=ceo\r\nBDAT 0 LAST\r\nXCLIENT\r\n", 354);
        assert_eq!(forwarded, b"BDAT 19\r\nXCLIENT LOGIN=ceo\r\nBDAT 0 LAST\r\n");
        assert_eq!(refused, [(2, NOT_PERMITTED)]);
        for odd in ["BDAT", "BDAT -1", "BDAT +5", "BDAT 5 LAST x", "BDAT 5  LAST", "BDAT 0x10"] {
            let (forwarded, refused) = run(format!("{odd}\r\nXCLIENT\r\n").as_bytes(), 354);
            assert!(forwarded.is_empty(), "{odd}");
            assert_eq!(refused, [(0, BAD_BDAT), (0, NOT_PERMITTED)], "{odd}");
        }
    }

    #[test]
    fn long_lines_and_partial_lines() {
        let mut commands = SmtpCommands::new(10);
        assert_eq!(commands.step(b"NOOP"), Step::Incomplete);
        assert_eq!(commands.step(b"NOOP 123456789\r\n"), Step::TooLong);
        assert_eq!(commands.step(b"NOOP 1234567"), Step::TooLong);
    }

    #[test]
    fn replies_are_counted_and_feeding_stops_after_the_one_asked_for() {
        let mut replies = SmtpReplies::default();
        let stream = b"250-first\r\n250 last\r\n550 5.7.0 no\r\n354 go\r\n";
        assert_eq!(replies.feed(stream, Some(1)), 21);
        assert_eq!((replies.count, replies.last_code), (1, 250));
        assert_eq!(replies.feed(&stream[21..], None), stream.len() - 21);
        assert_eq!((replies.count, replies.last_code), (3, 354));
        assert!(replies.at_boundary());
        assert_eq!(replies.feed(b"250", None), 3);
        assert!(!replies.at_boundary());
    }

    proptest! {
        /// However the stream is cut and whatever it holds, no line the door took for a
        /// forbidden command reaches the back end, and the bytes forwarded are a subsequence of
        /// the stream in order.
        #[test]
        fn nothing_forbidden_is_forwarded_as_a_command(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("XCLIENT LOGIN=ceo".to_owned()),
                    Just("DATA".to_owned()),
                    Just(".".to_owned()),
                    Just("BDAT 3".to_owned()),
                    Just("NOOP".to_owned()),
                    "[ -~]{0,12}",
                ],
                0..30,
            ),
            data_code in prop_oneof![Just(354u16), Just(554u16)],
        ) {
            let stream = lines.join("\r\n") + "\r\n";
            let (forwarded, _) = run(stream.as_bytes(), data_code);
            // Replay what was forwarded through a fresh scanner: as the back end reads it, no
            // command line is an X- command.
            let (again, refused) = run(&forwarded, data_code);
            prop_assert_eq!(&again, &forwarded);
            prop_assert!(refused.is_empty());
        }
    }
}
