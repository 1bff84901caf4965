//! The SASL discovery probe (RFC 7628 §4.3): an OAUTHBEARER attempt with an empty token at an
//! IMAP, SMTP or POP3 server, whose failure challenge names the issuer's metadata
//! (`openid-configuration`, §3.2.2). Over TLS (implicit or STARTTLS); plain text only to a
//! loopback address.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::Error;
use crate::net::{NetOptions, is_loopback_host};
use crate::service::{Endpoint, Security, Service};

/// The longest server line the probe reads.
const MAX_LINE: usize = 16 * 1024;
/// At most this many lines in one response (a CAPA or EHLO list).
const MAX_LINES: usize = 200;

/// What a failed OAUTHBEARER attempt answered (RFC 7628 §3.2.2): the type the front doors
/// send, read with [`ErrorChallenge::from_base64`].
pub use letterlock_sasl::ErrorChallenge as SaslChallenge;

/// Probes `endpoint` and returns the challenge it answered, or `None` if it offers no
/// OAUTHBEARER or answered without a challenge.
pub async fn probe(
    endpoint: &Endpoint,
    options: &NetOptions,
) -> Result<Option<SaslChallenge>, Error> {
    let run = async {
        let mut connection = Connection::open(endpoint, options).await?;
        match endpoint.service {
            Service::Imap => imap(&mut connection, endpoint, options).await,
            Service::Smtp => smtp(&mut connection, endpoint, options).await,
            Service::Pop3 => pop3(&mut connection, endpoint, options).await,
            Service::CardDav | Service::CalDav => Ok(None),
        }
    };
    tokio::time::timeout(options.timeout, run)
        .await
        .map_err(|_| Error::Discovery(format!("{} did not answer in time", endpoint.url)))?
}

/// The empty-token OAUTHBEARER message, base64 (RFC 7628 §3.1: `n,,` then `host`, `port` and an
/// empty `auth`).
fn probe_message(endpoint: &Endpoint) -> String {
    use base64::Engine as _;
    let message = letterlock_sasl::oauthbearer::encode_with(
        None,
        Some(&endpoint.host()),
        Some(endpoint.port()),
        None,
    );
    base64::engine::general_purpose::STANDARD.encode(message)
}

async fn imap(
    connection: &mut Connection,
    endpoint: &Endpoint,
    options: &NetOptions,
) -> Result<Option<SaslChallenge>, Error> {
    let greeting = connection.line().await?;
    if !greeting.starts_with("* OK") {
        return Err(Error::Discovery(format!(
            "{} is not an IMAP server: {greeting}",
            endpoint.url
        )));
    }
    let mut capabilities = imap_command(connection, "C1 CAPABILITY").await?;
    if !connection.secure {
        if capabilities.iter().any(|word| word == "STARTTLS") {
            imap_command(connection, "C2 STARTTLS").await?;
            connection.start_tls(endpoint, options).await?;
            capabilities = imap_command(connection, "C3 CAPABILITY").await?;
        } else if !plain_allowed(endpoint) {
            return Err(plain_refused(endpoint));
        }
    }
    if !capabilities.iter().any(|word| word == "AUTH=OAUTHBEARER") {
        return Ok(None);
    }
    let message = probe_message(endpoint);
    if capabilities.iter().any(|word| word == "SASL-IR") {
        connection.send(&format!("C4 AUTHENTICATE OAUTHBEARER {message}")).await?;
    } else {
        connection.send("C4 AUTHENTICATE OAUTHBEARER").await?;
        let line = connection.line().await?;
        if !line.starts_with('+') {
            return Ok(None);
        }
        connection.send(&message).await?;
    }
    let line = connection.line().await?;
    let challenge = line.strip_prefix("+ ").and_then(SaslChallenge::from_base64);
    if line.starts_with('+') {
        connection.send("AQ==").await?;
        read_until_tagged(connection, "C4").await?;
    }
    let _ = connection.send("C5 LOGOUT").await;
    Ok(challenge)
}

/// Sends a tagged IMAP command and returns the capability words seen, or an error if it did
/// not end in OK.
async fn imap_command(connection: &mut Connection, command: &str) -> Result<Vec<String>, Error> {
    let tag = command.split(' ').next().unwrap_or("");
    connection.send(command).await?;
    let mut words = Vec::new();
    for _ in 0..MAX_LINES {
        let line = connection.line().await?;
        let upper = line.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("* CAPABILITY ") {
            words.extend(rest.split(' ').map(str::to_owned));
        }
        if let Some(rest) = line.strip_prefix(tag).and_then(|rest| rest.strip_prefix(' ')) {
            if !rest.to_ascii_uppercase().starts_with("OK") {
                return Err(Error::Discovery(format!("IMAP {command} answered {rest}")));
            }
            // Capabilities may also come as a response code: `C1 OK [CAPABILITY …]`.
            if let Some(code) = upper.split_once("[CAPABILITY ").map(|(_, rest)| rest) {
                words.extend(code.split(']').next().unwrap_or("").split(' ').map(str::to_owned));
            }
            return Ok(words);
        }
    }
    Err(Error::Discovery(format!("IMAP {command}: too many lines")))
}

