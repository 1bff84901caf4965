//! The issuer identifier (RFC 8414 §2, draft-ietf-mailmaint-oauth-public §3.2) and the URLs built
//! from it.

use std::fmt;

use url::Url;

/// Why a string is not an acceptable issuer identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The string is not an absolute URL.
    #[error("the issuer is not an absolute URL: {0}")]
    NotAUrl(String),
    /// The scheme is neither `https` nor `http` on a loopback host.
    #[error(
        "the issuer must use https (plain http only for a loopback host: 127.0.0.1, [::1] or localhost)"
    )]
    InsecureScheme,
    /// The URL carries a user name or password.
    #[error("the issuer must not contain a user name or password")]
    Userinfo,
    /// The URL has a query part.
    #[error("the issuer must not contain a query")]
    Query,
    /// The URL has a fragment.
    #[error("the issuer must not contain a fragment")]
    Fragment,
    /// The path has `.` or `..` segments.
    #[error("the issuer path must not contain '.' or '..' segments")]
    DotSegment,
    /// The path percent-encodes an unreserved character, which makes two spellings of one issuer.
    #[error("the issuer must not percent-encode unreserved characters")]
    EncodedUnreserved,
    /// The URL has no host.
    #[error("the issuer has no host")]
    NoHost,
}

/// An issuer identifier that passed the draft's §3.2 rules: `https` (or `http` on a loopback
/// host, for development), no user information, query or fragment, no dot segments and no
/// percent-encoded unreserved characters. Kept exactly as written: RFC 8414 §3.3 and RFC 9207
/// compare issuers as plain strings, so it is never normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Issuer {
    text: String,
    url: Url,
    loopback: bool,
}

impl Issuer {
    /// Parses and checks an issuer identifier.
    pub fn parse(text: &str) -> Result<Self, IssuerError> {
        let url = Url::parse(text).map_err(|error| IssuerError::NotAUrl(error.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(IssuerError::Userinfo);
        }
        // `Url` drops an empty `?` or `#`; the raw text must not carry them either.
        if url.query().is_some() || text.contains('?') {
            return Err(IssuerError::Query);
        }
        if url.fragment().is_some() || text.contains('#') {
            return Err(IssuerError::Fragment);
        }
        let host = url.host().ok_or(IssuerError::NoHost)?;
        let loopback = match host {
            url::Host::Ipv4(address) => address.is_loopback(),
            url::Host::Ipv6(address) => address.is_loopback(),
            // The name `localhost` exactly: browsers resolve it to loopback without asking a
            // resolver and count `http://localhost` as a secure context, where WebAuthn works
            // (which an IP literal cannot: an RP ID is a domain, WebAuthn §5.1.4.1). Not
            // `localhost.` nor any name below or beside it.
            url::Host::Domain(name) => name == "localhost",
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(IssuerError::InsecureScheme),
        }
        // `Url` removes dot segments while parsing, so look at the text as written.
        let after_authority = text
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]))
            .unwrap_or("");
        if after_authority.split('/').any(|segment| {
            let lowered = segment.to_ascii_lowercase();
            matches!(lowered.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
        }) {
            return Err(IssuerError::DotSegment);
        }
        if encodes_unreserved(text) {
            return Err(IssuerError::EncodedUnreserved);
        }
        Ok(Self { text: text.to_owned(), url, loopback })
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the host is a loopback address (plain `http` is then allowed).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// True when the issuer uses `https`.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The issuer's path without a trailing slash: `""` for `https://example.com` or
    /// `https://example.com/`, `"/tenant"` for `https://example.com/tenant/`.
    pub fn path_prefix(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }

    /// The issuer's origin, `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The URL of an endpoint served under the issuer, for example `endpoint("/register")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}{}", self.origin(), self.path_prefix(), path)
    }

    /// The RFC 8414 §3.1 metadata URL: the well-known suffix goes between the host and the
    /// issuer's path (`https://example.com/.well-known/oauth-authorization-server/tenant`).
    pub fn authorization_server_metadata_url(&self) -> String {
        format!("{}{}{}", self.origin(), AUTHORIZATION_SERVER_WELL_KNOWN, self.path_prefix())
    }

    /// The OpenID Connect Discovery URL: the suffix is appended to the issuer
    /// (RFC 8414 §5), `https://example.com/tenant/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        self.endpoint(OPENID_CONFIGURATION_WELL_KNOWN)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// The RFC 8414 well-known URI suffix.
