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
    /// `http://127.0.0.1[:port]/...`, `http://[::1][:port]/...` (RFC 8252 §7.3) or
    /// `http://localhost[:port]/...` (RFC 8252 §8.3 does not recommend it, but clients such as
    /// Thunderbird send it): the port is chosen by the client when it listens, so any port
    /// matches at use time.
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
    /// `http` to a host other than a loopback IP literal or `localhost`.
    #[error(
        "'{0}' uses plain http on a host that is not 127.0.0.1, [::1] or localhost (RFC 8252 \
         §7.3: plain http is for loopback redirects only; use https elsewhere)"
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
                    // RFC 8252 §8.3 calls `localhost` NOT RECOMMENDED (a resolver may map it
                    // elsewhere), but §7.3 and RFC 9700 §4.1.3 describe it, and Thunderbird and
                    // pizauth send it. Accepted as written only (any case: RFC 3986 §3.2.2 hosts
                    // are case-insensitive), never a name that merely starts with it or a
                    // percent-encoded or IDNA spelling that the URL parser would fold into it.
                    Some(url::Host::Domain("localhost")) => written_host(text)
                        .is_some_and(|host| host.eq_ignore_ascii_case("localhost")),
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
        // The presented URI passes the same rules (a `localhost` written as such, no user
        // information), and is a loopback redirect itself.
        if RedirectUri::parse(presented).map(|uri| uri.kind) != Ok(RedirectKind::Loopback) {
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

/// The host as written in `scheme://host[:port]/...`, before any parser folds it: the authority
/// without a port (callers have already refused user information).
fn written_host(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    Some(authority.rsplit_once(':').map_or(authority, |(host, _)| host))
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
            ("http://localhost", RedirectKind::Loopback),
            ("http://localhost:8080/", RedirectKind::Loopback),
            ("http://LOCALHOST:65535/cb", RedirectKind::Loopback),
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
        // RFC 8252 §7.3: `localhost` too, on any port and in any case, the path compared.
        let localhost = RedirectUri::parse("http://localhost/callback").unwrap();
        assert_eq!(localhost.kind(), RedirectKind::Loopback);
        for same in [
            "http://localhost/callback",
            "http://localhost:51004/callback",
            "http://LOCALHOST:8080/callback",
            "http://LocalHost:1/callback",
        ] {
            assert!(localhost.matches(same), "{same}");
        }
        for other in [
            "http://localhost:51004/callback2",
            "http://localhost:51004/",
            "http://127.0.0.1:51004/callback",
            "http://[::1]:51004/callback",
            "https://localhost:51004/callback",
            "http://localhost.evil.example:51004/callback",
            "http://localhost@evil.example/callback",
            "http://user@localhost:51004/callback",
            "http://evil.example/localhost/callback",
            "http://local%68ost:51004/callback",
            "http://localhost.:51004/callback",
            "http://localhost:99999/callback",
            "http://localhost:51004/callback#x",
        ] {
            assert!(!localhost.matches(other), "{other}");
        }
        assert!(!loopback.matches("http://localhost:51004/callback"), "hosts are not mixed");
        // `https://localhost` is an https redirect like any other: matched exactly, port
        // included (the port freedom of RFC 8252 §7.3 is for http loopback redirects only).
        let https_localhost = RedirectUri::parse("https://localhost:8443/cb").unwrap();
        assert_eq!(https_localhost.kind(), RedirectKind::Https);
        assert!(https_localhost.matches("https://localhost:8443/cb"));
        assert!(!https_localhost.matches("https://localhost:9443/cb"));
        assert!(!https_localhost.is_native());
        let private = RedirectUri::parse("com.example.app:/cb").unwrap();
        assert!(private.matches("com.example.app:/cb"));
        assert!(!private.matches("com.example.app:/cb2"));
        let https = RedirectUri::parse("https://app.example.com:8443/cb").unwrap();
        assert!(!https.matches("https://app.example.com:9443/cb"), "only loopback ports are free");
    }

    #[test]
    fn refuses_what_rfc8252_and_rfc6749_forbid() {
        let refused = [
            "http://localhost.evil.example/",
            "http://localhost.evil.example:8080/cb",
            "http://localhost@evil.example/",
            "http://localhost:x@evil.example/",
            "http://evil.example/localhost",
            "http://evil.example:8080/?localhost",
            "http://localhost:99999/",
            "http://localhost./",
            "http://local%68ost/",
            "http://xn--localhost/",
            "http://notlocalhost/",
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

    /// Hosts that look like loopback ones, with the decorations attackers add.
    const HOST: &str = "(localhost|LocalHost|127\\.0\\.0\\.1|\\[::1\\]|evil\\.example|[a-z0-9.%@:]{0,12})\
                        (\\.[a-z]{1,6}|@[a-z.]{1,12}|%[0-9a-f]{2}|:[0-9]{1,6}|:[a-z@.]{1,8})?";

    fn pattern(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
        proptest::string::string_regex(pattern).unwrap()
    }

    proptest::proptest! {
        /// RFC 8252 §7.3, §8.3: a plain-http redirect that parses always lands on this machine,
        /// and nothing panics on the way.
        #[test]
        fn an_accepted_http_redirect_is_on_this_machine(
            text in pattern(&format!("http://{HOST}(/[a-z%./?=@]{{0,10}})?"))
        ) {
            if let Ok(uri) = RedirectUri::parse(&text) {
                proptest::prop_assert_eq!(uri.kind(), RedirectKind::Loopback);
                let url = Url::parse(&text).map_err(|error| {
                    proptest::test_runner::TestCaseError::fail(error.to_string())
                })?;
                proptest::prop_assert!(url.username().is_empty() && url.password().is_none());
                let on_this_machine = match url.host() {
                    Some(url::Host::Ipv4(address)) => address == std::net::Ipv4Addr::LOCALHOST,
                    Some(url::Host::Ipv6(address)) => address.is_loopback(),
                    Some(url::Host::Domain(domain)) => domain == "localhost",
                    None => false,
                };
                proptest::prop_assert!(on_this_machine, "{}", text);
            }
        }

        /// A registered `http://localhost` redirect matches a presented one on any port with
        /// the same path, and nothing else of these shapes.
        #[test]
        fn a_localhost_redirect_matches_on_any_port_only(
            host in pattern(HOST),
            path in "(/cb|/cb2|/|/%63b|)",
            port in proptest::option::of(0u32..70_000),
        ) {
            let registered = RedirectUri::parse("http://localhost/cb").map_err(|error| {
                proptest::test_runner::TestCaseError::fail(error.to_string())
            })?;
            let port_text = port.map(|port| format!(":{port}")).unwrap_or_default();
            let presented = format!("http://{host}{port_text}{path}");
            // Independently of the parser: `localhost`, in any case, then at most a port that
            // fits in 16 bits, then exactly the registered path.
            let authority = format!("{host}{port_text}").to_ascii_lowercase();
            let expected = path == "/cb"
                && match authority.strip_prefix("localhost") {
                    Some("") => true,
                    Some(rest) => rest.strip_prefix(':').is_some_and(|digits| {
                        !digits.is_empty()
                            && digits.bytes().all(|byte| byte.is_ascii_digit())
                            && digits.parse::<u16>().is_ok()
                    }),
                    None => false,
                };
            proptest::prop_assert_eq!(registered.matches(&presented), expected, "{}", presented);
        }
    }
}
