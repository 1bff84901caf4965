//! The services of a mail account (IMAP, SMTP, POP3, CardDAV, CalDAV), where they are, and
//! which resource indicator (RFC 8707) names each of them at the issuer.

use std::fmt;

use letterlock_protocol::scope;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Error;
use crate::net::is_loopback_host;

/// A kind of service a token can be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Reading mail (RFC 9051).
    Imap,
    /// Sending mail (RFC 6409 submission).
    Smtp,
    /// Reading mail the old way (RFC 1939).
    Pop3,
    /// Contacts (RFC 6352).
    CardDav,
    /// Calendars (RFC 4791).
    CalDav,
}

impl Service {
    /// Every service, in the order they are discovered and shown.
    pub const ALL: [Service; 5] =
        [Service::Imap, Service::Smtp, Service::Pop3, Service::CardDav, Service::CalDav];

    /// The name used on the command line and in storage.
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Smtp => "smtp",
            Self::Pop3 => "pop3",
            Self::CardDav => "carddav",
            Self::CalDav => "caldav",
        }
    }

    /// Parses [`Service::name`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|service| service.name().eq_ignore_ascii_case(text))
    }

    /// The scope a token for this service needs (draft-ietf-mailmaint-oauth-public §3.9).
    pub fn scope(self) -> &'static str {
        match self {
            Self::Imap | Self::Smtp | Self::Pop3 => scope::MAIL,
            Self::CardDav => scope::CONTACTS,
            Self::CalDav => scope::CALENDARS,
        }
    }

    /// True for the services reached over SASL rather than HTTP.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::Imap | Self::Smtp | Self::Pop3)
    }

    /// The URL schemes naming this service: the first with implicit TLS, the second with
    /// STARTTLS (or plain on loopback).
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Imap => &["imaps", "imap"],
            Self::Smtp => &["smtps", "smtp", "submissions", "submission"],
            Self::Pop3 => &["pop3s", "pop3", "pops", "pop"],
            Self::CardDav | Self::CalDav => &["https", "http"],
        }
    }

    fn default_port(self, implicit_tls: bool) -> u16 {
        match (self, implicit_tls) {
            (Self::Imap, true) => 993,
            (Self::Imap, false) => 143,
            (Self::Smtp, true) => 465,
            (Self::Smtp, false) => 587,
            (Self::Pop3, true) => 995,
            (Self::Pop3, false) => 110,
            (_, true) => 443,
            (_, false) => 80,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// How a mail connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (993, 465, 995).
    Tls,
    /// STARTTLS, required; plain text is allowed only to a loopback address.
    StartTls,
}

/// Where one service of an account is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The kind of service.
    pub service: Service,
    /// For SASL services `imaps://host:port` and the like; for DAV the collection URL.
    pub url: Url,
}

impl Endpoint {
    /// Parses a service location given by a person: a URL (`imaps://mail.example.com`,
    /// `smtp://mail.example.com:587`, `https://dav.example.com/`) or a bare `host[:port]`, which
    /// means implicit TLS (or `https`).
    pub fn parse(service: Service, text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("{}://{text}", service.schemes()[0])
        };
        let url = Url::parse(&with_scheme)
            .map_err(|error| Error::Usage(format!("{service} location {text}: {error}")))?;
        if !service.schemes().contains(&url.scheme()) {
            return Err(Error::Usage(format!(
                "{service} location {text}: the scheme must be one of {}",
                service.schemes().join(", ")
            )));
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| Error::Usage(format!("{service} location {text} has no host")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Usage(format!("{service} location {text} must not hold a user")));
        }
        if service.is_sasl() {
            let implicit = url.scheme() == service.schemes()[0];
            let canonical = if implicit { service.schemes()[0] } else { service.schemes()[1] };
            let port = url.port().unwrap_or(service.default_port(implicit));
            let url = Url::parse(&format!("{canonical}://{host}:{port}"))
                .map_err(|error| Error::Usage(format!("{service} location {text}: {error}")))?;
            return Ok(Self { service, url });
        }
        if url.scheme() == "http" && !is_loopback_host(host) {
            return Err(Error::Refused(format!(
                "{service} location {text}: plain http is allowed only to a loopback address"
            )));
        }
        Ok(Self { service, url })
    }

    fn parsed(&self) -> &Url {
        &self.url
    }

    /// The host name or address.
    pub fn host(&self) -> String {
        self.parsed()
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or_else(|| self.service.default_port(self.security() == Security::Tls))
    }

    /// How the connection is protected.
    pub fn security(&self) -> Security {
        if self.url.scheme() == self.service.schemes()[0] {
            Security::Tls
        } else {
            Security::StartTls
        }
    }

    /// Whether `resource` (a URI from the issuer's `protected_resources`) names this endpoint:
    /// the same kind of service, the same host, the same port if the resource names one, and for
    /// HTTP a path that contains this one's (component-wise, never a string prefix).
    pub fn matches_resource(&self, resource: &str) -> bool {
        let Ok(resource) = Url::parse(resource) else { return false };
        let mine = self.parsed();
        if !self.service.schemes().contains(&resource.scheme()) {
            return false;
        }
        let same_host = match (resource.host_str(), mine.host_str()) {
            (Some(theirs), Some(ours)) => theirs.eq_ignore_ascii_case(ours),
            _ => false,
        };
        if !same_host {
            return false;
        }
        if self.service.is_sasl() {
            return resource.port().is_none_or(|port| port == self.port());
        }
        if resource.scheme() != mine.scheme()
            || resource.port_or_known_default() != mine.port_or_known_default()
        {
            return false;
        }
        let segments = |url: &Url| -> Vec<String> {
            url.path_segments()
                .map(|segments| {
                    segments.filter(|segment| !segment.is_empty()).map(str::to_owned).collect()
                })
                .unwrap_or_default()
        };
        let (theirs, ours) = (segments(&resource), segments(mine));
        theirs.len() <= ours.len() && theirs.iter().zip(&ours).all(|(a, b)| a == b)
    }

    /// The resource indicator to ask for when the issuer publishes no `protected_resources`:
    /// `imaps://host` for SASL services (the host-name form), the origin for DAV.
    pub fn default_resource(&self) -> String {
        if self.service.is_sasl() {
            format!("{}://{}", self.service.schemes()[0], self.parsed().host_str().unwrap_or(""))
        } else {
            self.parsed().origin().ascii_serialization()
        }
    }
}

