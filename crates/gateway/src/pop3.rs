//! The POP3 front door (RFC 1939, RFC 2449 `CAPA`, RFC 5034 `AUTH`, RFC 2595 `STLS`): `AUTH
//! OAUTHBEARER` or `XOAUTH2` with the token; then the back-end login and the relay. `USER`,
//! `PASS` and `APOP` are refused: passwords are not taken here.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

use crate::config::{LoginMode, TlsMode};
use crate::door::{Authenticated, BackendError, Door, Goodbyes, Outcome, goodbye};
use crate::relay::{Boundaries, Ending};
use crate::smtp::split_command;
use crate::stream::{LineStream, Stream};

/// How long the back end may take per line during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "-ERR [SYS/TEMP] Server shutting down\r\n",
    timeout: "-ERR Autologout; too long without logging in\r\n",
    too_long: "-ERR Line too long\r\n",
};

/// Serves one client connection.
pub async fn session(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    let mut client = LineStream::new(stream);
    if client.send(b"+OK Letterlock POP3 ready; log in with an OAuth token\r\n").await.is_err() {
        return;
    }
    let max = door.shared.settings.max_line_bytes;
    loop {
        let Some(line) = door.next_line(&mut client, max, &GOODBYES).await else { return };
        let (verb, arguments) = split_command(&line);
        let reply = match verb.as_str() {
            "CAPA" => {
                let mut reply = String::from("+OK Capability list follows\r\n");
                if door.awaits_starttls(&client) {
                    reply.push_str("STLS\r\n");
                } else {
                    reply.push_str("SASL OAUTHBEARER XOAUTH2\r\n");
                }
                reply.push_str("RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUIDL\r\nTOP\r\nIMPLEMENTATION Letterlock\r\n.\r\n");
                reply
            }
            "STLS" if door.awaits_starttls(&client) => {
                let ready = "+OK Begin TLS negotiation\r\n";
                let Some(upgraded) = door.starttls(client, ready, peer).await else { return };
                client = upgraded;
                continue;
            }
            "STLS" => "-ERR TLS is already active or not offered\r\n".to_owned(),
            "AUTH" if door.awaits_starttls(&client) => {
                "-ERR [AUTH] Run STLS first\r\n".to_owned()
            }
            "AUTH" if arguments.is_empty() => "+OK\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n".to_owned(),
            "AUTH" => {
                let mut parts = arguments.split(' ').filter(|part| !part.is_empty());
                let (mechanism, initial) = (parts.next(), parts.next());
                match door.sasl(&mut client, mechanism, initial, "+ ", peer).await {
                    Outcome::Authenticated(authenticated) => {
                        match backend_login(&door, &authenticated, peer).await {
                            Ok((backend, ok)) => {
                                let first_words = format!("{ok}\r\n");
                                let ending = door
                                    .relay(client, backend, &authenticated, &first_words, (Boundaries::lines(), None), farewell)
                                    .await;
                                door.log_ending(peer, &authenticated.user, ending);
                                return;
                            }
                            Err(error) => {
                                door.backend_failed(peer, &authenticated.user, &error);
                                match error {
                                    BackendError::Busy(text) => format!("{text}\r\n"),
                                    BackendError::Refused(_) => "-ERR [AUTH] The mail server did not accept the login\r\n".to_owned(),
                                    BackendError::Unavailable(_) => "-ERR [SYS/TEMP] The mail server is unavailable; try again later\r\n".to_owned(),
                                }
                            }
                        }
                    }
                    Outcome::Unsupported => "-ERR Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n".to_owned(),
                    Outcome::Cancelled => "-ERR Authentication cancelled\r\n".to_owned(),
                    Outcome::NotBase64 => "-ERR Cannot decode the response\r\n".to_owned(),
                    Outcome::Malformed(error) => format!("-ERR [AUTH] {error}\r\n"),
                    Outcome::Refused(reason) => format!("-ERR [AUTH] {reason}\r\n"),
                    Outcome::Failed(_) => format!(
                        "-ERR [AUTH] Authentication failed; get a token from {}\r\n",
                        door.shared.authority.issuer()
                    ),
                    outcome @ (Outcome::TimedOut | Outcome::TooLong) => {
                        if let Some(line) = GOODBYES.for_outcome(&outcome) {
                            goodbye(&mut client, line).await;
                        }
                        return;
                    }
                    Outcome::Closed => return,
                }
            }
            "USER" | "PASS" | "APOP" => {
                "-ERR [AUTH] Passwords are not accepted here: AUTH OAUTHBEARER or XOAUTH2 with an OAuth token\r\n".to_owned()
            }
            "NOOP" => "+OK\r\n".to_owned(),
            "QUIT" => {
                let _ = client.send(b"+OK Bye\r\n").await;
                return;
            }
            _ => "-ERR Log in first: AUTH OAUTHBEARER or XOAUTH2\r\n".to_owned(),
        };
        if client.send(reply.as_bytes()).await.is_err() {
            return;
        }
    }
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
async fn backend_login(
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

/// POP3 has no unsolicited responses: a session the gateway ends is just closed.
fn farewell(_ending: Ending) -> Option<String> {
    None
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
