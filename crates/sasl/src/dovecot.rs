//! Dovecot's authentication protocols, with no I/O: the client protocol of its `auth-client`
//! socket (what Postfix's and Exim's "Dovecot SASL" speak) and the lookups of its `auth-master`
//! socket (what `doveadm auth lookup` uses). Written from Dovecot 2.3.19's own code:
//! `src/lib-auth/auth-client-request.c` (the requests), `src/auth/auth-client-connection.c`
//! and `src/auth/auth-request-handler.c` (the answers), `src/auth/auth-master-connection.c`
//! (the lookups) and `src/lib/strescape.c` (the escaping).
//!
//! Lines are TAB-separated fields ending in LF. Inside a field, Dovecot escapes 0x01, TAB, CR and
//! LF as 0x01 followed by `1`, `t`, `r`, `n` ([`escape`], [`unescape`]), so that no value can
//! split a line or add a field. The password itself never appears in a field: it travels inside
//! the base64 of the PLAIN response (`resp=`), which has no TAB or LF to escape; a NUL in the
//! user name or password would move the PLAIN separators, and Dovecot itself refuses a password
//! with 0x01, TAB, CR or LF ("Attempted login with password having illegal chars",
//! `src/auth/auth-request.c`), so [`AuthRequest::encode`] refuses them before asking.
//!
//! ```
//! use letterlock_sasl::dovecot::{AuthRequest, ClientHandshake, ServerLine, Outcome};
//!
//! // What Dovecot 2.3.19 sends first on its auth-client socket.
//! let mut handshake = ClientHandshake::default();
//! for line in ["VERSION\t1\t2", "MECH\tPLAIN\tplaintext", "SPID\t42", "CUID\t7",
//!              "COOKIE\t0123456789abcdef", "DONE"] {
//!     handshake.receive(&ServerLine::parse(line).unwrap()).unwrap();
//! }
//! assert!(handshake.is_ready());
//!
//! let request = AuthRequest {
//!     id: 1,
//!     service: "letterlock",
//!     user: "alice@example.com",
//!     password: "correct horse",
//!     remote_ip: Some("192.0.2.7".parse().unwrap()),
//!     local_ip: None,
//!     secured: true,
//! };
//! let line = request.encode().unwrap();
//! assert!(line.starts_with("AUTH\t1\tPLAIN\tservice=letterlock\tsecured\trip=192.0.2.7\tresp="));
//!
//! let answer = ServerLine::parse("OK\t1\tuser=alice@example.com").unwrap();
//! assert_eq!(Outcome::of(&answer, 1), Some(Outcome::Success { user: Some("alice@example.com".into()) }));
//! ```

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The longest line either side sends, in bytes, LF excluded: Dovecot's
/// `AUTH_CLIENT_MAX_LINE_LENGTH` ("GSSAPI can use quite large packets"), also the input buffer
/// of its auth-client connections. A longer line is refused on both sides.
pub const MAX_LINE_BYTES: usize = 16384;

/// The auth-client protocol version we speak (`AUTH_CLIENT_PROTOCOL_MAJOR_VERSION`/`MINOR`):
/// a different major version is incompatible, the minor one can be ignored.
pub const CLIENT_VERSION: (u32, u32) = (1, 2);

/// The auth-master protocol version we speak (`AUTH_MASTER_PROTOCOL_MAJOR_VERSION`/`MINOR`).
pub const MASTER_VERSION: (u32, u32) = (1, 1);

