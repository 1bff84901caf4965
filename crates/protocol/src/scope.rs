//! Scopes (RFC 6749 §3.3): the interoperable mail scopes of draft-ietf-mailmaint-oauth-public
//! §3.9, `offline_access`, and OpenID Connect Core's `openid`, `profile` and `email` (§3.1.2.1,
//! §5.4).
//!
//! A scope is read in one of two ways. [`ScopeSet::parse`] is strict: every token must be one
//! Letterlock supports; it reads what Letterlock itself stored. [`ScopeSet::parse_requested`]
//! reads what a client asks for, liberally as RFC 6749 §3.3 allows ("The authorization server
//! MAY fully or partially ignore the scope requested by the client"): a well-formed token
//! Letterlock does not know is dropped, and the protocol names of the autoconfig draft
//! (`IMAP`, `SMTP`, `POP3`, `CalDAV`, `CardDAV`) stand for the scopes of those services. A
//! malformed token is still an error, and so is a request of which nothing is left: a grant of
//! nothing serves no one, and silently granting something else than asked would surprise.

use std::fmt;

/// Reading and sending mail: IMAP, POP3, SMTP submission, JMAP Mail.
pub const MAIL: &str = "urn:ietf:params:oauth:scope:mail";
/// Contacts: CardDAV, JMAP Contacts.
pub const CONTACTS: &str = "urn:ietf:params:oauth:scope:contacts";
/// Calendars: CalDAV, JMAP Calendars.
pub const CALENDARS: &str = "urn:ietf:params:oauth:scope:calendars";
/// Ask for a refresh token (OpenID Connect Core §11, used by mail clients everywhere).
pub const OFFLINE_ACCESS: &str = "offline_access";
/// OpenID Connect Core §3.1.2.1: the request is an OpenID Connect request; the code exchange
/// returns an ID token.
pub const OPENID: &str = "openid";
/// OpenID Connect Core §5.4: the person's name, at the UserInfo endpoint.
pub const PROFILE: &str = "profile";
/// OpenID Connect Core §5.4: the person's mail address, at the UserInfo endpoint.
pub const EMAIL: &str = "email";

/// The scopes Letterlock supports, in the order discovery lists them.
pub const SUPPORTED: [&str; 7] =
    [MAIL, CONTACTS, CALENDARS, OFFLINE_ACCESS, OPENID, PROFILE, EMAIL];

/// draft-ietf-mailmaint-autoconfig, OAuth2 section: an autoconfig file's scope may name the
/// protocols the token is for. Each name stands for the scope of draft-ietf-mailmaint-oauth-
/// public §3.9 that covers the protocol. Compared without regard to case: these are names of
/// protocols, not scope tokens of this server.
pub const PROTOCOL_NAMES: [(&str, &str); 5] =
    [("IMAP", MAIL), ("SMTP", MAIL), ("POP3", MAIL), ("CalDAV", CALENDARS), ("CardDAV", CONTACTS)];

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
    /// Every scope token asked for is unknown here: nothing would be granted.
    #[error("none of the scopes asked for is supported here (the first was '{0}')")]
    NoneSupported(String),
}

/// What a client asked for, read by [`ScopeSet::parse_requested`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestedScope {
    /// The supported scopes asked for, protocol names mapped.
    pub scope: ScopeSet,
    /// How many well-formed tokens were dropped as unknown.
    pub dropped: usize,
}

/// A set of supported scope tokens, kept in the order of [`SUPPORTED`] and without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<&'static str>);

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(token: &str) -> bool {
    token
        .bytes()
        .all(|byte| byte == 0x21 || (0x23..=0x5b).contains(&byte) || (0x5d..=0x7e).contains(&byte))
}

impl ScopeSet {
    /// Every supported scope.
    pub fn all() -> Self {
        Self(SUPPORTED.to_vec())
    }

