//! Redirect URIs for native and web clients (RFC 8252 §7, §8.3; RFC 6749 §3.1.2; RFC 7591 §5).

use std::fmt;
use std::net::IpAddr;

use url::Url;

/// The longest redirect URI accepted, in bytes. Browsers handle URLs of several kilobytes; a
/// redirect URI has no reason to be long, and every one of them travels inside a sealed client id.
pub const MAX_REDIRECT_URI_BYTES: usize = 2000;

/// What kind of redirect a URI is, which decides how it is matched and for whom it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedirectKind {
    /// `http://127.0.0.1[:port]/...` or `http://[::1][:port]/...` (RFC 8252 §7.3): the port is
    /// chosen by the client when it listens, so any port matches at use time.
    Loopback,
    /// A private-use URI scheme named after a domain the vendor controls, written in reverse
    /// order (RFC 8252 §7.1), such as `com.example.mail:/oauth`.
    PrivateUse,
    /// A claimed `https` URI (RFC 8252 §7.2, and every web client).
    Https,
}

/// Why a redirect URI was refused; every variant becomes `invalid_redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriError {
    /// Longer than [`MAX_REDIRECT_URI_BYTES`].
    #[error("a redirect URI is longer than {MAX_REDIRECT_URI_BYTES} bytes")]
    TooLong,
    /// Not an absolute URI.
    #[error("'{0}' is not an absolute URI")]
    NotAbsolute(String),
    /// RFC 6749 §3.1.2: the redirect URI must not include a fragment.
    #[error("'{0}' contains a fragment (RFC 6749 §3.1.2 forbids it)")]
    Fragment(String),
    /// A `*` in the URI: redirect URIs are matched exactly, never as patterns.
    #[error("'{0}' contains a wildcard; redirect URIs are matched exactly")]
    Wildcard(String),
    /// A user name or password in the URI.
    #[error("'{0}' contains a user name or password")]
    Userinfo(String),
    /// Control characters or spaces in the URI.
    #[error("a redirect URI contains control characters or spaces")]
    ControlCharacters,
    /// `http` to a host other than a loopback IP literal.
    #[error(
        "'{0}' uses plain http on a host that is not 127.0.0.1 or [::1] (RFC 8252 §8.3: use the \
         loopback IP literal, not 'localhost'; use https elsewhere)"
    )]
    PlainHttp(String),
    /// A scheme that is neither http, https nor a reverse-DNS private-use scheme.
    #[error(
        "'{0}' uses a scheme that is not https, a loopback http URI or a reverse-DNS private-use \
         scheme such as com.example.app (RFC 8252 §7.1)"
    )]
    Scheme(String),
    /// An `https` URI without a host.
    #[error("'{0}' has no host")]
    NoHost(String),
    /// A loopback or private-use redirect for a web client.
    #[error("'{0}' is a native-app redirect, but the client registered as a web application")]
    NativeRedirectForWebClient(String),
}

/// A redirect URI that passed the rules for its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri {
    text: String,
    kind: RedirectKind,
}

