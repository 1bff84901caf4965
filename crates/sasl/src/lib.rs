//! SASL for OAuth on mail protocols, with no I/O: OAUTHBEARER (RFC 7628), Google's XOAUTH2 (which
//! Thunderbird and many phones use), and PLAIN (RFC 4616, for logging in to a back end).
//!
//! - [`oauthbearer`] and [`xoauth2`] parse a client's response into [`BearerCredentials`] and
//!   encode it (for clients and tests);
//! - [`plain`] parses and encodes PLAIN;
//! - [`ServerExchange`] is the server side as a state machine: credentials in, then either
//!   success or the RFC 7628 §3.2.2 error challenge, the client's acknowledgement, and failure;
//! - [`ResponseLine`] reads the base64 lines IMAP, SMTP and POP3 carry SASL in, with `*` to cancel;
//! - [`dovecot`] speaks Dovecot's authentication protocols (a PLAIN exchange on its auth-client
//!   socket, a passdb lookup on its auth-master socket), for the sign-in page's Dovecot source.
//!
//! Tokens are held in [`Secret`], whose `Debug` hides them; [`Secret::declassify`] is the one
//! way out, so every exposure can be found with grep.
//!
//! ```
//! use letterlock_sasl::{Mechanism, ServerExchange, Received, ErrorChallenge};
//!
//! // RFC 7628 §4.1, decoded.
//! let response = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
//! let mut exchange = ServerExchange::new(Mechanism::OAuthBearer);
//! let Received::Credentials(credentials) = exchange.receive(response).unwrap() else { panic!() };
//! assert_eq!(credentials.authzid.as_deref(), Some("user@example.com"));
//! assert_eq!(credentials.port, Some(143));
//!
//! // The token does not verify: send the error challenge; the client answers with 0x01.
//! let challenge = exchange.reject(&ErrorChallenge::invalid_token(
//!     "urn:ietf:params:oauth:scope:mail",
//!     "https://auth.example.com/.well-known/openid-configuration",
//! ));
//! assert!(challenge.starts_with(b"{\"status\":\"invalid_token\""));
//! assert_eq!(exchange.receive(b"\x01").unwrap(), Received::Failed);
//! ```
#![forbid(unsafe_code)]

pub mod dovecot;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use letterlock_protocol::BearerError;
use serde::{Deserialize, Serialize};

/// The largest decoded response accepted, in bytes. JWT access tokens are a few KiB; 64 KiB is
/// Dovecot's limit for a whole command.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What can be wrong with a client's SASL response. Each one ends the exchange with a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// Longer than [`MAX_RESPONSE_BYTES`].
    #[error("the SASL response is too long")]
    TooLong,
    /// Not valid base64 (RFC 4648 §4).
    #[error("the SASL response is not valid base64")]
    Base64,
    /// The GS2 header (RFC 5801 §4) is malformed or asks for channel binding.
    #[error("the GS2 header is malformed or asks for channel binding, which is not offered")]
    Gs2Header,
    /// A key-value pair or the framing with 0x01 separators is malformed (RFC 7628 §3.1).
    #[error("the key-value pairs are malformed")]
    KeyValue,
    /// The `auth` value is missing or is not `Bearer <token>` (RFC 6750 §2.1).
    #[error("the auth value must be 'Bearer <token>'")]
    Auth,
    /// `port` is not a decimal port number.
    #[error("the port is not a number from 1 to 65535")]
    Port,
    /// A value is not UTF-8.
    #[error("a value is not UTF-8")]
    Utf8,
    /// A lone 0x01 as the first response (RFC 7628 §3.1: valid only after an error challenge).
    #[error("a lone 0x01 is valid only after an error challenge")]
    UnexpectedAck,
    /// After an error challenge, something other than the acknowledgement.
    #[error(
        "after an error challenge the client must send 0x01 (or an empty response for XOAUTH2)"
    )]
    ExpectedAck,
    /// A response arrived after the exchange ended.
    #[error("the exchange is over")]
    Finished,
}

/// The mechanisms Letterlock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 7628.
    OAuthBearer,
    /// Google's XOAUTH2.
    XOAuth2,
    /// RFC 4616.
    Plain,
}

