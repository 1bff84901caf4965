//! The IMAP front door (RFC 9051, RFC 3501): the not-authenticated state, where the only way in
//! is `AUTHENTICATE OAUTHBEARER` or `XOAUTH2` (RFC 7628) with SASL-IR (RFC 4959); then the
//! back-end login and the relay.
//!
//! The front door parses only the few commands valid before login. After it, bytes pass through
//! unparsed except for finding response boundaries (see [`crate::relay`]), so every extension the
//! back end offers (IDLE, CONDSTORE) works unchanged. COMPRESS (RFC 4978), where the back end
//! offers it, passes too, but the door then sees no response boundaries in the compressed
//! stream: a session it ends is closed without its farewell, within the relay's boundary wait.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

use crate::config::LoginMode;
use crate::door::{Authenticated, BackendError, Door, Goodbyes, Outcome, goodbye};
use crate::relay::{Boundaries, Ending};
use crate::stream::LineStream;

/// How long the back end may take per line during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A command line before login: tag, command name (upper case), and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The tag.
    pub tag: String,
    /// The command name in upper case.
    pub name: String,
    /// The arguments, as sent.
    pub arguments: String,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No valid tag: the answer is an untagged `BAD`.
    Tag,
    /// A tag but no command name: the answer is a tagged `BAD`.
    Name(String),
}

/// RFC 9051 §9: `tag = 1*<any ASTRING-CHAR except "+">`.
fn is_tag_char(byte: u8) -> bool {
    byte > b' ' && byte < 0x7f && !b"(){%*\"\\+".contains(&byte)
}

impl Command {
    /// Parses a command line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        let tag_end = line.iter().position(|&byte| byte == b' ').unwrap_or(line.len());
        let tag = &line[..tag_end];
        if tag.is_empty() || !tag.iter().all(|&byte| is_tag_char(byte)) {
            return Err(CommandError::Tag);
        }
        let tag = String::from_utf8_lossy(tag).into_owned();
        let rest = line.get(tag_end + 1..).unwrap_or_default();
        let name_end = rest.iter().position(|&byte| byte == b' ').unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() || !name.iter().all(u8::is_ascii_alphanumeric) {
            return Err(CommandError::Name(tag));
        }
        Ok(Self {
            tag,
            name: String::from_utf8_lossy(name).to_ascii_uppercase(),
            arguments: String::from_utf8_lossy(rest.get(name_end + 1..).unwrap_or_default())
                .into_owned(),
        })
    }
}

/// The literal a line announces at its end (`{n}` or `{n+}`), if any.
pub fn announced_literal(line: &[u8]) -> Option<(usize, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&byte| byte == b'{')?;
    let inside = &body[open + 1..];
    let (digits, non_synchronising) = match inside.strip_suffix(b"+") {
        Some(digits) => (digits, true),
        None => (inside, false),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().map(|size| (size, non_synchronising))
}

fn capabilities(door: &Door, stream: &LineStream) -> String {
    let mut capabilities = String::from("IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+");
    if door.awaits_starttls(stream) {
        capabilities.push_str(" STARTTLS LOGINDISABLED");
    } else {
        capabilities.push_str(" AUTH=OAUTHBEARER AUTH=XOAUTH2 LOGINDISABLED");
    }
    capabilities
}