/// What can be wrong with a line from Dovecot, or with a request we were asked to build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DovecotError {
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("the line is longer than Dovecot's limit")]
    TooLong,
    /// The line is empty, or its first field is not a command this protocol has.
    #[error("the line is not a command of Dovecot's authentication protocol")]
    UnknownCommand,
    /// A field that must be a number (version, request id, process id) is not one.
    #[error("a numeric field is missing or not a number")]
    Number,
    /// A field the command requires is missing (a MECH without a name, an OK without its id).
    #[error("a field the command requires is missing")]
    MissingField,
    /// The server's major version is not ours: "mixed old and new binaries?".
    #[error("Dovecot speaks version {0} of this protocol; we speak version 1")]
    IncompatibleVersion(u32),
    /// The handshake ended (DONE) without a version, a cookie or the PLAIN mechanism.
    #[error("Dovecot's handshake ended without a version, a cookie or the PLAIN mechanism")]
    Handshake,
    /// A handshake line came after DONE, or an answer before it.
    #[error("a line came out of order")]
    OutOfOrder,
    /// The user name or the password holds a NUL, which would move PLAIN's separators
    /// (RFC 4616 §2: "UTF8NUL" separates the three parts), or a user name holds another control
    /// character, or the password 0x01, TAB, CR or LF (which Dovecot refuses in a password,
    /// since they mean something in its internal protocols), or one of them is empty.
    #[error("the user name or password holds a NUL or control character, or is empty")]
    Credentials,
}

/// Escapes a field the way Dovecot's `str_append_tabescaped` does: 0x01, TAB, CR and LF become
/// 0x01 followed by `1`, `t`, `r`, `n`. Nothing else changes (NUL cannot occur in Dovecot's C
/// strings; we refuse it before escaping where it matters).
pub fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\u{1}' => escaped.push_str("\u{1}1"),
            '\t' => escaped.push_str("\u{1}t"),
            '\r' => escaped.push_str("\u{1}r"),
            '\n' => escaped.push_str("\u{1}n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Undoes [`escape`] the way Dovecot's `str_tabunescape` does: 0x01 followed by `0`, `1`, `t`,
/// `r`, `n` is NUL, 0x01, TAB, CR, LF; followed by anything else, that character; a lone 0x01
/// at the end is dropped.
pub fn unescape(field: &str) -> String {
    let mut plain = String::with_capacity(field.len());
    let mut characters = field.chars();
    while let Some(character) = characters.next() {
        if character != '\u{1}' {
            plain.push(character);
            continue;
        }
        match characters.next() {
            Some('0') => plain.push('\0'),
            Some('1') => plain.push('\u{1}'),
            Some('t') => plain.push('\t'),
            Some('r') => plain.push('\r'),
            Some('n') => plain.push('\n'),
            Some(other) => plain.push(other),
            None => {}
        }
    }
    plain
}

/// Splits a line (without its LF) into unescaped fields, as Dovecot's `t_strsplit_tabescaped`.
pub fn split(line: &str) -> Vec<String> {
    if line.is_empty() {
        return Vec::new();
    }
    line.split('\t').map(unescape).collect()
}

/// The `key=value` and bare-flag fields after a command's id (`user=alice`, `nologin`,
/// `code=temp_fail`), in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, Option<String>)>);

impl Fields {
    fn parse(fields: &[String]) -> Self {
        Self(
            fields
                .iter()
                .map(|field| match field.split_once('=') {
                    Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                    None => (field.clone(), None),
                })
                .collect(),
        )
    }

    /// The value of the first `key=value` field named `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name == key).and_then(|(_, value)| value.as_deref())
    }

    /// Whether a field named `key` is present (a flag such as `nologin`, or `key=...`).
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(name, _)| name == key)
    }
}

/// A line from Dovecot's auth-client socket (`src/auth/auth-client-connection.c` sends the
/// handshake, `src/auth/auth-request-handler.c` the answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// `VERSION <major> <minor>`.
    Version {
        /// Incompatible when not ours.
        major: u32,
        /// Ignorable.
        minor: u32,
    },
    /// `MECH <name> [<flag>...]`: a mechanism on offer.
    Mech {
        /// Its name, such as `PLAIN`.
        name: String,
    },
    /// `SPID <pid>`: the auth server's process id.
    Spid,
    /// `CUID <number>`: this connection's number.
    Cuid,
    /// `COOKIE <hex>`: for a login process handing the user to the master (not used here).
    Cookie,
    /// `DONE`: the end of the handshake.
    Done,
    /// `OK <id> [<field>...]`: the request succeeded.
    Ok {
        /// The request's id.
        id: u32,
        /// `user=` (the name Dovecot knows the user by), and extra fields.
        fields: Fields,
    },
    /// `CONT <id> <base64>`: the mechanism wants another round (never for PLAIN with an
    /// initial response).
    Cont {
        /// The request's id.
        id: u32,
    },
    /// `FAIL <id> [<field>...]`: the request failed.
    Fail {
        /// The request's id.
        id: u32,
        /// `user=`, `code=` (`temp_fail`, `user_disabled`, ...), `reason=`, `temp`.
        fields: Fields,
    },
}