pub const AUTHORIZATION_SERVER_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
/// The OpenID Connect Discovery 1.0 well-known URI suffix.
pub const OPENID_CONFIGURATION_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// True if the text percent-encodes one of RFC 3986's unreserved characters.
fn encodes_unreserved(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).any(|window| {
        if window[0] != b'%' {
            return false;
        }
        let decoded =
            std::str::from_utf8(&window[1..]).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok());
        decoded.is_some_and(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        assert!(Issuer::parse("https://auth.example.com").is_ok());
        assert!(Issuer::parse("https://auth.example.com/").is_ok());
        assert!(Issuer::parse("https://example.com/tenant/").is_ok());
        let loopback = Issuer::parse("http://127.0.0.1:8080").unwrap();
        assert!(loopback.is_loopback());
        assert!(Issuer::parse("http://[::1]:8080").unwrap().is_loopback());
        // Issue 17: passkeys need a domain as RP ID, and browsers hold `localhost` to loopback.
        let localhost = Issuer::parse("http://localhost:8080").unwrap();
        assert!(localhost.is_loopback());
        assert_eq!(localhost.origin(), "http://localhost:8080");
        assert!(Issuer::parse("http://LocalHost:8080").unwrap().is_loopback());
    }

    #[test]
    fn refuses_what_draft_section_3_2_forbids() {
        assert_eq!(Issuer::parse("http://example.com"), Err(IssuerError::InsecureScheme));
        // Only the name `localhost` itself is loopback, never a look-alike.
        for look_alike in [
            "http://localhost.:8080",
            "http://localhost.evil.example",
            "http://evil.localhost",
            "http://localhost@evil.example",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(Issuer::parse(look_alike).is_err(), "{look_alike}");
        }
        assert_eq!(Issuer::parse("http://%6cocalhost"), Err(IssuerError::EncodedUnreserved));
        assert_eq!(Issuer::parse("https://u:p@example.com"), Err(IssuerError::Userinfo));
        assert_eq!(Issuer::parse("https://example.com?a=b"), Err(IssuerError::Query));
        assert_eq!(Issuer::parse("https://example.com/?"), Err(IssuerError::Query));
        assert_eq!(Issuer::parse("https://example.com#x"), Err(IssuerError::Fragment));
        assert_eq!(Issuer::parse("https://example.com/a/../b"), Err(IssuerError::DotSegment));
        assert_eq!(Issuer::parse("https://example.com/./b"), Err(IssuerError::DotSegment));
        assert_eq!(Issuer::parse("https://example.com/%7Eme"), Err(IssuerError::EncodedUnreserved));
        assert!(matches!(Issuer::parse("example.com"), Err(IssuerError::NotAUrl(_))));
        assert_eq!(Issuer::parse("ftp://example.com"), Err(IssuerError::InsecureScheme));
    }

    #[test]
    fn rfc8414_section_3_1_examples() {
        let with_path = Issuer::parse("https://example.com/issuer1").unwrap();
        assert_eq!(
            with_path.authorization_server_metadata_url(),
            "https://example.com/.well-known/oauth-authorization-server/issuer1"
        );
        assert_eq!(
            with_path.openid_configuration_url(),
            "https://example.com/issuer1/.well-known/openid-configuration"
        );
        assert_eq!(with_path.endpoint("/register"), "https://example.com/issuer1/register");
        let bare = Issuer::parse("https://example.com/").unwrap();
        assert_eq!(
            bare.authorization_server_metadata_url(),
            "https://example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(bare.as_str(), "https://example.com/");
        assert_eq!(bare.path_prefix(), "");
    }
}
