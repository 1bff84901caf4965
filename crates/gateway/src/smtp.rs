//! The SMTP submission front door (RFC 6409, RFC 4954): `EHLO` offers `AUTH OAUTHBEARER XOAUTH2`
//! (after STARTTLS where the door requires it); `AUTH` takes the token; then the front door logs
//! in to the back end (AUTH PLAIN with an authorization id, a pass-through token, or Postfix's
//! XCLIENT) and relays the rest of the session.
//!
//! Before login only `EHLO`, `HELO`, `STARTTLS`, `AUTH`, `NOOP`, `RSET` and `QUIT` are served;
//! mail transactions get `530 5.7.0`.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

use crate::commands::SmtpCommands;
use crate::config::{LoginMode, TlsMode};
use crate::door::{Authenticated, BackendError, Door, Goodbyes, Outcome, goodbye};
use crate::relay::{Boundaries, Ending};
use crate::stream::{LineStream, Stream};

/// How long the back end may take per reply during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The extensions offered besides AUTH and STARTTLS: ones every submission server supports, so
/// that what the client sees here is still true once it talks to the back end.
const EXTENSIONS: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

fn host_name(door: &Door) -> &str {
    door.config.host_names.first().map_or("letterlock", String::as_str)
}

const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "421 4.3.2 Server shutting down\r\n",
    timeout: "421 4.4.2 Timeout; closing connection\r\n",
    too_long: "500 5.5.6 Line too long; closing connection\r\n",
};

/// A command: its verb in upper case and the rest.
pub fn split_command(line: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(line);
    let (verb, rest) = text.split_once(' ').unwrap_or((&text, ""));
    (verb.to_ascii_uppercase(), rest.trim().to_owned())
}