impl Mechanism {
    /// Parses a mechanism name, case-insensitively (RFC 4422 §3.1).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "OAUTHBEARER" => Some(Self::OAuthBearer),
            "XOAUTH2" => Some(Self::XOAuth2),
            "PLAIN" => Some(Self::Plain),
            _ => None,
        }
    }

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OAuthBearer => "OAUTHBEARER",
            Self::XOAuth2 => "XOAUTH2",
            Self::Plain => "PLAIN",
        }
    }
}

/// A secret whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(secret: T) -> Self {
        Self(secret)
    }

    /// The secret itself. Named so that every use can be found and read.
    pub fn declassify(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

/// What an OAUTHBEARER or XOAUTH2 client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerCredentials {
    /// The authorization identity (`a=` in OAUTHBEARER's GS2 header, `user=` in XOAUTH2).
    pub authzid: Option<String>,
    /// The bearer token; `None` for an empty `auth=` (RFC 7628 §4.3: the discovery probe).
    pub token: Option<Secret<String>>,
    /// The host the client connected to (OAUTHBEARER only).
    pub host: Option<String>,
    /// The port the client connected to (OAUTHBEARER only).
    pub port: Option<u16>,
    /// Which mechanism carried them, for the log.
    pub mechanism: Mechanism,
}

impl BearerCredentials {
    /// True for an empty-token probe: a client asking where to get a token, not an attack.
    pub fn is_discovery_probe(&self) -> bool {
        self.token.is_none()
    }
}

/// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, then a b64token, or nothing (the
/// probe).
fn bearer_token(value: &str) -> Result<Option<Secret<String>>, SaslError> {
    if value.is_empty() {
        return Ok(None);
    }
    let (scheme, token) = value.split_once(' ').ok_or(SaslError::Auth)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(SaslError::Auth);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Ok(None);
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte));
    if valid { Ok(Some(Secret::new(token.to_owned()))) } else { Err(SaslError::Auth) }
}

pub mod oauthbearer {
    //! OAUTHBEARER messages (RFC 7628 §3.1).

    use super::{BearerCredentials, SaslError, bearer_token};

    /// The key-value separator.
    const KVSEP: u8 = 0x01;

    /// Parses a client's initial (or only) response.
    pub fn parse(response: &[u8]) -> Result<BearerCredentials, SaslError> {
        if response.len() > super::MAX_RESPONSE_BYTES {
            return Err(SaslError::TooLong);
        }
        if response == [KVSEP] {
            return Err(SaslError::UnexpectedAck);
        }
        let text = std::str::from_utf8(response).map_err(|_| SaslError::Utf8)?;
        // gs2-header = [gs2-nonstd-flag ","] gs2-cb-flag "," [gs2-authzid] ","
        let text = text.strip_prefix("F,").unwrap_or(text);
        let rest = text.strip_prefix("n,").ok_or(SaslError::Gs2Header)?;
        let (authzid, rest) = rest.split_once(',').ok_or(SaslError::Gs2Header)?;
        let authzid = match authzid {
            "" => None,
            named => {
                Some(unescape_saslname(named.strip_prefix("a=").ok_or(SaslError::Gs2Header)?)?)
            }
        };
        // client-resp = gs2-header kvsep *kvpair kvsep
        let pairs = rest.strip_prefix('\u{1}').ok_or(SaslError::KeyValue)?;
        let pairs = pairs.strip_suffix('\u{1}').ok_or(SaslError::KeyValue)?;
        let mut credentials = BearerCredentials {
            authzid,
            token: None,
            host: None,
            port: None,
            mechanism: super::Mechanism::OAuthBearer,
        };
        let mut auth_seen = false;
        if !pairs.is_empty() {
            let pairs = pairs.strip_suffix('\u{1}').ok_or(SaslError::KeyValue)?;
            for pair in pairs.split('\u{1}') {
                let (key, value) = pair.split_once('=').ok_or(SaslError::KeyValue)?;
                let key_ok = !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_alphabetic());
                // value = *(VCHAR / SP / HTAB / CR / LF); `=` is a VCHAR.
                let value_ok = value
                    .bytes()
                    .all(|byte| matches!(byte, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'));
                if !key_ok || !value_ok {
                    return Err(SaslError::KeyValue);
                }
                match key {
                    "auth" => {
                        credentials.token = bearer_token(value)?;
                        auth_seen = true;
                    }
                    "host" => credentials.host = Some(value.to_owned()),
                    "port" => credentials.port = Some(parse_port(value)?),
                    // RFC 7628 §3.1: unknown keys are ignored.
                    _ => {}
                }
            }
        }
        if !auth_seen {
            return Err(SaslError::Auth);
        }
        Ok(credentials)
    }

    /// Encodes a client response (for clients and tests).
    pub fn encode(
        authzid: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
        token: &str,
    ) -> Vec<u8> {
        encode_with(authzid, host, port, Some(token))
    }

    /// Encodes a client response with or without a token. Without one, `auth` is empty: the
    /// discovery probe of RFC 7628 §4.3, which a server answers with the §3.2.2 error challenge
    /// naming its issuer.
    pub fn encode_with(
        authzid: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
        token: Option<&str>,
    ) -> Vec<u8> {
        let mut text = String::from("n,");
        if let Some(authzid) = authzid {
            text.push_str("a=");
            text.push_str(&authzid.replace('=', "=3D").replace(',', "=2C"));
        }
        text.push_str(",\u{1}");
        if let Some(host) = host {
            text.push_str(&format!("host={host}\u{1}"));
        }
        if let Some(port) = port {
            text.push_str(&format!("port={port}\u{1}"));
        }
        match token {
            Some(token) => text.push_str(&format!("auth=Bearer {token}\u{1}\u{1}")),
            None => text.push_str("auth=\u{1}\u{1}"),
        }
        text.into_bytes()
    }

    /// RFC 7628 §3.1: "port" is a decimal number without leading zeros.
    fn parse_port(value: &str) -> Result<u16, SaslError> {
        if value.is_empty()
            || value.len() > 5
            || value.starts_with('0')
            || !value.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(SaslError::Port);
        }
        value.parse().map_err(|_| SaslError::Port)
    }

