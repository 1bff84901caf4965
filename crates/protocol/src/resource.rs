//! Protected resources: the provider's IMAP, SMTP, POP3, CardDAV and CalDAV services, named by
//! absolute URIs (RFC 8707 §2) and listed in the metadata's `protected_resources` (RFC 9728 §4).
//!
//! Two spellings of one service are one resource: identifiers are compared after RFC 3986
//! §6.2.2 (syntax-based) and §6.2.3 (scheme-based) normalization, so that a client that sends
//! `IMAPS://Mail.Example.com:993` for the configured `imaps://mail.example.com` is understood.
//! What is issued (`aud`) is always the configured spelling, never the client's.
//!
//! ```
//! use letterlock_protocol::Resource;
//!
//! let configured = Resource::parse("imaps://mail.example.com").unwrap();
//! assert!(configured.is("IMAPS://Mail.Example.com:993/"));
//! assert!(!configured.is("imaps://mail.example.com:994"));
//! assert!(!configured.is("imaps://user@mail.example.com"));
//! assert_eq!(configured.as_str(), "imaps://mail.example.com");
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};

use url::Url;

use crate::scope::{CALENDARS, CONTACTS, MAIL, ScopeSet};

/// Why a resource identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// Not an absolute URI.
    #[error("resource '{0}' is not an absolute URI")]
    NotAbsolute(String),
    /// RFC 8707 §2: a resource indicator must not include a fragment.
    #[error("resource '{0}' must not contain a fragment (RFC 8707 §2)")]
    Fragment(String),
    /// A resource must name a host.
    #[error("resource '{0}' has no host")]
    NoHost(String),
    /// A service is named by scheme, host, port and path; a user name or password in the
    /// identifier (RFC 3986 §3.2.1) names nothing a token could be for.
    #[error("resource '{0}' must not contain a user name or password")]
    UserInfo(String),
}

/// An absolute URI naming one protected service, such as `imaps://mail.example.com` or
/// `https://dav.example.com/`. Kept as written (what tokens carry in `aud`) and compared as an
/// identifier: two resources are equal when their normalized forms are ([`Resource::normalized`]).
#[derive(Debug, Clone)]
pub struct Resource {
    written: String,
    normalized: String,
}

impl Resource {
    /// Parses a resource identifier.
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        let url = Url::parse(text).map_err(|_| ResourceError::NotAbsolute(text.to_owned()))?;
        if url.fragment().is_some() || text.contains('#') {
            return Err(ResourceError::Fragment(text.to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ResourceError::NoHost(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ResourceError::UserInfo(text.to_owned()));
        }
        Ok(Self { written: text.to_owned(), normalized: normalize(&url) })
    }

    /// The identifier as written (in the configuration: what tokens carry in `aud`).
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The normalized form it is compared by: scheme and host in lower case (RFC 3986 §6.2.2.1),
    /// no port when the port is the scheme's default (§6.2.3, [`default_port`]), `/` for an
    /// empty path (§6.2.3), dot segments removed (§6.2.2.3).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// True when `other` is an identifier of this resource (see [`Resource::normalized`]); an
    /// identifier that does not parse names nothing.
    pub fn is(&self, other: &str) -> bool {
        Self::parse(other).is_ok_and(|other| other.normalized == self.normalized)
    }

    /// The scopes whose tokens this service accepts when the configuration names none: the
    /// mail scope for the mail protocols' schemes, contacts and calendars for `http`/`https`
    /// (CardDAV and CalDAV, RFC 6352 and RFC 4791), none for any other scheme
    /// (draft-ietf-mailmaint-oauth-public §3.9 names the scopes).
    pub fn default_scopes(&self) -> &'static [&'static str] {
        match self.scheme() {
            "imap" | "imaps" | "pop" | "pops" | "pop3" | "pop3s" | "smtp" | "smtps"
            | "submission" | "submissions" => &[MAIL],
            "http" | "https" => &[CONTACTS, CALENDARS],
            _ => &[],
        }
    }

    fn scheme(&self) -> &str {
        self.normalized.split_once(':').map_or("", |(scheme, _)| scheme)
    }
}

/// A configured service: its resource identifier and the scopes whose tokens it accepts. A
/// token asked without `resource` is for every granted service its scope reaches
/// ([`crate::token::narrow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The identifier, as configured.
    pub resource: Resource,
    /// The scopes that reach it: configured, or [`Resource::default_scopes`].
    pub scopes: Vec<String>,
}