/// The registrable domain of a host (`mail.example.co.uk` → `example.co.uk`), by the Public
/// Suffix List; an IP address is its own.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok() {
        return Some(host);
    }
    psl::domain_str(&host).map(str::to_owned)
}

/// True when two hosts share a registrable domain (and neither is a bare public suffix).
pub fn same_registrable_domain(a: &str, b: &str) -> bool {
    matches!((registrable_domain(a), registrable_domain(b)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_into_canonical_urls() {
        let imap = Endpoint::parse(Service::Imap, "mail.example.com").unwrap();
        assert_eq!(imap.url.as_str(), "imaps://mail.example.com:993");
        assert_eq!(
            (imap.host().as_str(), imap.port(), imap.security()),
            ("mail.example.com", 993, Security::Tls)
        );
        let smtp = Endpoint::parse(Service::Smtp, "submission://mail.example.com").unwrap();
        assert_eq!(smtp.url.as_str(), "smtp://mail.example.com:587");
        assert_eq!(smtp.security(), Security::StartTls);
        let local = Endpoint::parse(Service::Imap, "imap://127.0.0.1:1143").unwrap();
        assert_eq!((local.port(), local.security()), (1143, Security::StartTls));
        let dav = Endpoint::parse(Service::CardDav, "dav.example.com/fay/").unwrap();
        assert_eq!(dav.url.as_str(), "https://dav.example.com/fay/");
        assert!(Endpoint::parse(Service::CardDav, "http://dav.example.com/").is_err());
        assert!(Endpoint::parse(Service::CardDav, "http://127.0.0.1:5232/").is_ok());
        assert!(Endpoint::parse(Service::Imap, "https://mail.example.com").is_err());
        assert!(Endpoint::parse(Service::Imap, "imaps://user@mail.example.com").is_err());
        assert!(Endpoint::parse(Service::Imap, "imaps://").is_err());
    }

    #[test]
    fn resources_match_component_wise() {
        let imap = Endpoint::parse(Service::Imap, "imaps://mail.example.com:993").unwrap();
        assert!(imap.matches_resource("imaps://mail.example.com"));
        assert!(imap.matches_resource("imap://MAIL.example.com"));
        assert!(imap.matches_resource("imaps://mail.example.com:993"));
        assert!(!imap.matches_resource("imaps://mail.example.com:994"));
        assert!(!imap.matches_resource("imaps://mail.example.com.evil.net"));
        assert!(!imap.matches_resource("smtps://mail.example.com"));
        assert!(!imap.matches_resource("https://mail.example.com"));
        let dav = Endpoint::parse(Service::CalDav, "https://dav.example.com/cal/fay/").unwrap();
        assert!(dav.matches_resource("https://dav.example.com"));
        assert!(dav.matches_resource("https://dav.example.com/cal"));
        assert!(
            !dav.matches_resource("https://dav.example.com/ca"),
            "a path is not a string prefix"
        );
        assert!(!dav.matches_resource("https://dav.example.com:8443/"));
        assert!(!dav.matches_resource("http://dav.example.com/"));
        assert_eq!(imap.default_resource(), "imaps://mail.example.com");
        assert_eq!(dav.default_resource(), "https://dav.example.com");
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("mail.example.co.uk").as_deref(), Some("example.co.uk"));
        assert!(same_registrable_domain("imap.example.com", "auth.example.com"));
        assert!(!same_registrable_domain("imap.example.com", "example.net"));
        assert!(
            !same_registrable_domain("a.github.io", "b.github.io"),
            "github.io is a public suffix"
        );
        assert!(same_registrable_domain("127.0.0.1", "127.0.0.1"));
        assert!(!same_registrable_domain("127.0.0.1", "127.0.0.2"));
        assert!(!same_registrable_domain("co.uk", "co.uk"));
    }
}