    /// Parses a space-separated scope string (RFC 6749 §3.3) of which every token must be a
    /// supported scope: for what Letterlock stored itself.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut found = [false; SUPPORTED.len()];
        for token in text.split(' ').filter(|token| !token.is_empty()) {
            if !is_scope_token(token) {
                return Err(ScopeError::Syntax);
            }
            let index = SUPPORTED
                .iter()
                .position(|supported| *supported == token)
                .ok_or_else(|| ScopeError::Unsupported(token.chars().take(100).collect()))?;
            found[index] = true;
        }
        Ok(Self::from_found(found))
    }

    /// Reads the scope a client asks for (RFC 6749 §3.3), liberally: unknown well-formed tokens
    /// are dropped, the autoconfig draft's protocol names ([`PROTOCOL_NAMES`]) are mapped. A
    /// token with a character §3.3 does not allow is [`ScopeError::Syntax`]; a request with
    /// tokens of which none is known is [`ScopeError::NoneSupported`]. A text without any token
    /// gives the empty set, which the caller judges.
    pub fn parse_requested(text: &str) -> Result<RequestedScope, ScopeError> {
        let mut found = [false; SUPPORTED.len()];
        let mut dropped = 0;
        let mut first_dropped = None;
        for token in text.split(' ').filter(|token| !token.is_empty()) {
            if !is_scope_token(token) {
                return Err(ScopeError::Syntax);
            }
            let known = SUPPORTED.iter().position(|supported| *supported == token).or_else(|| {
                PROTOCOL_NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(token)).and_then(
                    |(_, scope)| SUPPORTED.iter().position(|supported| supported == scope),
                )
            });
            match known {
                Some(index) => found[index] = true,
                None => {
                    dropped += 1;
                    first_dropped.get_or_insert(token);
                }
            }
        }
        let scope = Self::from_found(found);
        match first_dropped {
            Some(first) if scope.is_empty() => {
                Err(ScopeError::NoneSupported(first.chars().take(100).collect()))
            }
            _ => Ok(RequestedScope { scope, dropped }),
        }
    }

    fn from_found(found: [bool; SUPPORTED.len()]) -> Self {
        Self(SUPPORTED.iter().zip(found).filter(|(_, on)| *on).map(|(scope, _)| *scope).collect())
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

    #[test]
    fn requests_drop_unknown_scopes_and_map_protocol_names() {
        let asked =
            ScopeSet::parse_requested("openid email mail profile:x offline_access").unwrap();
        assert_eq!(asked.scope.to_string(), "offline_access openid email");
        assert_eq!(asked.dropped, 2);
        let autoconfig = ScopeSet::parse_requested("IMAP SMTP imap CalDAV CardDAV").unwrap();
        assert_eq!(
            autoconfig.scope,
            ScopeSet::parse(&format!("{MAIL} {CONTACTS} {CALENDARS}")).unwrap()
        );
        assert_eq!(autoconfig.dropped, 0);
        assert_eq!(ScopeSet::parse_requested("POP3").unwrap().scope.to_string(), MAIL);
        assert_eq!(ScopeSet::parse_requested("  ").unwrap(), RequestedScope::default());
        assert_eq!(
            ScopeSet::parse_requested("mail https://mail.google.com/"),
            Err(ScopeError::NoneSupported("mail".into()))
        );
        assert_eq!(ScopeSet::parse_requested("openid a\\b"), Err(ScopeError::Syntax));
    }

    proptest::proptest! {
        /// Whatever a client sends, the liberal reading never panics, grants only supported
        /// scopes, refuses as malformed exactly the texts with a token outside RFC 6749 §3.3,
        /// and agrees with the strict reading on texts of supported scopes.
        #[test]
        fn requested_scopes_are_a_subset_of_supported(text in "[ -~\t]{0,80}") {
            let strict = ScopeSet::parse(&text);
            let malformed = text.split(' ').any(|token| !token.is_empty() && !is_scope_token(token));
            let result = ScopeSet::parse_requested(&text);
            proptest::prop_assert_eq!(malformed, result == Err(ScopeError::Syntax));
            match result {
                Ok(asked) => {
                    proptest::prop_assert!(asked.scope.iter().all(|scope| SUPPORTED.contains(&scope)));
                    if let Ok(strict) = strict {
                        proptest::prop_assert_eq!(asked.scope, strict);
                        proptest::prop_assert_eq!(asked.dropped, 0);
                    }
                }
                Err(_) => proptest::prop_assert!(strict.is_err()),
            }
        }

        /// Texts made of supported scopes, protocol names and other well-formed tokens read as
        /// the union of the known ones.
        #[test]
        fn known_tokens_survive_among_unknown_ones(
            picks in proptest::collection::vec(0usize..(SUPPORTED.len() + PROTOCOL_NAMES.len() + 1), 1..8),
        ) {
            let mut expected = Vec::new();
            let tokens: Vec<&str> = picks
                .iter()
                .map(|&pick| {
                    if pick < SUPPORTED.len() {
                        expected.push(SUPPORTED[pick]);
                        SUPPORTED[pick]
                    } else if pick < SUPPORTED.len() + PROTOCOL_NAMES.len() {
                        let (name, scope) = PROTOCOL_NAMES[pick - SUPPORTED.len()];
                        expected.push(scope);
                        name
                    } else {
                        "x-unknown"
                    }
                })
                .collect();
            let result = ScopeSet::parse_requested(&tokens.join(" "));
            if expected.is_empty() {
                proptest::prop_assert!(matches!(result, Err(ScopeError::NoneSupported(_))));
            } else {
                let asked = result.unwrap();
                let want = ScopeSet::parse(&expected.join(" ")).unwrap();
                proptest::prop_assert_eq!(asked.scope, want);
            }
        }
    }
}