    /// RFC 5801 §4: in a saslname, `,` is `=2C` and `=` is `=3D`; any other `=` is an error.
    fn unescape_saslname(name: &str) -> Result<String, SaslError> {
        let mut out = String::with_capacity(name.len());
        let mut rest = name;
        while let Some(position) = rest.find('=') {
            out.push_str(&rest[..position]);
            let escape = rest.get(position..position + 3).ok_or(SaslError::Gs2Header)?;
            match escape {
                "=2C" | "=2c" => out.push(','),
                "=3D" | "=3d" => out.push('='),
                _ => return Err(SaslError::Gs2Header),
            }
            rest = &rest[position + 3..];
        }
        out.push_str(rest);
        if out.is_empty() { Err(SaslError::Gs2Header) } else { Ok(out) }
    }
}

pub mod xoauth2 {
    //! XOAUTH2: `user=` {user} 0x01 `auth=Bearer ` {token} 0x01 0x01, with no GS2 header.

    use super::{BearerCredentials, SaslError, bearer_token};

    /// Parses a client response.
    pub fn parse(response: &[u8]) -> Result<BearerCredentials, SaslError> {
        if response.len() > super::MAX_RESPONSE_BYTES {
            return Err(SaslError::TooLong);
        }
        let text = std::str::from_utf8(response).map_err(|_| SaslError::Utf8)?;
        let pairs = text.strip_suffix("\u{1}\u{1}").ok_or(SaslError::KeyValue)?;
        let mut credentials = BearerCredentials {
            authzid: None,
            token: None,
            host: None,
            port: None,
            mechanism: super::Mechanism::XOAuth2,
        };
        let mut auth_seen = false;
        for pair in pairs.split('\u{1}') {
            let (key, value) = pair.split_once('=').ok_or(SaslError::KeyValue)?;
            if value.bytes().any(|byte| byte < 0x20 || byte == 0x7f) {
                return Err(SaslError::KeyValue);
            }
            match key {
                "user" if !value.is_empty() => credentials.authzid = Some(value.to_owned()),
                "auth" => {
                    credentials.token = bearer_token(value)?;
                    auth_seen = true;
                }
                _ => return Err(SaslError::KeyValue),
            }
        }
        if !auth_seen {
            return Err(SaslError::Auth);
        }
        Ok(credentials)
    }

    /// Encodes a client response.
    pub fn encode(user: &str, token: &str) -> Vec<u8> {
        format!("user={user}\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
    }
}

pub mod plain {
    //! PLAIN (RFC 4616): authzid NUL authcid NUL password.

    use super::{SaslError, Secret};