async fn read_until_tagged(connection: &mut Connection, tag: &str) -> Result<String, Error> {
    for _ in 0..MAX_LINES {
        let line = connection.line().await?;
        if line.starts_with(&format!("{tag} ")) {
            return Ok(line);
        }
    }
    Err(Error::Discovery("IMAP: too many lines".into()))
}

async fn smtp(
    connection: &mut Connection,
    endpoint: &Endpoint,
    options: &NetOptions,
) -> Result<Option<SaslChallenge>, Error> {
    let (code, _) = smtp_reply(connection).await?;
    if code != 220 {
        return Err(Error::Discovery(format!("{} greeted with {code}", endpoint.url)));
    }
    let mut extensions = smtp_ehlo(connection).await?;
    if !connection.secure {
        if extensions.iter().any(|line| line == "STARTTLS") {
            connection.send("STARTTLS").await?;
            let (code, text) = smtp_reply(connection).await?;
            if code != 220 {
                return Err(Error::Discovery(format!("SMTP STARTTLS answered {code} {text}")));
            }
            connection.start_tls(endpoint, options).await?;
            extensions = smtp_ehlo(connection).await?;
        } else if !plain_allowed(endpoint) {
            return Err(plain_refused(endpoint));
        }
    }
    let offers = extensions.iter().any(|line| {
        line.strip_prefix("AUTH")
            .is_some_and(|rest| rest.split([' ', '=']).any(|word| word == "OAUTHBEARER"))
    });
    if !offers {
        return Ok(None);
    }
    connection.send(&format!("AUTH OAUTHBEARER {}", probe_message(endpoint))).await?;
    let (code, text) = smtp_reply(connection).await?;
    let challenge = if code == 334 { SaslChallenge::from_base64(&text) } else { None };
    if code == 334 {
        connection.send("AQ==").await?;
        smtp_reply(connection).await?;
    }
    let _ = connection.send("QUIT").await;
    Ok(challenge)
}

async fn smtp_ehlo(connection: &mut Connection) -> Result<Vec<String>, Error> {
    connection.send("EHLO letterlock.invalid").await?;
    let (code, text) = smtp_reply(connection).await?;
    if code != 250 {
        return Err(Error::Discovery(format!("SMTP EHLO answered {code} {text}")));
    }
    Ok(text.lines().skip(1).map(|line| line.to_ascii_uppercase()).collect())
}

/// Reads one SMTP reply (RFC 5321 §4.2): its code and its lines' text joined by newlines.
async fn smtp_reply(connection: &mut Connection) -> Result<(u16, String), Error> {
    let mut text = Vec::new();
    for _ in 0..MAX_LINES {
        let line = connection.line().await?;
        let code = line.get(..3).and_then(|code| code.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(Error::Discovery(format!("not an SMTP reply: {line}")));
        };
        text.push(line.get(4..).unwrap_or("").to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text.join("\n")));
        }
    }
    Err(Error::Discovery("SMTP: too many lines".into()))
}

async fn pop3(
    connection: &mut Connection,
    endpoint: &Endpoint,
    options: &NetOptions,
) -> Result<Option<SaslChallenge>, Error> {
    let greeting = connection.line().await?;
    if !greeting.starts_with("+OK") {
        return Err(Error::Discovery(format!("{} is not a POP3 server: {greeting}", endpoint.url)));
    }
    let mut capabilities = pop3_capa(connection).await?;
    if !connection.secure {
        if capabilities.iter().any(|line| line == "STLS") {
            connection.send("STLS").await?;
            let line = connection.line().await?;
            if !line.starts_with("+OK") {
                return Err(Error::Discovery(format!("POP3 STLS answered {line}")));
            }
            connection.start_tls(endpoint, options).await?;
            capabilities = pop3_capa(connection).await?;
        } else if !plain_allowed(endpoint) {
            return Err(plain_refused(endpoint));
        }
    }
    let offers = capabilities.iter().any(|line| {
        line.strip_prefix("SASL ")
            .is_some_and(|rest| rest.split(' ').any(|word| word == "OAUTHBEARER"))
    });
    if !offers {
        return Ok(None);
    }
    connection.send(&format!("AUTH OAUTHBEARER {}", probe_message(endpoint))).await?;
    let line = connection.line().await?;
    let challenge = line.strip_prefix("+ ").and_then(SaslChallenge::from_base64);
    if line.starts_with('+') && !line.starts_with("+OK") {
        connection.send("AQ==").await?;
        connection.line().await?;
    }
    let _ = connection.send("QUIT").await;
    Ok(challenge)
}