/// Serves one client connection.
pub async fn session(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    let mut client = LineStream::new(stream);
    let name = host_name(&door).to_owned();
    if client.send(format!("220 {name} ESMTP Letterlock ready\r\n").as_bytes()).await.is_err() {
        return;
    }
    let max = door.shared.settings.max_line_bytes;
    let mut greeted = false;
    loop {
        let Some(line) = door.next_line(&mut client, max, &GOODBYES).await else { return };
        let (verb, arguments) = split_command(&line);
        let reply = match verb.as_str() {
            "EHLO" if arguments.is_empty() => "501 5.5.4 EHLO needs a domain\r\n".to_owned(),
            "EHLO" => {
                greeted = true;
                let mut lines = vec![format!("{name} Letterlock")];
                lines.extend(EXTENSIONS.iter().map(|&extension| extension.to_owned()));
                if door.awaits_starttls(&client) {
                    lines.push("STARTTLS".into());
                } else {
                    lines.push("AUTH OAUTHBEARER XOAUTH2".into());
                }
                multiline(250, &lines)
            }
            "HELO" => {
                greeted = true;
                format!("250 {name}\r\n")
            }
            "STARTTLS" if door.awaits_starttls(&client) => {
                let ready = "220 2.0.0 Ready to start TLS\r\n";
                let Some(upgraded) = door.starttls(client, ready, peer).await else { return };
                client = upgraded;
                greeted = false;
                continue;
            }
            "STARTTLS" => "454 4.7.0 TLS not available\r\n".to_owned(),
            "AUTH" if !greeted => "503 5.5.1 Send EHLO first\r\n".to_owned(),
            "AUTH" if door.awaits_starttls(&client) => {
                "530 5.7.0 Must issue a STARTTLS command first\r\n".to_owned()
            }
            "AUTH" => {
                let mut parts = arguments.split(' ').filter(|part| !part.is_empty());
                let (mechanism, initial) = (parts.next(), parts.next());
                match door.sasl(&mut client, mechanism, initial, "334 ", peer).await {
                    Outcome::Authenticated(authenticated) => {
                        match backend_login(&door, &authenticated, peer).await {
                            Ok(backend) => {
                                let ending = door
                                    .relay(
                                        client,
                                        backend,
                                        &authenticated,
                                        "235 2.7.0 Authentication successful\r\n",
                                        (Boundaries::smtp(), Some(SmtpCommands::new(max))),
                                        farewell,
                                    )
                                    .await;
                                door.log_ending(peer, &authenticated.user, ending);
                                return;
                            }
                            Err(error) => {
                                door.backend_failed(peer, &authenticated.user, &error);
                                match error {
                                    BackendError::Refused(_) => "535 5.7.8 The mail server did not accept the login\r\n",
                                    BackendError::Unavailable(_) | BackendError::Busy(_) => "454 4.7.0 The mail server is unavailable; try again later\r\n",
                                }
                                .to_owned()
                            }
                        }
                    }
                    Outcome::Unsupported => {
                        "504 5.5.4 Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n".to_owned()
                    }
                    Outcome::Cancelled => "501 5.0.0 Authentication cancelled\r\n".to_owned(),
                    Outcome::NotBase64 => "501 5.5.2 Cannot decode the response\r\n".to_owned(),
                    Outcome::Malformed(error) => format!("535 5.7.8 {error}\r\n"),
                    Outcome::Refused(reason) => format!("454 4.7.0 {reason}\r\n"),
                    Outcome::Failed(_) => format!(
                        "535 5.7.8 Authentication credentials invalid; get a token from {}\r\n",
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
            "NOOP" | "RSET" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                let _ = client.send(b"221 2.0.0 Bye\r\n").await;
                return;
            }
            "MAIL" | "RCPT" | "DATA" | "BDAT" | "VRFY" | "EXPN" | "ETRN" => {
                "530 5.7.0 Authentication required: AUTH OAUTHBEARER or XOAUTH2\r\n".to_owned()
            }
            _ => "500 5.5.2 Command not recognised\r\n".to_owned(),
        };
        if client.send(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn multiline(code: u16, lines: &[String]) -> String {
    let mut reply = String::new();
    for (index, line) in lines.iter().enumerate() {
        let separator = if index + 1 == lines.len() { ' ' } else { '-' };
        reply.push_str(&format!("{code}{separator}{line}\r\n"));
    }
    reply
}

/// Reads a whole (possibly multi-line) reply: its code and the last line's text.
async fn reply(backend: &mut LineStream, max: usize) -> Result<(u16, String), BackendError> {
    let (code, mut lines) = reply_lines(backend, max).await?;
    Ok((code, lines.pop().unwrap_or_default()))
}

/// Reads a whole reply: its code and every line's text (an EHLO reply's extensions).
async fn reply_lines(
    backend: &mut LineStream,
    max: usize,
) -> Result<(u16, Vec<String>), BackendError> {
    let mut lines = Vec::new();
    loop {
        let line = backend.read_line(max, BACKEND_TIMEOUT).await?;
        let code = line
            .get(..3)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| {
                BackendError::Unavailable(format!(
                    "not an SMTP reply: {}",
                    String::from_utf8_lossy(&line)
                ))
            })?;
        lines.push(String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned());
        if line.get(3) != Some(&b'-') {
            return Ok((code, lines));
        }
    }
}

/// Sends EHLO; true when the back end offers XCLIENT with `ADDR` (Postfix and Dovecot do to
/// the hosts they trust).
async fn ehlo(backend: &mut LineStream, ehlo: &str, max: usize) -> Result<bool, BackendError> {
    backend.send(ehlo.as_bytes()).await?;
    let (code, lines) = reply_lines(backend, max).await?;
    if code != 250 {
        return Err(BackendError::Unavailable(format!("EHLO: {code} {}", lines.join(" "))));
    }
    Ok(lines.iter().any(|line| {
        let mut words = line.split_ascii_whitespace();
        words.next().is_some_and(|word| word.eq_ignore_ascii_case("XCLIENT"))
            && words.any(|word| word.eq_ignore_ascii_case("ADDR"))
    }))
}

async fn expect(
    backend: &mut LineStream,
    command: Option<&str>,
    wanted: u16,
    max: usize,
) -> Result<(), BackendError> {
    if let Some(command) = command {
        backend.send(command.as_bytes()).await?;
    }
    let (code, text) = reply(backend, max).await?;
    if code == wanted {
        Ok(())
    } else if code >= 500 {
        Err(BackendError::Refused(format!("{code} {text}")))
    } else {
        Err(BackendError::Unavailable(format!("{code} {text}")))
    }
}

/// Logs in to the back-end submission server as the user.
async fn backend_login(
    door: &Door,
    authenticated: &Authenticated,
    peer: SocketAddr,
) -> Result<LineStream, BackendError> {
    let max = door.shared.settings.max_line_bytes;
    let ehlo = format!("EHLO {}\r\n", host_name(door));
    let mut backend = door.connect_backend().await?;
    expect(&mut backend, None, 220, max).await?;
    let mut xclient = self::ehlo(&mut backend, &ehlo, max).await?;
    if door.config.backend.tls == TlsMode::Starttls {
        expect(&mut backend, Some("STARTTLS\r\n"), 220, max).await?;
        backend = door.backend_starttls(backend).await?;
        xclient = self::ehlo(&mut backend, &ehlo, max).await?;
    }
    // The client's address for the back end's logs and limits (and the Received header of a
    // relaying Dovecot), where it offers XCLIENT; the xclient login sends it with LOGIN= below.
    if xclient && door.forwards_client_address() && door.login_mode() != LoginMode::Xclient {
        let command = format!("XCLIENT ADDR={} PORT={}\r\n", xclient_address(peer), peer.port());
        expect(&mut backend, Some(&command), 220, max).await?;
        expect(&mut backend, Some(&ehlo), 250, max).await?;
    }
    let base64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    match door.login_mode() {
        LoginMode::Master => {
            let plain = base64(door.master_plain(&authenticated.user));
            expect(&mut backend, Some(&format!("AUTH PLAIN {plain}\r\n")), 235, max).await?;
        }
        LoginMode::Token => {
            let response = base64(letterlock_sasl::oauthbearer::encode(
                Some(&authenticated.user),
                None,
                None,
                authenticated.token.declassify(),
            ));
            backend.send(format!("AUTH OAUTHBEARER {response}\r\n").as_bytes()).await?;
            let (mut code, mut text) = reply(&mut backend, max).await?;
            if code == 334 {
                // The error challenge: acknowledge it to get the final reply.
                backend.send(b"AQ==\r\n").await?;
                (code, text) = reply(&mut backend, max).await?;
            }
            if code != 235 {
                return Err(BackendError::Refused(format!("{code} {text}")));
            }
        }
        LoginMode::Xclient => {
            // Postfix answers XCLIENT with a new greeting; the session then counts as logged in
            // as LOGIN (smtpd_authorized_xclient_hosts must list the gateway).
            let command = format!(
                "XCLIENT LOGIN={} ADDR={}\r\n",
                xtext(&authenticated.user),
                xclient_address(peer)
            );
            expect(&mut backend, Some(&command), 220, max).await?;
            expect(&mut backend, Some(&ehlo), 250, max).await?;
        }
    }
    Ok(backend)
}

/// A client address as XCLIENT writes it: IPv6 with Postfix's `IPV6:` prefix.
fn xclient_address(peer: SocketAddr) -> String {
    match peer.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("IPV6:{ip}"),
    }
}

/// RFC 3461 §4 xtext, which XCLIENT values use.
pub fn xtext(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("+{byte:02X}"));
        }
    }
    encoded
}

fn farewell(ending: Ending) -> Option<String> {
    let text = match ending {
        Ending::Closed => return None,
        Ending::Revoked => "4.7.0 Access for this device was revoked",
        Ending::TokenRevoked => "4.7.0 The login token was revoked",
        Ending::Expired => "4.7.0 The login token has expired",
        Ending::Shutdown => "4.3.2 Server shutting down",
        Ending::Idle => "4.4.2 Idle for too long",
    };
    Some(format!("421 {text}; closing connection\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        assert_eq!(split_command(b"ehlo client.example"), ("EHLO".into(), "client.example".into()));
        assert_eq!(split_command(b"QUIT"), ("QUIT".into(), String::new()));
        assert_eq!(multiline(250, &["a".into(), "b".into()]), "250-a\r\n250 b\r\n");
        assert_eq!(xtext("ann+x=y@example.com"), "ann+2Bx+3Dy@example.com");
        assert_eq!(xclient_address("192.0.2.7:25".parse().unwrap()), "192.0.2.7");
        assert_eq!(xclient_address("[2001:db8::7]:25".parse().unwrap()), "IPV6:2001:db8::7");
        assert_eq!(xclient_address("[::ffff:192.0.2.7]:25".parse().unwrap()), "192.0.2.7");
    }
}