    /// PLAIN credentials.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PlainCredentials {
        /// The identity to act as, if other than the authentication identity.
        pub authzid: Option<String>,
        /// The authentication identity (user name).
        pub authcid: String,
        /// The password.
        pub password: Secret<String>,
    }

    /// Parses a PLAIN response.
    pub fn parse(response: &[u8]) -> Result<PlainCredentials, SaslError> {
        if response.len() > super::MAX_RESPONSE_BYTES {
            return Err(SaslError::TooLong);
        }
        let text = std::str::from_utf8(response).map_err(|_| SaslError::Utf8)?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::KeyValue);
        };
        if authcid.is_empty() || password.is_empty() {
            return Err(SaslError::KeyValue);
        }
        Ok(PlainCredentials {
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            authcid: authcid.to_owned(),
            password: Secret::new(password.to_owned()),
        })
    }

    /// Encodes a PLAIN response: how a front door logs in to Dovecot as a master user on behalf
    /// of `authzid`.
    pub fn encode(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
        format!("{}\0{authcid}\0{password}", authzid.unwrap_or("")).into_bytes()
    }
}

/// The RFC 7628 §3.2.2 error challenge: where to get a token, and which scope. Sent by the
/// front doors ([`ErrorChallenge::to_bytes`]); read by a client's discovery probe
/// ([`ErrorChallenge::from_base64`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorChallenge {
    /// RFC 7628 §3.2.2: an RFC 6750 §3.1 error code, `invalid_token` or `insufficient_scope`
    /// from Letterlock; another server's code is kept as [`BearerError::Other`].
    pub status: BearerError,
    /// The scope the service needs, one (RFC 7628 recommends a single scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The discovery document of the issuer.
    #[serde(rename = "openid-configuration", default, skip_serializing_if = "Option::is_none")]
    pub openid_configuration: Option<String>,
}

impl ErrorChallenge {
    /// `invalid_token` with the scope and the issuer's metadata URL.
    pub fn invalid_token(scope: &str, openid_configuration: &str) -> Self {
        Self {
            status: BearerError::InvalidToken,
            scope: Some(scope.into()),
            openid_configuration: Some(openid_configuration.into()),
        }
    }

    /// Reads the challenge from the JSON bytes of RFC 7628 §3.2.2. `None` if they are not that
    /// JSON (an object with a string `status`).
    pub fn from_json(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Reads the challenge from the base64 text of an IMAP `+` or SMTP/POP3 `334` line
    /// (RFC 4648 §4 base64, surrounding white space ignored). `None` if it is not the JSON of
    /// RFC 7628 §3.2.2.
    pub fn from_base64(text: &str) -> Option<Self> {
        Self::from_json(&STANDARD.decode(text.trim()).ok()?)
    }

    /// The JSON bytes of the challenge, in the shape the mechanism uses: OAUTHBEARER's, or for
    /// XOAUTH2 Google's (`status` as an HTTP code, `schemes`, `scope`), plus the
    /// `openid-configuration` of RFC 7628 so that XOAUTH2 clients, too, learn the way.
    pub fn to_bytes(&self, mechanism: Mechanism) -> Vec<u8> {
        let json = match mechanism {
            Mechanism::XOAuth2 => {
                let status =
                    if self.status == BearerError::InsufficientScope { "403" } else { "401" };
                let mut json = serde_json::json!({
                    "status": status,
                    "schemes": "bearer",
                    "scope": self.scope.clone().unwrap_or_default(),
                });
                if let Some(url) = &self.openid_configuration {
                    json["openid-configuration"] = url.as_str().into();
                }
                json.to_string()
            }
            _ => serde_json::to_string(self)
                .unwrap_or_else(|_| "{\"status\":\"invalid_token\"}".into()),
        };
        json.into_bytes()
    }
}

/// What a step of the server exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// OAUTHBEARER or XOAUTH2 credentials: the caller checks the token and then calls
    /// [`ServerExchange::succeed`] or [`ServerExchange::reject`].
    Credentials(BearerCredentials),
    /// PLAIN credentials.
    Plain(plain::PlainCredentials),
    /// The client acknowledged the error challenge: answer with the protocol's failure (IMAP
    /// `NO [AUTHENTICATIONFAILED]`, SMTP `535 5.7.8`).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingResponse,
    AwaitingCheck,
    AwaitingAck,
    Done,
}

/// The server side of one SASL exchange, as a state machine; the protocol loop around it does
/// the I/O.
#[derive(Debug)]
pub struct ServerExchange {
    mechanism: Mechanism,
    state: State,
}

