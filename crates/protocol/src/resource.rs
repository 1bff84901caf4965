//! Protected resources: the provider's IMAP, SMTP, POP3, CardDAV and CalDAV services, named by
//! absolute URIs (RFC 8707 §2) and listed in the metadata's `protected_resources` (RFC 9728 §4).

use std::fmt;

use url::Url;

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
}

/// An absolute URI naming one protected service, such as `imaps://mail.example.com` or
/// `https://dav.example.com/`. Compared exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource(String);

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
        Ok(Self(text.to_owned()))
    }

    /// The identifier as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_service_uris_and_refuses_fragments() {
        assert!(Resource::parse("imaps://mail.example.com").is_ok());
        assert!(Resource::parse("https://dav.example.com/").is_ok());
        assert!(matches!(Resource::parse("https://a/#x"), Err(ResourceError::Fragment(_))));
        assert!(matches!(Resource::parse("mail.example.com"), Err(ResourceError::NotAbsolute(_))));
    }
}