impl ServerLine {
    /// Parses one line without its LF; refuses what Dovecot would never send.
    pub fn parse(line: &str) -> Result<Self, DovecotError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(DovecotError::TooLong);
        }
        let fields = split(line);
        let Some((command, arguments)) = fields.split_first() else {
            return Err(DovecotError::UnknownCommand);
        };
        let id = || -> Result<u32, DovecotError> {
            number(arguments.first().ok_or(DovecotError::MissingField)?)
        };
        Ok(match command.as_str() {
            "VERSION" => match arguments {
                [major, minor, ..] => {
                    Self::Version { major: number(major)?, minor: number(minor)? }
                }
                _ => return Err(DovecotError::MissingField),
            },
            "MECH" => match arguments.first() {
                Some(name) if !name.is_empty() => Self::Mech { name: name.clone() },
                _ => return Err(DovecotError::MissingField),
            },
            "SPID" => {
                number(arguments.first().ok_or(DovecotError::MissingField)?)?;
                Self::Spid
            }
            "CUID" => {
                number(arguments.first().ok_or(DovecotError::MissingField)?)?;
                Self::Cuid
            }
            "COOKIE" => match arguments.first() {
                Some(cookie) if !cookie.is_empty() => Self::Cookie,
                _ => return Err(DovecotError::MissingField),
            },
            "DONE" => Self::Done,
            "OK" => Self::Ok { id: id()?, fields: Fields::parse(&arguments[1..]) },
            // auth-client-connection.c: a CONT has an id and data.
            "CONT" if arguments.len() >= 2 => Self::Cont { id: id()? },
            "CONT" => return Err(DovecotError::MissingField),
            "FAIL" => Self::Fail { id: id()?, fields: Fields::parse(&arguments[1..]) },
            _ => return Err(DovecotError::UnknownCommand),
        })
    }
}

/// A decimal number as Dovecot's `str_to_uint` reads it: digits only, no sign, no overflow.
fn number(field: &str) -> Result<u32, DovecotError> {
    if field.is_empty() || !field.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(DovecotError::Number);
    }
    field.parse().map_err(|_| DovecotError::Number)
}

/// The client's side of the auth-client handshake: the server's VERSION, MECH, SPID, CUID,
/// COOKIE lines until DONE (`src/lib-auth/auth-client-connection.c`, which also refuses a DONE
/// without mechanisms or cookie).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHandshake {
    version: bool,
    plain: bool,
    cookie: bool,
    done: bool,
}

impl ClientHandshake {
    /// What the client sends first: its version and its process id (`CPID`). Dovecot ignores
    /// the pid of a client that only authenticates, but refuses 0.
    pub fn hello(pid: u32) -> String {
        let (major, minor) = CLIENT_VERSION;
        format!("VERSION\t{major}\t{minor}\nCPID\t{}\n", pid.max(1))
    }

    /// Takes one handshake line from the server.
    pub fn receive(&mut self, line: &ServerLine) -> Result<(), DovecotError> {
        if self.done {
            return Err(DovecotError::OutOfOrder);
        }
        match line {
            ServerLine::Version { major, .. } if *major != CLIENT_VERSION.0 => {
                return Err(DovecotError::IncompatibleVersion(*major));
            }
            ServerLine::Version { .. } => self.version = true,
            ServerLine::Mech { name } => self.plain |= name.eq_ignore_ascii_case("PLAIN"),
            ServerLine::Spid | ServerLine::Cuid => {}
            ServerLine::Cookie => self.cookie = true,
            ServerLine::Done if self.version && self.plain && self.cookie => self.done = true,
            ServerLine::Done => return Err(DovecotError::Handshake),
            ServerLine::Ok { .. } | ServerLine::Cont { .. } | ServerLine::Fail { .. } => {
                return Err(DovecotError::OutOfOrder);
            }
        }
        Ok(())
    }

