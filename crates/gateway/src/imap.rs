//! The IMAP front door (RFC 9051, RFC 3501): the not-authenticated state, where the only way in
//! is `AUTHENTICATE OAUTHBEARER` or `XOAUTH2` (RFC 7628) with SASL-IR (RFC 4959) ([`machine`]);
//! then the back-end login (here) and the relay.
//!
//! The front door parses only the few commands valid before login. After it, bytes pass through
//! unparsed except for finding response boundaries (see [`crate::relay`]), so every extension the
//! back end offers (IDLE, CONDSTORE) works unchanged. COMPRESS (RFC 4978), where the back end
//! offers it, passes too, but the door then sees no response boundaries in the compressed
//! stream: a session it ends is closed without its farewell, within the relay's boundary wait.

pub mod machine;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

pub use self::machine::{Command, CommandError, Machine, announced_literal};
use crate::config::LoginMode;
use crate::door::{Authenticated, BackendError, Door};
use crate::stream::{LineStream, Stream};

/// How long the back end may take per line during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves one client connection: [`Machine`] driven by [`crate::door::drive`].
pub async fn session(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    crate::door::drive::<Machine>(door, stream, peer).await;
}

/// Logs in to the back end as the user; returns the connection and the text of its tagged OK
/// (with the capabilities after login). Over TCP, an `ID` command sent in the same write tells
/// the back end the client's address (RFC 2971 with Dovecot's `x-originating-ip`; ignored unless
/// the door is in Dovecot's `login_trusted_networks`), so its logs and per-address limits see
/// the client rather than the door.
pub(crate) async fn backend_login(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_about_the_session_are_not_the_clients_fault() {
        assert!(declines_for_now("NO [LIMIT] Maximum number of connections from user+IP exceeded"));
        assert!(declines_for_now("NO [INUSE] Mailbox is locked"));
        assert!(declines_for_now("NO [UNAVAILABLE] Try later"));
        assert!(!declines_for_now("NO [AUTHENTICATIONFAILED] Authentication failed."));
        assert!(!declines_for_now("NO Authentication failed."));
        assert!(!declines_for_now("BAD [LIMIT] odd"));
    }
}