impl ServerExchange {
    /// A new exchange for a mechanism.
    pub fn new(mechanism: Mechanism) -> Self {
        Self { mechanism, state: State::AwaitingResponse }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next (decoded) response.
    pub fn receive(&mut self, response: &[u8]) -> Result<Received, SaslError> {
        match self.state {
            State::AwaitingResponse => {
                let received = match self.mechanism {
                    Mechanism::OAuthBearer => {
                        oauthbearer::parse(response).map(Received::Credentials)
                    }
                    Mechanism::XOAuth2 => xoauth2::parse(response).map(Received::Credentials),
                    Mechanism::Plain => plain::parse(response).map(Received::Plain),
                };
                self.state = if received.is_ok() { State::AwaitingCheck } else { State::Done };
                received
            }
            // RFC 7628 §3.2.3: the client answers the challenge with a single 0x01; XOAUTH2
            // clients send an empty response.
            State::AwaitingAck => {
                self.state = State::Done;
                let acknowledged = match self.mechanism {
                    Mechanism::XOAuth2 => response.is_empty() || response == [0x01],
                    _ => response == [0x01],
                };
                if acknowledged { Ok(Received::Failed) } else { Err(SaslError::ExpectedAck) }
            }
            State::AwaitingCheck | State::Done => Err(SaslError::Finished),
        }
    }

    /// The token was good: the exchange succeeded.
    pub fn succeed(&mut self) {
        self.state = State::Done;
    }

    /// The token was missing or bad: the challenge to send (raw JSON bytes; the protocol
    /// base64-encodes it), after which the exchange waits for the client's acknowledgement.
    pub fn reject(&mut self, challenge: &ErrorChallenge) -> Vec<u8> {
        self.state = State::AwaitingAck;
        challenge.to_bytes(self.mechanism)
    }
}

/// A line of a SASL exchange as IMAP (RFC 9051 §6.2.2), SMTP (RFC 4954 §4) and POP3 (RFC 5034 §4)
/// carry it: base64, `=` for an empty response in an initial-response position, `*` to cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseLine {
    /// A decoded response.
    Response(Vec<u8>),
    /// The client cancelled the exchange.
    Cancel,
}

impl ResponseLine {
    /// Decodes a line without its CRLF.
    pub fn parse(line: &str) -> Result<Self, SaslError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line == "*" {
            return Ok(Self::Cancel);
        }
        if line == "=" || line.is_empty() {
            return Ok(Self::Response(Vec::new()));
        }
        if line.len() > MAX_RESPONSE_BYTES / 3 * 4 + 4 {
            return Err(SaslError::TooLong);
        }
        STANDARD.decode(line).map(Self::Response).map_err(|_| SaslError::Base64)
    }
}

