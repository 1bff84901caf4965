//! Scopes (RFC 6749 §3.3) and the interoperable mail scopes of
//! draft-ietf-mailmaint-oauth-public §3.9.

use std::fmt;

/// Reading and sending mail: IMAP, POP3, SMTP submission, JMAP Mail.
pub const MAIL: &str = "urn:ietf:params:oauth:scope:mail";
/// Contacts: CardDAV, JMAP Contacts.
pub const CONTACTS: &str = "urn:ietf:params:oauth:scope:contacts";
/// Calendars: CalDAV, JMAP Calendars.
pub const CALENDARS: &str = "urn:ietf:params:oauth:scope:calendars";
/// Ask for a refresh token (OpenID Connect Core §11, used by mail clients everywhere).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The scopes Letterlock supports, in the order discovery lists them.
pub const SUPPORTED: [&str; 4] = [MAIL, CONTACTS, CALENDARS, OFFLINE_ACCESS];

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// A scope token holds a character outside RFC 6749 §3.3's `scope-token`.
    #[error("scope contains a character that RFC 6749 §3.3 does not allow")]
    Syntax,
    /// A scope token is well formed but not offered by this server.
    #[error("scope '{0}' is not supported")]
    Unsupported(String),
}

/// A set of supported scope tokens, kept in the order of [`SUPPORTED`] and without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<&'static str>);

impl ScopeSet {
    /// Every supported scope.
    pub fn all() -> Self {
        Self(SUPPORTED.to_vec())
    }

    /// Parses a space-separated scope string (RFC 6749 §3.3) and keeps only supported scopes.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut found = [false; SUPPORTED.len()];
        for token in text.split(' ').filter(|token| !token.is_empty()) {
            if !token.bytes().all(|byte| {
                byte == 0x21 || (0x23..=0x5b).contains(&byte) || (0x5d..=0x7e).contains(&byte)
            }) {
                return Err(ScopeError::Syntax);
            }
            let index = SUPPORTED
                .iter()
                .position(|supported| *supported == token)
                .ok_or_else(|| ScopeError::Unsupported(token.chars().take(100).collect()))?;
            found[index] = true;
        }
        Ok(Self(
            SUPPORTED.iter().zip(found).filter(|(_, on)| *on).map(|(scope, _)| *scope).collect(),
        ))
    }

    /// True when the set holds the scope.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(&scope)
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scope tokens.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_orders_and_dedups() {
        let set =
            ScopeSet::parse("offline_access  urn:ietf:params:oauth:scope:mail offline_access")
                .unwrap();
        assert_eq!(set.to_string(), "urn:ietf:params:oauth:scope:mail offline_access");
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_unknown_and_malformed() {
        assert_eq!(ScopeSet::parse("mail"), Err(ScopeError::Unsupported("mail".into())));
        assert_eq!(ScopeSet::parse("a\"b"), Err(ScopeError::Syntax));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeError::Syntax));
    }
}
