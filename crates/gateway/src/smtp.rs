//! The SMTP submission front door (RFC 6409, RFC 4954): before login, [`machine`] (`EHLO` offers
//! `AUTH OAUTHBEARER XOAUTH2`, after STARTTLS where the door requires it; `AUTH` takes the
//! token); then the front door logs in to the back end (here: AUTH PLAIN with an authorization
//! id, a pass-through token, or Postfix's XCLIENT) and relays the rest of the session, reading
//! the client's commands on the way ([`crate::commands`]).

pub mod machine;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

pub use self::machine::{Machine, multiline, split_command};
use crate::config::{LoginMode, TlsMode};
use crate::door::{Authenticated, BackendError, Door};
use crate::stream::{LineStream, Stream};

/// How long the back end may take per reply during its login.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn host_name(door: &Door) -> &str {
    door.config.host_names.first().map_or("letterlock", String::as_str)
}

/// Serves one client connection: [`Machine`] driven by [`crate::door::drive`].
pub async fn session(door: Arc<Door>, stream: Stream, peer: SocketAddr) {
    crate::door::drive::<Machine>(door, stream, peer).await;
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
pub(crate) async fn backend_login(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        assert_eq!(xtext("ann+x=y@example.com"), "ann+2Bx+3Dy@example.com");
        assert_eq!(xclient_address("192.0.2.7:25".parse().unwrap()), "192.0.2.7");
        assert_eq!(xclient_address("[2001:db8::7]:25".parse().unwrap()), "IPV6:2001:db8::7");
        assert_eq!(xclient_address("[::ffff:192.0.2.7]:25".parse().unwrap()), "192.0.2.7");
    }
}