impl Service {
    /// A service reached by `scopes`, or by its scheme's [`Resource::default_scopes`] when the
    /// configuration names none.
    pub fn new(resource: Resource, scopes: Option<Vec<String>>) -> Self {
        let scopes = scopes.unwrap_or_else(|| {
            resource.default_scopes().iter().map(|scope| (*scope).to_owned()).collect()
        });
        Self { resource, scopes }
    }

    /// True when a token of `scope` is of use at this service.
    pub fn reached_by(&self, scope: &ScopeSet) -> bool {
        self.scopes.iter().any(|one| scope.contains(one))
    }
}

/// True when `a` and `b` are identifiers of one resource; false when either does not parse.
pub fn same(a: &str, b: &str) -> bool {
    Resource::parse(a).is_ok_and(|a| a.is(b))
}

/// The port a service's scheme implies when its identifier names none (RFC 3986 §6.2.3: a URI
/// with the default port and one without are equivalent). The `url` crate knows only the web's
/// schemes; the mail schemes' ports are:
/// - `imaps` 993 and `submissions`/`smtps` 465: RFC 8314 §7 (implicit TLS);
/// - `imap` 143: RFC 9051 and RFC 5092; `pop3s` 995 and `pop3` 110: RFC 8314 §7, RFC 2384;
/// - `smtp` and `submission` 587: RFC 6409 §3.1, message submission. A resource is a service a
///   mail program submits to with a token; port 25 is relay between servers, where no client
///   presents a token, so `smtp://host` is submission, as the front doors read it too.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "imaps" => Some(993),
        "imap" => Some(143),
        "smtps" | "submissions" => Some(465),
        "smtp" | "submission" => Some(587),
        "pop3s" | "pops" => Some(995),
        "pop3" | "pop" => Some(110),
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// RFC 3986 §6.2.2 and §6.2.3 over a parsed identifier without user information or fragment.
fn normalize(url: &Url) -> String {
    // RFC 3986 §6.2.2.1: the scheme and the host are case-insensitive (`url` lowers the scheme,
    // and the host only for the web's schemes).
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    // RFC 3986 §6.2.3: the default port is the same as no port.
    let port = url.port().filter(|port| default_port(&scheme) != Some(*port));
    // RFC 3986 §6.2.3: an empty path is `/` where the scheme has hierarchical paths.
    let path = match url.path() {
        "" => "/",
        path => path,
    };
    let mut normalized = format!("{scheme}://{host}");
    if let Some(port) = port {
        normalized.push_str(&format!(":{port}"));
    }
    normalized.push_str(path);
    if let Some(query) = url.query() {
        normalized.push('?');
        normalized.push_str(query);
    }
    normalized
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

impl Eq for Resource {}

impl Hash for Resource {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_service_uris_and_refuses_fragments_and_user_names() {
        assert!(Resource::parse("imaps://mail.example.com").is_ok());
        assert!(Resource::parse("https://dav.example.com/").is_ok());
        assert!(matches!(Resource::parse("https://a/#x"), Err(ResourceError::Fragment(_))));
        assert!(matches!(Resource::parse("mail.example.com"), Err(ResourceError::NotAbsolute(_))));
        assert!(matches!(
            Resource::parse("imaps://eve@mail.example.com"),
            Err(ResourceError::UserInfo(_))
        ));
        assert!(matches!(
            Resource::parse("imaps://eve:pw@mail.example.com"),
            Err(ResourceError::UserInfo(_))
        ));
    }

    /// Issue 16 point 3: spellings of one service that clients send are the configured one.
    #[test]
    fn equal_spellings_of_one_service() {
        let pairs = [
            ("imaps://mail.example.com", "imaps://mail.example.com:993"),
            ("imaps://mail.example.com", "IMAPS://MAIL.example.COM"),
            ("imaps://mail.example.com", "imaps://mail.example.com/"),
            ("imaps://mail.example.com:993/", "imaps://Mail.Example.com"),
            ("imap://mail.example.com", "imap://mail.example.com:143"),
            ("pop3s://mail.example.com", "pop3s://mail.example.com:995"),
            ("pop3://mail.example.com", "pop3://mail.example.com:110"),
            ("smtps://mail.example.com", "smtps://mail.example.com:465"),
            ("submissions://mail.example.com", "submissions://mail.example.com:465"),
            ("submission://mail.example.com", "submission://mail.example.com:587"),
            ("smtp://mail.example.com", "smtp://mail.example.com:587"),
            ("https://dav.example.com", "https://dav.example.com:443/"),
            ("http://dav.example.com/", "HTTP://DAV.example.com:80"),
            ("https://dav.example.com/caldav/", "https://DAV.example.com:443/caldav/"),
            ("https://dav.example.com/caldav/", "https://dav.example.com/x/../caldav/"),
            ("imap://[::1]:1143", "IMAP://[0:0:0:0:0:0:0:1]:1143/"),
            ("imap://127.0.0.1", "imap://127.0.0.1:143"),
        ];
        for (configured, sent) in pairs {
            let configured_resource = Resource::parse(configured).unwrap();
            assert!(configured_resource.is(sent), "{configured} is {sent}");
            assert!(same(sent, configured), "{sent} is {configured}");
            assert_eq!(configured_resource, Resource::parse(sent).unwrap());
        }
    }

    /// The attacks of earlier issues stay refused: another host, port, path, scheme, a user
    /// name, a fragment.
    #[test]
    fn unequal_identifiers_stay_apart() {
        let configured = Resource::parse("imaps://mail.example.com").unwrap();
        for sent in [
            "imaps://mail.example.org",
            "imaps://mail.example.com.evil.example",
            "imaps://mail.example.com:994",
            "imaps://mail.example.com:143",
            "imap://mail.example.com",
            "imap://mail.example.com:993",
            "smtps://mail.example.com",
            "imaps://mail.example.com/other",
            "imaps://mail.example.com/?x",
            "imaps://eve@mail.example.com",
            "imaps://mail.example.com:993@evil.example",
            "imaps://mail.example.com#x",
            "imaps://mail.example.com/#",
            "mail.example.com",
            "",
        ] {
            assert!(!configured.is(sent), "{sent} is not {configured}");
        }
        let dav = Resource::parse("https://dav.example.com/caldav/").unwrap();
        for sent in [
            "https://dav.example.com/caldav",
            "https://dav.example.com/CALDAV/",
            "https://dav.example.com:8443/caldav/",
            "http://dav.example.com/caldav/",
        ] {
            assert!(!dav.is(sent), "{sent} is not {dav}");
        }
        assert!(!same("smtp://mail.example.com:25", "smtp://mail.example.com"), "smtp is 587");
    }

    #[test]
    fn the_default_scopes_follow_the_scheme() {
        let scopes = |text: &str| Resource::parse(text).unwrap().default_scopes();
        assert_eq!(scopes("IMAPS://mail.example.com"), [MAIL]);
        assert_eq!(scopes("submissions://mail.example.com"), [MAIL]);
        assert_eq!(scopes("pop3://mail.example.com"), [MAIL]);
        assert_eq!(scopes("https://dav.example.com/"), [CONTACTS, CALENDARS]);
        assert!(scopes("ldap://dir.example.com").is_empty());
    }

    fn identifier() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "imap",
                "IMAPS",
                "smtp",
                "Submissions",
                "pop3",
                "https",
                "HTTP",
                "ldap",
            ]),
            prop::sample::select(vec![
                "mail.example.com",
                "MAIL.Example.COM",
                "127.0.0.1",
                "[::1]",
            ]),
            prop::option::of(prop::sample::select(vec![
                25u16, 80, 110, 143, 443, 465, 587, 993, 995, 1143,
            ])),
            prop::sample::select(vec!["", "/", "/caldav/", "/a/../b", "/%7Ex", "/A"]),
            prop::option::of("[a-z=&]{0,6}"),
        )
            .prop_map(|(scheme, host, port, path, query)| {
                let port = port.map(|port| format!(":{port}")).unwrap_or_default();
                let query = query.map(|query| format!("?{query}")).unwrap_or_default();
                format!("{scheme}://{host}{port}{path}{query}")
            })
    }

    proptest! {
        /// Normalizing is idempotent: the normalized form parses to itself.
        #[test]
        fn normalization_is_idempotent(text in identifier()) {
            let resource = Resource::parse(&text).unwrap();
            let again = Resource::parse(resource.normalized()).unwrap();
            prop_assert_eq!(again.normalized(), resource.normalized());
            prop_assert!(resource.is(resource.normalized()));
        }

        /// Equivalence is symmetric and agrees with the normalized forms, on any text.
        #[test]
        fn equivalence_is_symmetric(a in identifier(), b in identifier()) {
            prop_assert_eq!(same(&a, &b), same(&b, &a));
            let (ra, rb) = (Resource::parse(&a).unwrap(), Resource::parse(&b).unwrap());
            prop_assert_eq!(same(&a, &b), ra.normalized() == rb.normalized());
        }

        /// Arbitrary text never panics and is equal to itself whenever it parses.
        #[test]
        fn any_text_is_handled(text in "\\PC{0,40}") {
            if let Ok(resource) = Resource::parse(&text) {
                prop_assert!(resource.is(&text));
                prop_assert!(Resource::parse(resource.normalized()).is_ok());
            }
        }
    }
}