    /// Whether DONE came after a version, a cookie and PLAIN.
    pub fn is_ready(&self) -> bool {
        self.done
    }
}

/// A PLAIN authentication request (`AUTH` in `src/lib-auth/auth-client-request.c`).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest<'a> {
    /// The request id, unique on the connection.
    pub id: u32,
    /// The service name Dovecot's passdb sees (`%s`, `protocol` in its conditions).
    pub service: &'a str,
    /// The user name, as the person typed it (after any domain was added).
    pub user: &'a str,
    /// The password.
    pub password: &'a str,
    /// The client's address (`rip=`): Dovecot's penalties, policy and logs key on it.
    pub remote_ip: Option<IpAddr>,
    /// Our own address, if known (`lip=`).
    pub local_ip: Option<IpAddr>,
    /// Whether the password reached us over a secure channel (`secured`).
    pub secured: bool,
}

impl std::fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuthRequest")
            .field("id", &self.id)
            .field("service", &self.service)
            .field("user", &self.user)
            .field("password", &"..")
            .field("remote_ip", &self.remote_ip)
            .finish_non_exhaustive()
    }
}

impl AuthRequest<'_> {
    /// The `AUTH` line with its LF. Refuses a NUL in the user name or password, any other
    /// control character in the user name, 0x01, TAB, CR or LF in the password (Dovecot would
    /// refuse it: `password_has_illegal_chars`), an empty one, and a line over
    /// [`MAX_LINE_BYTES`].
    pub fn encode(&self) -> Result<String, DovecotError> {
        // RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; a NUL inside either
        // part would make another split. A control character in a name is never a person's.
        if self.user.is_empty()
            || self.password.is_empty()
            || self.user.chars().any(char::is_control)
            || self.password.contains(['\0', '\u{1}', '\t', '\r', '\n'])
        {
            return Err(DovecotError::Credentials);
        }
        let response = STANDARD.encode(crate::plain::encode(None, self.user, self.password));
        let mut line = format!("AUTH\t{}\tPLAIN\tservice={}", self.id, escape(self.service));
        if self.secured {
            line.push_str("\tsecured");
        }
        if let Some(local) = self.local_ip {
            line.push_str(&format!("\tlip={local}"));
        }
        if let Some(remote) = self.remote_ip {
            line.push_str(&format!("\trip={remote}"));
        }
        line.push_str("\tresp=");
        line.push_str(&response);
        if line.len() > MAX_LINE_BYTES {
            return Err(DovecotError::TooLong);
        }
        line.push('\n');
        Ok(line)
    }
}

/// What a request came to, from the answer with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `OK`: the password is right. `user=` is the name Dovecot knows the user by (its passdb
    /// may have changed it, e.g. lowercased it or added a domain).
    Success {
        /// The `user=` field, if sent.
        user: Option<String>,
    },
    /// `FAIL` without `code=temp_fail`: wrong password, unknown or disabled user.
    Refused {
        /// `code=` (`user_disabled`, `pass_expired`, `authz_fail`, ...), if sent.
        code: Option<String>,
    },
    /// `FAIL` with `code=temp_fail` (or the older `temp` flag): Dovecot could not decide (its
    /// passdb is down).
    TemporaryFailure {
        /// `reason=`, if sent.
        reason: Option<String>,
    },
    /// `CONT`: the mechanism asks for another round, which PLAIN with an initial response
    /// never does.
    Continue,
}

impl Outcome {
    /// The outcome of request `id` if `line` answers it; None for any other line.
    pub fn of(line: &ServerLine, id: u32) -> Option<Self> {
        match line {
            ServerLine::Ok { id: answered, fields } if *answered == id => {
                Some(Self::Success { user: fields.value("user").map(str::to_owned) })
            }
            ServerLine::Fail { id: answered, fields } if *answered == id => {
                let code = fields.value("code");
                if code == Some("temp_fail") || fields.has("temp") {
                    Some(Self::TemporaryFailure {
                        reason: fields.value("reason").map(str::to_owned),
                    })
                } else {
                    Some(Self::Refused { code: code.map(str::to_owned) })
                }
            }
            ServerLine::Cont { id: answered } if *answered == id => Some(Self::Continue),
            _ => None,
        }
    }
}