impl RedirectUri {
    /// Parses and checks one redirect URI.
    pub fn parse(text: &str) -> Result<Self, RedirectUriError> {
        if text.len() > MAX_REDIRECT_URI_BYTES {
            return Err(RedirectUriError::TooLong);
        }
        if text.chars().any(|character| character.is_control() || character == ' ') {
            return Err(RedirectUriError::ControlCharacters);
        }
        let url = Url::parse(text).map_err(|_| RedirectUriError::NotAbsolute(text.to_owned()))?;
        if url.fragment().is_some() || text.contains('#') {
            return Err(RedirectUriError::Fragment(text.to_owned()));
        }
        if text.contains('*') {
            return Err(RedirectUriError::Wildcard(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::Userinfo(text.to_owned()));
        }
        let kind = match url.scheme() {
            "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(RedirectUriError::NoHost(text.to_owned()));
                }
                RedirectKind::Https
            }
            "http" => {
                let loopback = match url.host() {
                    Some(url::Host::Ipv4(address)) => {
                        IpAddr::V4(address) == IpAddr::from([127, 0, 0, 1])
                    }
                    Some(url::Host::Ipv6(address)) => address.is_loopback(),
                    _ => false,
                };
                if !loopback {
                    return Err(RedirectUriError::PlainHttp(text.to_owned()));
                }
                RedirectKind::Loopback
            }
            scheme if is_reverse_dns_scheme(scheme) => RedirectKind::PrivateUse,
            _ => return Err(RedirectUriError::Scheme(text.to_owned())),
        };
        Ok(Self { text: text.to_owned(), kind })
    }

    /// The URI exactly as registered.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Which kind of redirect this is.
    pub fn kind(&self) -> RedirectKind {
        self.kind
    }

    /// True when a redirect URI presented in an authorization request matches this registered
    /// one: exactly, except that a loopback redirect matches on any port (RFC 8252 §7.3), since
    /// the client picks the port when it listens.
    pub fn matches(&self, presented: &str) -> bool {
        if self.text == presented {
            return true;
        }
        if self.kind != RedirectKind::Loopback {
            return false;
        }
        let (Ok(registered), Ok(presented_url)) = (Url::parse(&self.text), Url::parse(presented))
        else {
            return false;
        };
        // Compare everything but the port, on the text as written after the authority, so
        // that percent-encoding tricks in the path do not match.
        presented_url.scheme() == "http"
            && presented_url.host() == registered.host()
            && presented_url.username().is_empty()
            && presented_url.password().is_none()
            && presented_url.fragment().is_none()
            && !presented.contains('#')
            && after_authority(presented) == after_authority(&self.text)
    }

    /// True for loopback and private-use redirects, which only a native app can receive.
    pub fn is_native(&self) -> bool {
        matches!(self.kind, RedirectKind::Loopback | RedirectKind::PrivateUse)
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// The path and query as written: everything after `scheme://authority`.
fn after_authority(text: &str) -> &str {
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let tail = &rest[end..];
    if tail.is_empty() { "/" } else { tail }
}

/// RFC 8252 §7.1: a private-use scheme is a domain name the vendor controls, reversed, so it
/// must hold at least one dot and be made of DNS labels. Schemes such as `javascript`, `data`,
/// `file` or `myapp` fail this test.
fn is_reverse_dns_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels[0].bytes().any(|byte| byte.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc8252_redirects() {
        let cases = [
            ("http://127.0.0.1/callback", RedirectKind::Loopback),
            ("http://127.0.0.1:51004/", RedirectKind::Loopback),
            ("http://[::1]:8123/cb?x=1", RedirectKind::Loopback),
            ("com.example.app:/oauth2redirect/example-provider", RedirectKind::PrivateUse),
            ("org.mozilla.thunderbird://oauth", RedirectKind::PrivateUse),
            ("https://app.example.com/oauth", RedirectKind::Https),
        ];
        for (text, kind) in cases {
            assert_eq!(RedirectUri::parse(text).unwrap().kind(), kind, "{text}");
        }
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        let loopback = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(loopback.matches("http://127.0.0.1/callback"));
        assert!(loopback.matches("http://127.0.0.1:51004/callback"));
        for other in [
            "http://127.0.0.1:51004/callback2",
            "http://127.0.0.1:51004/Callback",
            "http://127.0.0.1:51004/callback?x=1",
            "http://[::1]:51004/callback",
            "https://127.0.0.1:51004/callback",
            "http://user@127.0.0.1:51004/callback",
            "http://127.0.0.1:51004/callback#x",
            "http://127.0.0.1:51004/%63allback",
            "http://127.0.0.1.evil.com/callback",
        ] {
            assert!(!loopback.matches(other), "{other}");
        }
        let private = RedirectUri::parse("com.example.app:/cb").unwrap();
        assert!(private.matches("com.example.app:/cb"));
        assert!(!private.matches("com.example.app:/cb2"));
        let https = RedirectUri::parse("https://app.example.com:8443/cb").unwrap();
        assert!(!https.matches("https://app.example.com:9443/cb"), "only loopback ports are free");
    }

    #[test]
    fn refuses_what_rfc8252_and_rfc6749_forbid() {
        let refused = [
            "http://localhost:8080/",
            "http://example.com/cb",
            "http://127.0.0.2/",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://user:pw@example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "myapp:/cb",
            "com..example:/cb",
            "-com.example:/cb",
            "relative/path",
            "https://example.com/a b",
            "https://example.com/\u{7}",
        ];
        for text in refused {
            assert!(RedirectUri::parse(text).is_err(), "{text} should be refused");
        }
        assert_eq!(RedirectUri::parse(&"a".repeat(3000)), Err(RedirectUriError::TooLong));
    }
}
