//! The POP3 front door (RFC 1939, RFC 2449 `CAPA`, RFC 5034 `AUTH`, RFC 2595 `STLS`): before
//! login, [`machine`] (`AUTH OAUTHBEARER` or `XOAUTH2` with the token; `USER`, `PASS` and `APOP`
//! are refused: passwords are not taken here); then the back-end login (here) and the relay.

pub mod machine;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

pub use self::machine::Machine;
use crate::config::{LoginMode, TlsMode};
use crate::door::{Authenticated, BackendError, Door};
use crate::stream::{LineStream, Stream};

/// How long the back end may take per line during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves one client connection: [`Machine`] driven by [`crate::door::drive`].
pub async fn session(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    crate::door::drive::<Machine>(door, stream, peer).await;
}

/// Reads one status line; `+OK` gives its text.
async fn status(backend: &mut LineStream, max: usize) -> Result<String, BackendError> {
    let line = backend.read_line(max, BACKEND_TIMEOUT).await?;
    let text = String::from_utf8_lossy(&line).into_owned();
    if text.starts_with("+OK") {
        Ok(text)
    } else if text.starts_with("-ERR") {
        Err(BackendError::Refused(text))
    } else {
        Err(BackendError::Unavailable(format!("unexpected reply: {text}")))
    }
}

/// Logs in to the back end as the user; returns the connection and its `+OK` line. Over TCP,
/// an `XCLIENT` command sent in the same write tells the back end the client's address (Dovecot
/// takes it from hosts in its `login_trusted_networks` and refuses it from others).
pub(crate) async fn backend_login(
    door: &Door,
    authenticated: &Authenticated,
    peer: SocketAddr,
) -> Result<(LineStream, String), BackendError> {
    let max = door.shared.settings.max_line_bytes;
    let mut backend = door.connect_backend().await?;
    status(&mut backend, max).await?;
    if door.config.backend.tls == TlsMode::Starttls {
        backend.send(b"STLS\r\n").await?;
        status(&mut backend, max).await?;
        backend = door.backend_starttls(backend).await?;
    }
    let base64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let command = match door.login_mode() {
        LoginMode::Token => format!(
            "AUTH OAUTHBEARER {}\r\n",
            base64(letterlock_sasl::oauthbearer::encode(
                Some(&authenticated.user),
                None,
                None,
                authenticated.token.declassify(),
            ))
        ),
        _ => format!("AUTH PLAIN {}\r\n", base64(door.master_plain(&authenticated.user))),
    };
    if door.forwards_client_address() {
        let xclient = format!("XCLIENT ADDR={} PORT={}\r\n", peer.ip().to_canonical(), peer.port());
        backend.send(format!("{xclient}{command}").as_bytes()).await?;
        // Its answer either way; a back end without XCLIENT says -ERR and goes on.
        backend.read_line(max, BACKEND_TIMEOUT).await?;
    } else {
        backend.send(command.as_bytes()).await?;
    }
    let line = backend.read_line(max, BACKEND_TIMEOUT).await?;
    if line.starts_with(b"+ ") || line == b"+" {
        // OAUTHBEARER's error challenge: the login has failed; acknowledge it to get the -ERR.
        backend.send(b"AQ==\r\n").await?;
        let text = status(&mut backend, max).await?;
        return Err(BackendError::Unavailable(format!(
            "unexpected success after a challenge: {text}"
        )));
    }
    let text = String::from_utf8_lossy(&line).into_owned();
    if text.starts_with("+OK") {
        Ok((backend, text))
    } else if declines_for_now(&text) {
        Err(BackendError::Busy(text))
    } else {
        Err(BackendError::Refused(text))
    }
}

/// An `-ERR` that is about the session, not the credentials (RFC 2449 and RFC 3206: `IN-USE`,
/// `LOGIN-DELAY`, `SYS/TEMP`).
fn declines_for_now(text: &str) -> bool {
    let Some(code) = text.strip_prefix("-ERR [").and_then(|rest| rest.split(']').next()) else {
        return false;
    };
    ["IN-USE", "LOGIN-DELAY", "SYS/TEMP"].iter().any(|busy| code.eq_ignore_ascii_case(busy))
}

#[cfg(test)]
mod tests {
    use super::declines_for_now;

    #[test]
    fn refusals_about_the_session_are_not_the_clients_fault() {
        assert!(declines_for_now("-ERR [IN-USE] Mailbox is locked by another POP3 session"));
        assert!(declines_for_now("-ERR [LOGIN-DELAY] Maximum number of connections exceeded"));
        assert!(declines_for_now("-ERR [SYS/TEMP] Try later"));
        assert!(!declines_for_now("-ERR [AUTH] Authentication failed."));
        assert!(!declines_for_now("-ERR Authentication failed."));
    }
}