/// What the client sends first on the auth-master socket.
pub fn master_hello() -> String {
    let (major, minor) = MASTER_VERSION;
    format!("VERSION\t{major}\t{minor}\n")
}

/// A passdb lookup on the auth-master socket (`PASS <id> <user> service=<service>`), what
/// `doveadm auth lookup` sends: does the user exist, and may they log in? Refuses a user name
/// with a control character or an empty one.
pub fn pass_lookup(id: u32, user: &str, service: &str) -> Result<String, DovecotError> {
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(DovecotError::Credentials);
    }
    let line = format!("PASS\t{id}\t{}\tservice={}", escape(user), escape(service));
    if line.len() > MAX_LINE_BYTES {
        return Err(DovecotError::TooLong);
    }
    Ok(line + "\n")
}

/// A line from the auth-master socket (`src/auth/auth-master-connection.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterLine {
    /// `VERSION <major> <minor>`.
    Version {
        /// Incompatible when not ours.
        major: u32,
    },
    /// `SPID <pid>`.
    Spid,
    /// `PASS <id> user=<user> [<field>...]`: the passdb has the user and lets them in.
    Pass {
        /// The request's id.
        id: u32,
    },
    /// `USER <id> ...`: the userdb has the user.
    User {
        /// The request's id.
        id: u32,
    },
    /// `NOTFOUND <id>`: no such user, or disabled, or the password expired.
    NotFound {
        /// The request's id.
        id: u32,
    },
    /// `FAIL <id> [reason=...]`: the lookup could not be done.
    Fail {
        /// The request's id.
        id: u32,
    },
}