async fn pop3_capa(connection: &mut Connection) -> Result<Vec<String>, Error> {
    connection.send("CAPA").await?;
    let first = connection.line().await?;
    if !first.starts_with("+OK") {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for _ in 0..MAX_LINES {
        let line = connection.line().await?;
        if line == "." {
            return Ok(lines);
        }
        lines.push(line.to_ascii_uppercase());
    }
    Err(Error::Discovery("POP3 CAPA: too many lines".into()))
}

/// Plain text (no TLS offered) is acceptable only on this machine.
fn plain_allowed(endpoint: &Endpoint) -> bool {
    endpoint.security() == Security::StartTls && is_loopback_host(&endpoint.host())
}

fn plain_refused(endpoint: &Endpoint) -> Error {
    Error::Refused(format!(
        "{} offers no STARTTLS; plain text is allowed only to a loopback address",
        endpoint.url
    ))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Upgrading,
}

/// A line-oriented connection that can turn into TLS.
struct Connection {
    transport: Transport,
    buffer: Vec<u8>,
    secure: bool,
}

impl Connection {
    async fn open(endpoint: &Endpoint, options: &NetOptions) -> Result<Self, Error> {
        let target = options.connect_target(&endpoint.host(), endpoint.port());
        let tcp = TcpStream::connect(&target)
            .await
            .map_err(|error| Error::Discovery(format!("{} ({target}): {error}", endpoint.url)))?;
        let mut connection =
            Self { transport: Transport::Plain(tcp), buffer: Vec::new(), secure: false };
        if endpoint.security() == Security::Tls {
            connection.start_tls(endpoint, options).await?;
        }
        Ok(connection)
    }

    async fn start_tls(&mut self, endpoint: &Endpoint, options: &NetOptions) -> Result<(), Error> {
        if !self.buffer.is_empty() {
            return Err(Error::Discovery(format!("{} sent data before TLS began", endpoint.url)));
        }
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Upgrading)
        else {
            return Err(Error::Discovery("TLS twice".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(endpoint.host())
            .map_err(|error| Error::Usage(format!("{}: {error}", endpoint.url)))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&options.tls_config()?));
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|error| Error::Refused(format!("TLS with {}: {error}", endpoint.url)))?;
        self.transport = Transport::Tls(Box::new(tls));
        self.secure = true;
        Ok(())
    }

    fn stream(&mut self) -> Result<&mut dyn Stream, Error> {
        match &mut self.transport {
            Transport::Plain(tcp) => Ok(tcp),
            Transport::Tls(tls) => Ok(tls.as_mut()),
            Transport::Upgrading => Err(Error::Discovery("connection lost during TLS".into())),
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), Error> {
        let stream = self.stream()?;
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|error| Error::Discovery(format!("sending: {error}")))?;
        stream.flush().await.map_err(|error| Error::Discovery(format!("sending: {error}")))
    }

    /// One line without its CRLF, at most [`MAX_LINE`] bytes.
    async fn line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_owned());
            }
            if self.buffer.len() > MAX_LINE {
                return Err(Error::Discovery("the server sent a line too long".into()));
            }
            let mut chunk = [0u8; 4096];
            let read = self
                .stream()?
                .read(&mut chunk)
                .await
                .map_err(|error| Error::Discovery(format!("reading: {error}")))?;
            if read == 0 {
                return Err(Error::Discovery("the server closed the connection".into()));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn challenges_parse() {
        use base64::Engine as _;
        let json = format!(
            r#"{{"status":"invalid_token","scope":"{}","openid-configuration":"https://a.example/.well-known/openid-configuration"}}"#,
            letterlock_protocol::scope::MAIL
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        let challenge = SaslChallenge::from_base64(&encoded).unwrap();
        assert_eq!(challenge.status, "invalid_token");
        assert_eq!(
            challenge.openid_configuration.as_deref(),
            Some("https://a.example/.well-known/openid-configuration")
        );
        assert!(SaslChallenge::from_base64("not base64!").is_none());
        assert!(
            SaslChallenge::from_base64(&base64::engine::general_purpose::STANDARD.encode("[]"))
                .is_none()
        );
    }

    #[test]
    fn the_probe_carries_an_empty_token() {
        let endpoint = Endpoint::parse(Service::Imap, "imap://127.0.0.1:1143").unwrap();
        let decoded = letterlock_sasl::oauthbearer::parse(&base64url_standard_decode(
            &probe_message(&endpoint),
        ))
        .unwrap();
        assert!(decoded.is_discovery_probe());
        assert_eq!((decoded.host.as_deref(), decoded.port), (Some("127.0.0.1"), Some(1143)));
    }

    fn base64url_standard_decode(text: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    }

    proptest! {
        /// Whatever a server sends as a challenge, parsing never panics.
        #[test]
        fn any_challenge_text_is_handled(text in ".{0,300}") {
            let _ = SaslChallenge::from_base64(&text);
        }
    }
}