/// Base64 of a challenge, for the `+ ` / `334 ` line.
pub fn encode_challenge(challenge: &[u8]) -> String {
    STANDARD.encode(challenge)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn error_challenges_decode_what_they_encode() {
        let challenge = ErrorChallenge::invalid_token(
            "urn:ietf:params:oauth:scope:mail",
            "https://a.example/.well-known/openid-configuration",
        );
        let line = encode_challenge(&challenge.to_bytes(Mechanism::OAuthBearer));
        assert_eq!(ErrorChallenge::from_base64(&format!(" {line}\r\n")), Some(challenge));
        let scope = ErrorChallenge {
            status: BearerError::InsufficientScope,
            scope: None,
            openid_configuration: None,
        };
        assert_eq!(ErrorChallenge::from_json(&scope.to_bytes(Mechanism::OAuthBearer)), Some(scope));
        let other = ErrorChallenge::from_json(br#"{"status":"invalid_request","x":1}"#).unwrap();
        assert_eq!(other.status, BearerError::InvalidRequest);
        let unknown = ErrorChallenge::from_json(br#"{"status":"401"}"#).unwrap();
        assert_eq!(unknown.status, BearerError::Other("401".into()));
        assert_eq!(ErrorChallenge::from_json(br#"{"scope":"s"}"#), None, "status is required");
        assert_eq!(ErrorChallenge::from_json(b"[]"), None);
        assert_eq!(ErrorChallenge::from_base64("not base64!"), None);
    }

    #[test]
    fn the_discovery_probe_has_an_empty_auth() {
        let probe = oauthbearer::encode_with(None, Some("mail.example.com"), Some(993), None);
        assert_eq!(probe, b"n,,\x01host=mail.example.com\x01port=993\x01auth=\x01\x01");
        let parsed = oauthbearer::parse(&probe).unwrap();
        assert!(parsed.is_discovery_probe());
        assert_eq!(
            oauthbearer::encode(None, None, None, "t"),
            oauthbearer::encode_with(None, None, None, Some("t"))
        );
    }

    const RFC7628_4_1: &[u8] = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";

    #[test]
    fn rfc7628_section_4_1_example() {
        let credentials = oauthbearer::parse(RFC7628_4_1).unwrap();
        assert_eq!(credentials.authzid.as_deref(), Some("user@example.com"));
        assert_eq!(credentials.host.as_deref(), Some("server.example.com"));
        assert_eq!(credentials.port, Some(143));
        assert_eq!(
            credentials.token.unwrap().declassify(),
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
        );
        // The same bytes, base64 as on the wire (RFC 7628 §4.1).
        let wire = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
        assert_eq!(
            ResponseLine::parse(wire).unwrap(),
            ResponseLine::Response(RFC7628_4_1.to_vec())
        );
        assert_eq!(
            oauthbearer::encode(
                Some("user@example.com"),
                Some("server.example.com"),
                Some(143),
                "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
            ),
            RFC7628_4_1
        );
    }

    #[test]
    fn the_failure_sequence_of_rfc7628_section_3_2_3() {
        let mut exchange = ServerExchange::new(Mechanism::OAuthBearer);
        let Received::Credentials(_) = exchange.receive(RFC7628_4_1).unwrap() else { panic!() };
        let challenge = exchange.reject(&ErrorChallenge::invalid_token(
            "urn:ietf:params:oauth:scope:mail",
            "https://a.example/.well-known/openid-configuration",
        ));
        let json: serde_json::Value = serde_json::from_slice(&challenge).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "invalid_token", "scope": "urn:ietf:params:oauth:scope:mail", "openid-configuration": "https://a.example/.well-known/openid-configuration"})
        );
        assert_eq!(ResponseLine::parse("AQ==").unwrap(), ResponseLine::Response(vec![1]));
        assert_eq!(exchange.receive(&[1]).unwrap(), Received::Failed);
        assert_eq!(exchange.receive(&[1]), Err(SaslError::Finished));

        let mut exchange = ServerExchange::new(Mechanism::OAuthBearer);
        assert_eq!(exchange.receive(&[1]), Err(SaslError::UnexpectedAck), "a lone 0x01 first");
        let mut exchange = ServerExchange::new(Mechanism::OAuthBearer);
        exchange.receive(RFC7628_4_1).unwrap();
        exchange.reject(&ErrorChallenge::invalid_token("s", "https://a.example/"));
        assert_eq!(exchange.receive(b"x"), Err(SaslError::ExpectedAck));
    }

    #[test]
    fn the_empty_token_probe_is_discovery() {
        for response in [&b"n,,\x01auth=\x01\x01"[..], b"n,,\x01auth=Bearer \x01\x01"] {
            let credentials = oauthbearer::parse(response).unwrap();
            assert!(credentials.is_discovery_probe(), "{response:?}");
        }
        assert!(xoauth2::parse(b"user=a@b\x01auth=\x01\x01").unwrap().is_discovery_probe());
    }

    #[test]
    fn xoauth2_as_thunderbird_sends_it() {
        let response = xoauth2::encode(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg",
        );
        let credentials = xoauth2::parse(&response).unwrap();
        assert_eq!(credentials.authzid.as_deref(), Some("someuser@example.com"));
        assert_eq!(
            credentials.token.unwrap().declassify(),
            "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg"
        );
        let mut exchange = ServerExchange::new(Mechanism::XOAuth2);
        exchange.receive(&response).unwrap();
        let challenge: serde_json::Value =
            serde_json::from_slice(&exchange.reject(&ErrorChallenge::invalid_token(
                "urn:ietf:params:oauth:scope:mail",
                "https://a.example/",
            )))
            .unwrap();
        assert_eq!(challenge["status"], "401");
        assert_eq!(
            exchange.receive(b"").unwrap(),
            Received::Failed,
            "XOAUTH2 clients acknowledge with an empty response"
        );
    }

    #[test]
    fn refuses_malformed_responses() {
        let cases: &[(&[u8], SaslError)] = &[
            (b"y,,\x01auth=Bearer x\x01\x01", SaslError::Gs2Header),
            (b"p=tls-unique,,\x01auth=Bearer x\x01\x01", SaslError::Gs2Header),
            (b"n,user=someone,\x01auth=Bearer x\x01\x01", SaslError::Gs2Header),
            (b"n,a=bad=escape,\x01auth=Bearer x\x01\x01", SaslError::Gs2Header),
            (b"n,,\x01auth=Bearer x\x01", SaslError::KeyValue),
            (b"n,,auth=Bearer x\x01\x01", SaslError::KeyValue),
            (b"n,,\x01host=a\x01\x01", SaslError::Auth),
            (b"n,,\x01auth=Basic dXNlcjpwYXNz\x01\x01", SaslError::Auth),
            (b"n,,\x01auth=Bearer a b\x01\x01", SaslError::Auth),
            (b"n,,\x01port=0143\x01auth=Bearer x\x01\x01", SaslError::Port),
            (b"n,,\x01port=70000\x01auth=Bearer x\x01\x01", SaslError::Port),
            (b"n,,\x01k\x00y=v\x01auth=Bearer x\x01\x01", SaslError::KeyValue),
            (b"n,,\x01auth=Bearer \xff\x01\x01", SaslError::Utf8),
        ];
        for (response, error) in cases {
            assert_eq!(
                oauthbearer::parse(response).unwrap_err(),
                *error,
                "{}",
                String::from_utf8_lossy(response)
            );
        }
        assert_eq!(
            oauthbearer::parse(&vec![b'a'; MAX_RESPONSE_BYTES + 1]).unwrap_err(),
            SaslError::TooLong
        );
        assert_eq!(ResponseLine::parse("not base64!").unwrap_err(), SaslError::Base64);
        assert_eq!(ResponseLine::parse("*").unwrap(), ResponseLine::Cancel);
        assert_eq!(ResponseLine::parse("=").unwrap(), ResponseLine::Response(Vec::new()));
    }

    #[test]
    fn escaped_authzid_and_unknown_keys() {
        let credentials = oauthbearer::parse(
            b"n,a=odd=2Cname=3Dx,\x01future=thing=with=equals\x01auth=bearer tok.en~+/==\x01\x01",
        )
        .unwrap();
        assert_eq!(credentials.authzid.as_deref(), Some("odd,name=x"));
        assert_eq!(credentials.token.unwrap().declassify(), "tok.en~+/==");
    }

    #[test]
    fn plain_round_trip_and_errors() {
        let encoded = plain::encode(Some("alice@example.com"), "master", "s3cret");
        let parsed = plain::parse(&encoded).unwrap();
        assert_eq!(parsed.authzid.as_deref(), Some("alice@example.com"));
        assert_eq!(parsed.authcid, "master");
        assert_eq!(parsed.password.declassify(), "s3cret");
        assert!(plain::parse(b"\0user").is_err());
        assert!(plain::parse(b"a\0b\0c\0d").is_err());
        assert_eq!(format!("{:?}", parsed.password), "Secret(..)", "secrets do not print");
    }

    proptest! {
        #[test]
        fn oauthbearer_round_trips(
            authzid in proptest::option::of("[a-zA-Z0-9@.,=_-]{1,40}"),
            host in proptest::option::of("[a-z0-9.-]{1,40}"),
            port in proptest::option::of(1u16..),
            token in "[A-Za-z0-9._~+/-]{1,200}=?=?",
        ) {
            let encoded = oauthbearer::encode(authzid.as_deref(), host.as_deref(), port, &token);
            let parsed = oauthbearer::parse(&encoded).unwrap();
            prop_assert_eq!(parsed.authzid, authzid);
            prop_assert_eq!(parsed.host, host);
            prop_assert_eq!(parsed.port, port);
            prop_assert_eq!(parsed.token.map(|token| token.declassify().clone()), Some(token));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2, Mechanism::Plain] {
                let mut exchange = ServerExchange::new(mechanism);
                let _ = exchange.receive(&bytes);
                let _ = exchange.receive(&bytes);
            }
        }

        #[test]
        fn arbitrary_lines_never_panic(line in ".{0,300}") {
            let _ = ResponseLine::parse(&line);
        }
    }
}