impl MasterLine {
    /// Parses one line without its LF.
    pub fn parse(line: &str) -> Result<Self, DovecotError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(DovecotError::TooLong);
        }
        let fields = split(line);
        let Some((command, arguments)) = fields.split_first() else {
            return Err(DovecotError::UnknownCommand);
        };
        let id = || -> Result<u32, DovecotError> {
            number(arguments.first().ok_or(DovecotError::MissingField)?)
        };
        Ok(match command.as_str() {
            "VERSION" => match arguments {
                [major, minor, ..] => {
                    number(minor)?;
                    Self::Version { major: number(major)? }
                }
                _ => return Err(DovecotError::MissingField),
            },
            "SPID" => Self::Spid,
            "PASS" => Self::Pass { id: id()? },
            "USER" => Self::User { id: id()? },
            "NOTFOUND" => Self::NotFound { id: id()? },
            "FAIL" => Self::Fail { id: id()? },
            _ => return Err(DovecotError::UnknownCommand),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request<'a>(user: &'a str, password: &'a str) -> AuthRequest<'a> {
        AuthRequest {
            id: 9,
            service: "letterlock",
            user,
            password,
            remote_ip: Some("2001:db8::7".parse().unwrap()),
            local_ip: None,
            secured: false,
        }
    }

    /// The PLAIN response a line carries, decoded.
    fn response(line: &str) -> Vec<u8> {
        let resp = split(line.trim_end_matches('\n'))
            .into_iter()
            .find_map(|field| field.strip_prefix("resp=").map(str::to_owned))
            .unwrap();
        STANDARD.decode(resp).unwrap()
    }

    #[test]
    fn escaping_is_dovecots() {
        // strescape.c: 0x01, TAB, CR, LF; everything else as is.
        assert_eq!(escape("a\tb\nc\rd\u{1}e"), "a\u{1}tb\u{1}nc\u{1}rd\u{1}1e");
        assert_eq!(unescape("a\u{1}tb\u{1}nc\u{1}rd\u{1}1e"), "a\tb\nc\rd\u{1}e");
        assert_eq!(unescape("x\u{1}0y\u{1}z\u{1}"), "x\0yz");
        assert_eq!(split("OK\t1\tuser=a\u{1}tb"), ["OK", "1", "user=a\tb"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn a_request_is_one_line_whatever_the_password() {
        for password in ["plain", "with space", "= %u \"quoted\" \\", "ünïcødé", "\u{7f}\u{1b}"]
        {
            let line = request("alice@example.com", password).encode().unwrap();
            assert_eq!(line.matches('\n').count(), 1, "{password:?}");
            assert!(line.ends_with('\n'));
            assert_eq!(response(&line), format!("\0alice@example.com\0{password}").as_bytes());
            assert!(line.contains("\trip=2001:db8::7\t"));
        }
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        for (user, password) in [
            ("alice\0bob", "secret"),
            ("alice", "sec\0ret"),
            ("alice", "tab\there"),
            ("alice", "line\nfeed"),
            ("alice", "cr\rhere"),
            ("alice", "\u{1}t"),
            ("alice\tbob", "secret"),
            ("alice\nbob", "secret"),
            ("", "secret"),
            ("alice", ""),
        ] {
            assert_eq!(request(user, password).encode(), Err(DovecotError::Credentials));
        }
        let long = "x".repeat(MAX_LINE_BYTES);
        assert_eq!(request("alice", &long).encode(), Err(DovecotError::TooLong));
        assert_eq!(pass_lookup(1, "a\nb", "letterlock"), Err(DovecotError::Credentials));
    }

    #[test]
    fn the_service_name_is_escaped() {
        let mut request = request("alice", "secret");
        request.service = "evil\tresp=AAAA";
        let line = request.encode().unwrap();
        assert!(line.contains("service=evil\u{1}tresp=AAAA\t"));
        assert_eq!(split(line.trim_end()).iter().filter(|f| f.starts_with("resp=")).count(), 1);
    }

    #[test]
    fn handshake_of_dovecot_2_3_19() {
        let mut handshake = ClientHandshake::default();
        for line in [
            "VERSION\t1\t2",
            "MECH\tPLAIN\tplaintext",
            "MECH\tLOGIN\tplaintext",
            "SPID\t1234",
            "CUID\t1",
            "COOKIE\tc0ffee",
        ] {
            handshake.receive(&ServerLine::parse(line).unwrap()).unwrap();
            assert!(!handshake.is_ready());
        }
        handshake.receive(&ServerLine::Done).unwrap();
        assert!(handshake.is_ready());
        assert_eq!(handshake.receive(&ServerLine::Done), Err(DovecotError::OutOfOrder));
        assert_eq!(ClientHandshake::hello(0), "VERSION\t1\t2\nCPID\t1\n");
    }

    #[test]
    fn a_handshake_without_plain_or_of_another_version_is_refused() {
        let mut handshake = ClientHandshake::default();
        for line in ["VERSION\t1\t2", "MECH\tOAUTHBEARER", "COOKIE\tc0ffee"] {
            handshake.receive(&ServerLine::parse(line).unwrap()).unwrap();
        }
        assert_eq!(handshake.receive(&ServerLine::Done), Err(DovecotError::Handshake));
        let mut handshake = ClientHandshake::default();
        assert_eq!(
            handshake.receive(&ServerLine::parse("VERSION\t2\t0").unwrap()),
            Err(DovecotError::IncompatibleVersion(2))
        );
        let mut handshake = ClientHandshake::default();
        let early = ServerLine::parse("OK\t1\tuser=alice").unwrap();
        assert_eq!(handshake.receive(&early), Err(DovecotError::OutOfOrder));
    }

    #[test]
    fn answers_of_dovecot_2_3_19() {
        let ok = ServerLine::parse("OK\t3\tuser=Alice@Example.com\toriginal_user=alice").unwrap();
        assert_eq!(
            Outcome::of(&ok, 3),
            Some(Outcome::Success { user: Some("Alice@Example.com".into()) })
        );
        assert_eq!(Outcome::of(&ok, 4), None, "another request's answer");
        let fail = ServerLine::parse("FAIL\t3\tuser=alice").unwrap();
        assert_eq!(Outcome::of(&fail, 3), Some(Outcome::Refused { code: None }));
        let disabled = ServerLine::parse("FAIL\t3\tuser=alice\tcode=user_disabled").unwrap();
        assert_eq!(
            Outcome::of(&disabled, 3),
            Some(Outcome::Refused { code: Some("user_disabled".into()) })
        );
        let temporary =
            ServerLine::parse("FAIL\t3\tcode=temp_fail\treason=LDAP server down").unwrap();
        assert_eq!(
            Outcome::of(&temporary, 3),
            Some(Outcome::TemporaryFailure { reason: Some("LDAP server down".into()) })
        );
        let cont = ServerLine::parse("CONT\t3\t").unwrap();
        assert_eq!(Outcome::of(&cont, 3), Some(Outcome::Continue));
    }

    #[test]
    fn broken_lines_are_refused() {
        for line in [
            "",
            "HELLO",
            "OK",
            "OK\t-1",
            "OK\t4294967296",
            "OK\tx",
            "FAIL\t",
            "CONT\t1",
            "VERSION\t1",
            "VERSION\tone\t2",
            "MECH",
            "COOKIE",
        ] {
            assert!(ServerLine::parse(line).is_err(), "{line:?}");
        }
        assert_eq!(ServerLine::parse(&"x".repeat(MAX_LINE_BYTES + 1)), Err(DovecotError::TooLong));
    }

    #[test]
    fn master_lookups() {
        assert_eq!(master_hello(), "VERSION\t1\t1\n");
        assert_eq!(
            pass_lookup(5, "alice@example.com", "letterlock").unwrap(),
            "PASS\t5\talice@example.com\tservice=letterlock\n"
        );
        assert_eq!(MasterLine::parse("VERSION\t1\t1"), Ok(MasterLine::Version { major: 1 }));
        assert_eq!(MasterLine::parse("SPID\t99"), Ok(MasterLine::Spid));
        assert_eq!(
            MasterLine::parse("PASS\t5\tuser=alice@example.com"),
            Ok(MasterLine::Pass { id: 5 })
        );
        assert_eq!(MasterLine::parse("NOTFOUND\t5"), Ok(MasterLine::NotFound { id: 5 }));
        assert_eq!(MasterLine::parse("FAIL\t5\treason=x"), Ok(MasterLine::Fail { id: 5 }));
        assert!(MasterLine::parse("PASS").is_err());
        assert!(MasterLine::parse("MAYBE\t5").is_err());
    }

    proptest! {
        // Dovecot's line parsers face the network (a socket anyone on the host, or the
        // network for an inet_listener, may claim to be): any line is a value or an error.
        #[test]
        fn any_line_parses_or_is_refused(line in ".{0,300}") {
            let _ = ServerLine::parse(&line);
            let _ = MasterLine::parse(&line);
            if let Ok(parsed) = ServerLine::parse(&line) {
                let _ = ClientHandshake::default().receive(&parsed);
                let _ = Outcome::of(&parsed, 1);
            }
        }

        #[test]
        fn escaping_round_trips_and_never_splits(value in "[\\x00-\\x7f\\u{80}-\\u{10ffff}]{0,64}") {
            let escaped = escape(&value);
            prop_assert!(!escaped.contains('\t') && !escaped.contains('\n') && !escaped.contains('\r'));
            prop_assert_eq!(unescape(&escaped), value);
        }

        #[test]
        fn a_request_never_splits_a_line(user in ".{1,40}", password in "[\\x00-\\x7f\\u{80}-\\u{10ffff}]{1,80}") {
            let request = request(&user, &password);
            match request.encode() {
                Ok(line) => {
                    prop_assert_eq!(line.matches('\n').count(), 1);
                    prop_assert!(!line.contains('\r'));
                    let expected = format!("\0{user}\0{password}");
                    prop_assert_eq!(response(&line), expected.as_bytes());
                }
                Err(error) => prop_assert_eq!(error, DovecotError::Credentials),
            }
        }
    }
}