/// Serves one client connection.
pub async fn session(door: Arc<Door>, stream: crate::stream::Stream, peer: SocketAddr) {
    let mut client = LineStream::new(stream);
    let greeting = format!(
        "* OK [CAPABILITY {}] Letterlock IMAP ready; log in with an OAuth token\r\n",
        capabilities(&door, &client)
    );
    if client.send(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let line = match pending.take() {
            Some(line) => line,
            None => match read_command(&door, &mut client).await {
                Some(line) => line,
                None => return,
            },
        };
        let command = match Command::parse(&line) {
            Ok(command) => command,
            Err(CommandError::Tag) => {
                if client.send(b"* BAD Invalid tag\r\n").await.is_err() {
                    return;
                }
                continue;
            }
            Err(CommandError::Name(tag)) => {
                if client.send(format!("{tag} BAD Missing command\r\n").as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let tag = &command.tag;
        let reply = match command.name.as_str() {
            "CAPABILITY" => format!(
                "* CAPABILITY {}\r\n{tag} OK Capability completed\r\n",
                capabilities(&door, &client)
            ),
            "NOOP" => format!("{tag} OK NOOP completed\r\n"),
            "ID" => format!("* ID (\"name\" \"Letterlock\")\r\n{tag} OK ID completed\r\n"),
            "LOGOUT" => {
                let _ = client
                    .send(format!("* BYE Logging out\r\n{tag} OK Logout completed\r\n").as_bytes())
                    .await;
                return;
            }
            "STARTTLS" if door.awaits_starttls(&client) => {
                let ready = format!("{tag} OK Begin TLS negotiation now\r\n");
                let Some(upgraded) = door.starttls(client, &ready, peer).await else { return };
                client = upgraded;
                continue;
            }
            "STARTTLS" => format!("{tag} BAD TLS is already active or not offered\r\n"),
            "LOGIN" => format!(
                "{tag} NO [PRIVACYREQUIRED] Passwords are not accepted here: AUTHENTICATE OAUTHBEARER or XOAUTH2 with an OAuth token\r\n"
            ),
            "AUTHENTICATE" if door.awaits_starttls(&client) => {
                format!("{tag} NO [PRIVACYREQUIRED] Run STARTTLS first\r\n")
            }
            "AUTHENTICATE" => match authenticate(&door, &mut client, &command, peer).await {
                Step::Reply(reply) => reply,
                Step::ReplyThen(reply, line) => {
                    pending = Some(line);
                    reply
                }
                Step::LoggedIn(logged_in) => {
                    let (authenticated, backend, ok_text) = *logged_in;
                    let ending = relay(&door, client, backend, &authenticated, tag, &ok_text).await;
                    door.log_ending(peer, &authenticated.user, ending);
                    return;
                }
                Step::Farewell(line) => {
                    let _ = client.send(line.as_bytes()).await;
                    return;
                }
                Step::Close => return,
            },
            _ => format!("{tag} BAD Log in first: AUTHENTICATE OAUTHBEARER or XOAUTH2\r\n"),
        };
        if client.send(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "* BYE Server shutting down\r\n",
    timeout: "* BYE Autologout; too long without logging in\r\n",
    too_long: "* BYE Command line too long\r\n",
};

/// Reads a command line, with the literals it announces folded in (so a `LOGIN` with literals
/// is read whole and refused, and the connection stays in step). `None` once the connection is
/// over.
async fn read_command(door: &Door, client: &mut LineStream) -> Option<Vec<u8>> {
    let max = door.shared.settings.max_line_bytes;
    let mut command = Vec::new();
    loop {
        let line = door.next_line(client, max.saturating_sub(command.len()), &GOODBYES).await?;
        command.extend_from_slice(&line);
        let Some((size, non_synchronising)) = announced_literal(&line) else {
            return Some(command);
        };
        if command.len() + size > max {
            return goodbye(client, GOODBYES.too_long).await;
        }
        if !non_synchronising {
            client.send(b"+ Ready for literal data\r\n").await.ok()?;
        }
        command.extend_from_slice(b"\r\n");
        command
            .extend_from_slice(&client.read_exact(size, door.shared.login_timeout()).await.ok()?);
    }
}

enum Step {
    /// Send this and read the next command.
    Reply(String),
    /// Send this, then treat the line as the next command.
    ReplyThen(String, Vec<u8>),
    /// Logged in at the back end, whose tagged OK text follows.
    LoggedIn(Box<(Authenticated, LineStream, String)>),
    /// Say this and close.
    Farewell(&'static str),
    /// The connection is gone.
    Close,
}

async fn authenticate(
    door: &Door,
    client: &mut LineStream,
    command: &Command,
    peer: SocketAddr,
) -> Step {
    let tag = &command.tag;
    let mut arguments = command.arguments.split(' ').filter(|part| !part.is_empty());
    let (mechanism, initial) = (arguments.next(), arguments.next());
    let failed = || {
        format!(
            "{tag} NO [AUTHENTICATIONFAILED] Get a token from {}\r\n",
            door.shared.authority.issuer()
        )
    };
    let authenticated = match door.sasl(client, mechanism, initial, "+ ", peer).await {
        Outcome::Authenticated(authenticated) => authenticated,
        Outcome::Unsupported => {
            return Step::Reply(format!(
                "{tag} NO Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n"
            ));
        }
        Outcome::Cancelled => {
            return Step::Reply(format!("{tag} BAD Authentication cancelled\r\n"));
        }
        Outcome::NotBase64 => {
            return Step::Reply(format!("{tag} BAD The response is not base64\r\n"));
        }
        Outcome::Malformed(error) => {
            return Step::Reply(format!("{tag} NO [AUTHENTICATIONFAILED] {error}\r\n"));
        }
        Outcome::Refused(reason) => {
            return Step::Reply(format!("{tag} NO [AUTHENTICATIONFAILED] {reason}\r\n"));
        }
        // Thunderbird answers the challenge by sending its whole AUTHENTICATE command again:
        // finish this exchange and read that line as the next command.
        Outcome::Failed(Some(line)) if Command::parse(&line).is_ok() => {
            return Step::ReplyThen(failed(), line);
        }
        Outcome::Failed(_) => return Step::Reply(failed()),
        outcome @ (Outcome::TimedOut | Outcome::TooLong) => {
            return GOODBYES.for_outcome(&outcome).map_or(Step::Close, Step::Farewell);
        }
        Outcome::Closed => return Step::Close,
    };
    match backend_login(door, &authenticated, peer).await {
        Ok((backend, ok_text)) => Step::LoggedIn(Box::new((authenticated, backend, ok_text))),
        Err(error) => {
            door.backend_failed(peer, &authenticated.user, &error);
            Step::Reply(match error {
                BackendError::Busy(text) => format!("{tag} {text}\r\n"),
                BackendError::Refused(_) => format!(
                    "{tag} NO [AUTHENTICATIONFAILED] The mail server did not accept the login\r\n"
                ),
                BackendError::Unavailable(_) => format!(
                    "{tag} NO [UNAVAILABLE] The mail server is unavailable; try again later\r\n"
                ),
            })
        }
    }
}

/// Logs in to the back end as the user; returns the connection and the text of its tagged OK
/// (with the capabilities after login). Over TCP, an `ID` command sent in the same write tells
/// the back end the client's address (RFC 2971 with Dovecot's `x-originating-ip`; ignored unless
/// the door is in Dovecot's `login_trusted_networks`), so its logs and per-address limits see
/// the client rather than the door.
async fn backend_login(
    door: &Door,
    authenticated: &Authenticated,
    peer: SocketAddr,
) -> Result<(LineStream, String), BackendError> {
    let max = door.shared.settings.max_line_bytes;
    let mut backend = door.connect_backend().await?;
    let greeting = backend.read_line(max, BACKEND_TIMEOUT).await?;
    if !greeting.starts_with(b"* OK") {
        return Err(BackendError::Unavailable(format!(
            "unexpected greeting: {}",
            String::from_utf8_lossy(&greeting)
        )));
    }
    if door.config.backend.tls == crate::config::TlsMode::Starttls {
        backend.send(b"L0 STARTTLS\r\n").await?;
        tagged(&mut backend, "L0", max, |_| None).await?;
        backend = door.backend_starttls(backend).await?;
    }
    let (mechanism, response) = match door.login_mode() {
        LoginMode::Token => (
            "OAUTHBEARER",
            letterlock_sasl::oauthbearer::encode(
                Some(&authenticated.user),
                None,
                None,
                authenticated.token.declassify(),
            ),
        ),
        _ => ("PLAIN", door.master_plain(&authenticated.user)),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(response);
    let mut login = String::new();
    if door.forwards_client_address() {
        login.push_str(&format!(
            "L0 ID (\"x-originating-ip\" \"{}\" \"x-originating-port\" \"{}\")\r\n",
            peer.ip().to_canonical(),
            peer.port()
        ));
    }
    login.push_str(&format!("L1 AUTHENTICATE {mechanism} {encoded}\r\n"));
    backend.send(login.as_bytes()).await?;
    // A `+` here is OAUTHBEARER's error challenge: acknowledge it to get the tagged NO.
    let text = tagged(&mut backend, "L1", max, |_| Some(b"AQ==\r\n".as_slice())).await?;
    Ok((backend, text))
}

/// Reads until the tagged response for `tag`; answers continuation requests with `on_plus`.
async fn tagged(
    backend: &mut LineStream,
    tag: &str,
    max: usize,
    on_plus: impl Fn(&[u8]) -> Option<&'static [u8]>,
) -> Result<String, BackendError> {
    let prefix = format!("{tag} ");
    loop {
        let line = backend.read_line(max, BACKEND_TIMEOUT).await?;
        if line.starts_with(b"+") {
            match on_plus(&line) {
                Some(answer) => backend.send(answer).await?,
                None => return Err(BackendError::Unavailable("unexpected continuation".into())),
            }
            continue;
        }
        let Some(rest) = line.strip_prefix(prefix.as_bytes()) else {
            continue;
        };
        let text = String::from_utf8_lossy(rest).into_owned();
        return if text.get(..3).is_some_and(|ok| ok.eq_ignore_ascii_case("OK ")) {
            Ok(text)
        } else if declines_for_now(&text) {
            Err(BackendError::Busy(text))
        } else {
            Err(BackendError::Refused(text))
        };
    }
}

/// A tagged `NO` that is about the session, not the credentials (RFC 5530: `LIMIT`, `INUSE`,
/// `UNAVAILABLE`), such as Dovecot's `mail_max_userip_connections`.
fn declines_for_now(text: &str) -> bool {
    let Some(code) = text.strip_prefix("NO [").and_then(|rest| rest.split([']', ' ']).next())
    else {
        return false;
    };
    ["LIMIT", "INUSE", "UNAVAILABLE"].iter().any(|busy| code.eq_ignore_ascii_case(busy))
}

async fn relay(
    door: &Door,
    client: LineStream,
    backend: LineStream,
    authenticated: &Authenticated,
    tag: &str,
    ok_text: &str,
) -> Ending {
    let ok = format!("{tag} {ok_text}\r\n");
    door.relay(client, backend, authenticated, &ok, (Boundaries::imap(), None), farewell).await
}

fn farewell(ending: Ending) -> Option<String> {
    let text = match ending {
        Ending::Closed => return None,
        Ending::Revoked => "Access for this device was revoked; sign in again",
        Ending::TokenRevoked => "The login token was revoked; log in again",
        Ending::Expired => "The login token has expired; log in again",
        Ending::Shutdown => "Server shutting down",
        Ending::Idle => "Autologout; idle for too long",
    };
    Some(format!("* BYE {text}\r\n"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn commands() {
        let command = Command::parse(b"a1 authenticate XOAUTH2 dXNlcg==").unwrap();
        assert_eq!(command.tag, "a1");
        assert_eq!(command.name, "AUTHENTICATE");
        assert_eq!(command.arguments, "XOAUTH2 dXNlcg==");
        assert_eq!(Command::parse(b"a2 NOOP").unwrap().arguments, "");
        assert_eq!(Command::parse(b"+x NOOP"), Err(CommandError::Tag));
        assert_eq!(Command::parse(b""), Err(CommandError::Tag));
        assert_eq!(Command::parse(b"a3"), Err(CommandError::Name("a3".into())));
        assert_eq!(Command::parse(b"a4 {5}"), Err(CommandError::Name("a4".into())));
    }

    #[test]
    fn refusals_about_the_session_are_not_the_clients_fault() {
        assert!(declines_for_now("NO [LIMIT] Maximum number of connections from user+IP exceeded"));
        assert!(declines_for_now("NO [INUSE] Mailbox is locked"));
        assert!(declines_for_now("NO [UNAVAILABLE] Try later"));
        assert!(!declines_for_now("NO [AUTHENTICATIONFAILED] Authentication failed."));
        assert!(!declines_for_now("NO Authentication failed."));
        assert!(!declines_for_now("BAD [LIMIT] odd"));
    }

    #[test]
    fn literals() {
        assert_eq!(announced_literal(b"a LOGIN {5}"), Some((5, false)));
        assert_eq!(announced_literal(b"a LOGIN {5+}"), Some((5, true)));
        assert_eq!(announced_literal(b"a LOGIN {}"), None);
        assert_eq!(announced_literal(b"a LOGIN {99999999999}"), None);
        assert_eq!(announced_literal(b"a LOGIN x"), None);
    }

    proptest! {
        #[test]
        fn command_parsing_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Command::parse(&line);
            let _ = announced_literal(&line);
        }
    }
}
