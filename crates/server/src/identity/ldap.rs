//! An LDAP directory as an identity source (issue 17): find the person with a service account,
//! then bind as them with the password they typed.
//!
//! A check is three LDAP operations on one TLS connection (RFC 4511): a simple bind as the
//! configured service account, a search under `base` with `filter` (the typed name escaped by
//! [`escape_filter_value`] in place of `{user}`), and a simple bind as the one entry found,
//! with the password (RFC 4513 §5.1.3). The address proven is the entry's `address_attribute`,
//! never the typed text: a person may type their `uid` if the filter says so, and the token
//! still names their mail address.
//!
//! What it refuses before asking the directory:
//! - an empty password: RFC 4513 §5.1.2 calls a bind with a DN and no password an
//!   "unauthenticated bind", which many servers answer with success (as anonymous); it must
//!   never count as proof;
//! - a connection without TLS, unless the operator allows plain LDAP on a loopback host; the
//!   server's certificate is checked against `ca_file` (RFC 4513 §3.1.3, with rustls).
//!
//! Zero entries or more than one is [`Verdict::Refused`]; a directory that does not answer in
//! `timeout_seconds`, fails the TLS check, or turns the service account away is
//! [`Verdict::Unavailable`], which ends the sign-in ("sign-in is unavailable") instead of asking
//! a later source. At most `concurrent_checks` checks talk to the directory at once; one waiting
//! for its turn longer than the timeout is unavailable too.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Attempt, Standing, Verdict};
use crate::accounts::normalize_address;
use crate::config::ConfigError;

/// Where the typed name goes in `filter`.
pub use letterlock_protocol::ldap_filter::PLACEHOLDER as USER_PLACEHOLDER;

/// `[[sign_in.sources]]` with `kind = "ldap"`. Its `Debug` hides the service password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// The source's name in logs and `users.source`.
    pub name: String,
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `starttls = true`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before anything is sent.
    #[serde(default)]
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS, only when the host is a loopback address or
    /// `localhost` (a directory on the same machine).
    #[serde(default)]
    pub allow_plaintext_on_loopback: bool,
    /// The PEM file of the CA certificates that may sign the directory's certificate.
    pub ca_file: Option<PathBuf>,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password, or
    pub bind_password: Option<String>,
    /// a file holding it (one line; a final newline is not part of it).
    pub bind_password_file: Option<PathBuf>,
    /// Where to search (the whole subtree).
    pub base: String,
    /// The search filter (RFC 4515), with `{user}` where the typed name goes, escaped.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// The attribute holding the person's mail address.
    #[serde(default = "default_address_attribute")]
    pub address_attribute: String,
    /// How long a check (connection, TLS, search and bind) may take.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Checks talking to the directory at once.
    #[serde(default = "default_concurrent_checks")]
    pub concurrent_checks: usize,
}

fn default_filter() -> String {
    "(&(objectClass=inetOrgPerson)(mail={user}))".to_owned()
}

fn default_address_attribute() -> String {
    "mail".to_owned()
}

fn default_timeout_seconds() -> u64 {
    5
}

fn default_concurrent_checks() -> usize {
    8
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LdapConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("allow_plaintext_on_loopback", &self.allow_plaintext_on_loopback)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "<redacted>"))
            .field("bind_password_file", &self.bind_password_file)
            .field("base", &self.base)
            .field("filter", &self.filter)
            .field("address_attribute", &self.address_attribute)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("concurrent_checks", &self.concurrent_checks)
            .finish()
    }
}

/// RFC 4515 §3: the typed name as one value in the filter (`*`, `(`, `)`, `\` and NUL escaped).
pub use letterlock_protocol::ldap_filter::escape_value as escape_filter_value;
/// The search filter for a typed name: the template with every `{user}` replaced by the
/// escaped value.
pub use letterlock_protocol::ldap_filter::fill as filter_for;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with StartTLS before the first bind.
    StartTls,
    /// `ldap://` in the clear, to a loopback host, because the operator said so.
    PlainOnLoopback,
}

/// An LDAP directory, ready to be asked.
pub struct LdapSource {
    name: String,
    url: String,
    transport: Transport,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind_dn: String,
    bind_password: String,
    base: String,
    filter: String,
    address_attribute: String,
    timeout: Duration,
    checks: Arc<Semaphore>,
}

/// Why a check could not be finished: the source is unavailable (or the standing unknown).
#[derive(Debug, thiserror::Error)]
enum Trouble {
    #[error("the directory did not answer within timeout_seconds")]
    Timeout,
    #[error("LDAP: {0}")]
    Ldap(ldap3::LdapError),
    #[error("the service account's bind was refused (result code {rc}: {text})")]
    ServiceBind { rc: u32, text: String },
    #[error("the search failed (result code {rc}: {text})")]
    Search { rc: u32, text: String },
    #[error("the bind as the person's entry failed (result code {rc}: {text})")]
    PersonBind { rc: u32, text: String },
}

impl From<ldap3::LdapError> for Trouble {
    /// ldap3's own connection timeout (the same `timeout_seconds`) says what ours says.
    fn from(error: ldap3::LdapError) -> Self {
        match error {
            ldap3::LdapError::Timeout { .. } => Self::Timeout,
            other => Self::Ldap(other),
        }
    }
}

/// What a search for one person found.
enum Found {
    /// No entry, or more than one (RFC 4511 §4.5.1.1: the size limit of 2 was exceeded).
    NotOne(&'static str),
    /// Exactly one entry.
    One(SearchEntry),
}

/// RFC 4511 Appendix A: result codes.
mod result_code {
    pub const SUCCESS: u32 = 0;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

impl LdapSource {
    /// Checks the configuration: the URL and its protection, the CA file, the service
    /// account's password, the filter (parsed, with `{user}` in it), the limits.
    pub fn new(config: &LdapConfig) -> Result<Self, ConfigError> {
        let key = |name: &str, message: String| {
            ConfigError::invalid(&format!("sign_in.sources[{}].{name}", config.name), message)
        };
        let url = url::Url::parse(&config.url)
            .map_err(|error| key("url", format!("not a URL: {error}")))?;
        let host = url.host_str().filter(|host| !host.is_empty()).ok_or_else(|| {
            key("url", "needs a host: ldaps://host[:port] or ldap://host[:port]".into())
        })?;
        // RFC 4516 §2: an LDAP URL may carry a DN, attributes, a scope and a filter; here those
        // are `base` and `filter`, so a URL carrying them is a mistake, not a second way.
        let bare = matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !bare {
            return Err(key(
                "url",
                "only a scheme, a host and a port (base and filter are keys of their own)".into(),
            ));
        }
        let transport = match (url.scheme(), config.starttls) {
            ("ldaps", false) => Transport::Ldaps,
            ("ldaps", true) => {
                return Err(key("starttls", "is for ldap:// (ldaps:// is TLS already)".into()));
            }
            ("ldap", true) => Transport::StartTls,
            ("ldap", false) if config.allow_plaintext_on_loopback && is_loopback(host) => {
                Transport::PlainOnLoopback
            }
            ("ldap", false) => {
                return Err(key(
                    "url",
                    "ldap:// sends passwords in the clear: use ldaps://, or starttls = true \
                     (plain LDAP only to a loopback host, with allow_plaintext_on_loopback = true)"
                        .into(),
                ));
            }
            (scheme, _) => return Err(key("url", format!("'{scheme}:' is not ldaps: or ldap:"))),
        };
        let tls = match (transport, &config.ca_file) {
            (Transport::PlainOnLoopback, _) => None,
            (_, Some(ca_file)) => {
                Some(client_config(ca_file).map_err(|message| key("ca_file", message))?)
            }
            (_, None) => {
                return Err(key(
                    "ca_file",
                    "is needed to check the directory's certificate (the system's bundle is \
                     /etc/ssl/certs/ca-certificates.crt on Debian)"
                        .into(),
                ));
            }
        };
        let bind_password = match (&config.bind_password, &config.bind_password_file) {
            (Some(password), None) => password.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    key("bind_password_file", format!("cannot read {}: {error}", path.display()))
                })?;
                text.strip_suffix('\n')
                    .map_or(text.clone(), |line| line.trim_end_matches('\r').to_owned())
            }
            _ => {
                return Err(key(
                    "bind_password",
                    "give exactly one of bind_password and bind_password_file".into(),
                ));
            }
        };
        // RFC 4513 §5.1.2: with an empty password the service account's bind would be an
        // unauthenticated one, which a server may take as anonymous.
        if bind_password.is_empty() || config.bind_dn.trim().is_empty() {
            return Err(key("bind_dn", "the service account needs a DN and a password".into()));
        }
        if config.base.trim().is_empty() {
            return Err(key("base", "must not be empty".into()));
        }
        // RFC 4512 §2.5: an attribute description is a descriptor or an OID, with options.
        let attribute = &config.address_attribute;
        let descriptor = attribute
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-.;".contains(character));
        if attribute.is_empty() || !descriptor {
            return Err(key("address_attribute", "must be an attribute name such as mail".into()));
        }
        if !config.filter.contains(USER_PLACEHOLDER) {
            return Err(key("filter", format!("must contain {USER_PLACEHOLDER}")));
        }
        // RFC 4515 §3: the template must be a filter whatever the value put into it.
        if ldap3::parse_filter(filter_for(&config.filter, "someone@example.com")).is_err()
            || ldap3::parse_filter(standing_filter(
                &config.filter,
                attribute,
                "someone@example.com",
            ))
            .is_err()
        {
            return Err(key("filter", "is not an LDAP search filter (RFC 4515)".into()));
        }
        if config.timeout_seconds == 0 || config.timeout_seconds > 300 {
            return Err(key("timeout_seconds", "must be between 1 and 300".into()));
        }
        if config.concurrent_checks == 0 {
            return Err(key("concurrent_checks", "must be at least 1".into()));
        }
        Ok(Self {
            name: config.name.clone(),
            url: config.url.clone(),
            transport,
            tls,
            bind_dn: config.bind_dn.clone(),
            bind_password,
            base: config.base.clone(),
            filter: config.filter.clone(),
            address_attribute: config.address_attribute.clone(),
            timeout: Duration::from_secs(config.timeout_seconds),
            checks: Arc::new(Semaphore::new(config.concurrent_checks)),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the directory about an attempt: the service account searches for exactly one entry,
    /// which the password must bind as.
    pub async fn check(&self, attempt: &Attempt<'_>) -> Verdict {
        // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an unauthenticated
        // bind, which servers may answer with success; it proves nothing, so it is never sent.
        if attempt.password.is_empty() || attempt.typed.is_empty() {
            return Verdict::Refused;
        }
        // No name a person types has control characters, and an escaped NUL is not safe
        // everywhere: OpenLDAP ends an assertion value at it, so that `alice@example.com\0...`
        // (escaped as RFC 4515 says) matches alice (tests/server/ldap.rs shows it).
        if attempt.typed.chars().any(char::is_control) {
            return Verdict::Refused;
        }
        match self.bounded(self.prove(attempt)).await {
            Ok(verdict) => verdict,
            Err(trouble) => Verdict::Unavailable { reason: format!("{}: {trouble}", self.name) },
        }
    }

    /// Asks the directory whether the person proved as `address` is still there and allowed:
    /// one entry whose `address_attribute` is the address and which the filter (with any value
    /// in place of `{user}`) still selects.
    pub async fn standing(&self, address: &str) -> Standing {
        let look_up = async {
            let mut ldap = self.connect().await?;
            let filter = standing_filter(&self.filter, &self.address_attribute, address);
            let found = self.search_one(&mut ldap, &filter).await;
            let _ = ldap.unbind().await;
            found
        };
        match self.bounded(look_up).await {
            Ok(Found::One(_)) => Standing::Active,
            Ok(Found::NotOne(why)) => {
                tracing::info!(
                    source = self.name,
                    address,
                    why,
                    "the directory no longer has this person"
                );
                Standing::Gone
            }
            Err(trouble) => {
                tracing::warn!(source = self.name, address, %trouble, "could not ask the directory about a person");
                Standing::Unknown
            }
        }
    }

    /// Runs `work` in its turn (at most `concurrent_checks` at once) and within the timeout,
    /// waiting for the turn included.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, Trouble>>,
    ) -> Result<T, Trouble> {
        let in_turn = async {
            // The semaphore is never closed, so acquiring fails only if it were.
            let _permit = self.checks.acquire().await.map_err(|_| Trouble::Timeout)?;
            work.await
        };
        tokio::time::timeout(self.timeout, in_turn).await.map_err(|_| Trouble::Timeout)?
    }

    async fn prove(&self, attempt: &Attempt<'_>) -> Result<Verdict, Trouble> {
        let mut ldap = self.connect().await?;
        let filter = filter_for(&self.filter, attempt.typed);
        let entry = match self.search_one(&mut ldap, &filter).await? {
            Found::One(entry) => entry,
            Found::NotOne(why) => {
                tracing::info!(source = self.name, peer = %attempt.peer, why, "no single directory entry for a sign-in");
                let _ = ldap.unbind().await;
                return Ok(Verdict::Refused);
            }
        };
        // RFC 4513 §5.1.3: a name/password bind as the entry found; the password is not empty
        // (checked above), so this is never an unauthenticated bind.
        let bound = ldap.simple_bind(&entry.dn, attempt.password).await?;
        let _ = ldap.unbind().await;
        match bound.rc {
            result_code::SUCCESS => {}
            result_code::INVALID_CREDENTIALS
            | result_code::INAPPROPRIATE_AUTHENTICATION
            | result_code::INSUFFICIENT_ACCESS_RIGHTS
            | result_code::UNWILLING_TO_PERFORM
            | result_code::CONSTRAINT_VIOLATION => return Ok(Verdict::Refused),
            rc => return Err(Trouble::PersonBind { rc, text: bound.text }),
        }
        match self.address_of(&entry, attempt.typed) {
            Some(address) => Ok(Verdict::Proven { address }),
            None => {
                tracing::warn!(
                    source = self.name,
                    dn = entry.dn,
                    attribute = self.address_attribute,
                    "a directory entry proved its password but has no single usable mail address"
                );
                Ok(Verdict::Refused)
            }
        }
    }

    /// A connection with TLS set up (StartTLS done before returning) and the service account
    /// bound.
    async fn connect(&self) -> Result<ldap3::Ldap, Trouble> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.transport == Transport::StartTls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        // The connection's reader and writer; it ends when `ldap` (every handle) is dropped,
        // so a check abandoned at its timeout leaves nothing behind.
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(%error, "an LDAP connection ended with an error");
            }
        });
        let bound = ldap.simple_bind(&self.bind_dn, &self.bind_password).await?;
        if bound.rc != result_code::SUCCESS {
            return Err(Trouble::ServiceBind { rc: bound.rc, text: bound.text });
        }
        Ok(ldap)
    }

    /// Searches for the one entry `filter` selects, asking for its address attribute only.
    async fn search_one(&self, ldap: &mut ldap3::Ldap, filter: &str) -> Result<Found, Trouble> {
        // RFC 4511 §4.5.1.5: two are enough to know there is more than one.
        let result = ldap
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.base, Scope::Subtree, filter, vec![self.address_attribute.as_str()])
            .await?;
        let ldap3::SearchResult(mut entries, outcome) = result;
        match outcome.rc {
            result_code::SUCCESS => {}
            result_code::SIZE_LIMIT_EXCEEDED => return Ok(Found::NotOne("more than one entry")),
            rc => return Err(Trouble::Search { rc, text: outcome.text }),
        }
        match (entries.pop(), entries.is_empty()) {
            (Some(entry), true) => Ok(Found::One(SearchEntry::construct(entry))),
            (Some(_), false) => Ok(Found::NotOne("more than one entry")),
            (None, _) => Ok(Found::NotOne("no entry")),
        }
    }

    /// The entry's mail address, normalized: its one value of `address_attribute`, or, when it
    /// has several, the one that is the typed name.
    fn address_of(&self, entry: &SearchEntry, typed: &str) -> Option<String> {
        let values = entry
            .attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&self.address_attribute))
            .map(|(_, values)| values.as_slice())
            .unwrap_or_default();
        let chosen = match values {
            [only] => only,
            several => several.iter().find(|value| value.eq_ignore_ascii_case(typed))?,
        };
        normalize_address(chosen).ok()
    }
}

/// The filter that finds the person proved as `address` again: the configured filter with any
/// value (`*`, a presence or substring match) in place of `{user}`, and the address attribute
/// equal to the address (escaped).
fn standing_filter(template: &str, attribute: &str, address: &str) -> String {
    format!(
        "(&({attribute}={}){})",
        escape_filter_value(address),
        template.replace(USER_PLACEHOLDER, "*")
    )
}

fn is_loopback(host: &str) -> bool {
    let bracketless = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bracketless.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// A rustls client configuration trusting the certificates in `ca_file` alone.
fn client_config(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(ca_file)
        .map_err(|error| format!("cannot read {}: {error}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|error| format!("{}: {error}", ca_file.display()))?;
        roots.add(certificate).map_err(|error| format!("{}: {error}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate found", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::Tag;
    use proptest::prelude::*;

    /// The marker value: a filter parsed with it in place of `{user}` is the expected structure.
    const MARKER: &str = "marker-value";

    /// `tag` with every octet string equal to the marker replaced by `value`.
    fn with_value(tag: Tag, value: &[u8]) -> Tag {
        match tag {
            Tag::OctetString(mut string) if string.inner == MARKER.as_bytes() => {
                string.inner = value.to_vec();
                Tag::OctetString(string)
            }
            Tag::Sequence(mut sequence) => {
                sequence.inner =
                    sequence.inner.into_iter().map(|tag| with_value(tag, value)).collect();
                Tag::Sequence(sequence)
            }
            Tag::ExplicitTag(mut explicit) => {
                explicit.inner = Box::new(with_value(*explicit.inner, value));
                Tag::ExplicitTag(explicit)
            }
            other => other,
        }
    }

    #[test]
    fn the_template_gets_the_escaped_value() {
        assert_eq!(
            filter_for("(&(objectClass=inetOrgPerson)(mail={user}))", "*)(mail=*"),
            "(&(objectClass=inetOrgPerson)(mail=\\2a\\29\\28mail=\\2a))"
        );
    }

    #[test]
    fn an_injected_name_is_one_equality_value_to_another_parser() {
        // ldap3's own RFC 4515 parser (the one that puts the filter on the wire) sees the
        // attack as a value, not as structure.
        let template = default_filter();
        let expected = ldap3::parse_filter(filter_for(&template, MARKER)).unwrap();
        for attack in ["*", ")(", "*)(mail=*", "alice@example.com)(|(mail=*", "a\0b", "\\2a"] {
            let parsed = ldap3::parse_filter(filter_for(&template, attack)).unwrap();
            assert_eq!(parsed, with_value(expected.clone(), attack.as_bytes()), "{attack:?}");
        }
        // Without the escaping, the same text is structure: a presence match, or no filter.
        assert_ne!(
            ldap3::parse_filter(template.replace(USER_PLACEHOLDER, "*")).unwrap(),
            with_value(expected, b"*")
        );
        assert!(ldap3::parse_filter(template.replace(USER_PLACEHOLDER, "a)(b")).is_err());
    }

    proptest! {
        /// Whatever is typed, the filter keeps the template's structure and the value is
        /// exactly what was typed (RFC 4515 §3), as ldap3's parser reads it.
        #[test]
        fn an_escaped_value_never_changes_the_filters_structure(typed in any::<String>()) {
            for template in [
                default_filter(),
                "(|(uid={user})(mail={user}))".to_owned(),
                "(&(objectClass=person)(!(employeeType=disabled))(uid={user}))".to_owned(),
            ] {
                let expected = ldap3::parse_filter(filter_for(&template, MARKER)).unwrap();
                let parsed = ldap3::parse_filter(filter_for(&template, &typed));
                prop_assert_eq!(parsed, Ok(with_value(expected, typed.as_bytes())));
            }
        }
    }

    fn config(toml_text: &str) -> LdapConfig {
        let base = "name = \"directory\"\nbind_dn = \"cn=service\"\nbind_password = \"secret\"\n\
                    base = \"dc=example,dc=com\"\n";
        toml::from_str(&format!("{base}{toml_text}")).unwrap()
    }

    fn refused(toml_text: &str) -> String {
        match LdapSource::new(&config(toml_text)) {
            Ok(_) => panic!("accepted: {toml_text}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn plain_ldap_is_refused_unless_loopback_and_allowed() {
        let plain = refused("url = \"ldap://directory.example.com\"\n");
        assert!(plain.contains("in the clear"), "{plain}");
        let remote =
            refused("url = \"ldap://directory.example.com\"\nallow_plaintext_on_loopback = true\n");
        assert!(remote.contains("in the clear"), "{remote}");
        let unallowed = refused("url = \"ldap://127.0.0.1:389\"\n");
        assert!(unallowed.contains("in the clear"), "{unallowed}");
        for loopback in ["127.0.0.1:389", "[::1]:389", "localhost"] {
            let allowed = config(&format!(
                "url = \"ldap://{loopback}\"\nallow_plaintext_on_loopback = true\n"
            ));
            assert!(LdapSource::new(&allowed).is_ok(), "{loopback}");
        }
        let both = refused("url = \"ldaps://directory.example.com\"\nstarttls = true\n");
        assert!(both.contains("starttls"), "{both}");
        let other = refused("url = \"https://directory.example.com\"\n");
        assert!(other.contains("not ldaps"), "{other}");
        let with_dn = refused("url = \"ldaps://directory.example.com/dc=example,dc=com??sub\"\n");
        assert!(with_dn.contains("only a scheme"), "{with_dn}");
    }

    #[test]
    fn tls_needs_a_ca_file_with_certificates() {
        let missing = refused("url = \"ldaps://directory.example.com\"\n");
        assert!(missing.contains("ca_file"), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let none = refused(&format!(
            "url = \"ldaps://directory.example.com\"\nca_file = \"{}\"\n",
            empty.display()
        ));
        assert!(none.contains("no certificate"), "{none}");
    }

    #[test]
    fn the_filter_must_parse_and_name_the_user() {
        let plain = "url = \"ldap://127.0.0.1\"\nallow_plaintext_on_loopback = true\n";
        let no_user = refused(&format!("{plain}filter = \"(mail=alice@example.com)\"\n"));
        assert!(no_user.contains("{user}"), "{no_user}");
        let broken = refused(&format!("{plain}filter = \"(&(mail={{user}})\"\n"));
        assert!(broken.contains("RFC 4515"), "{broken}");
        let attribute = refused(&format!("{plain}address_attribute = \"mail)(x\"\n"));
        assert!(attribute.contains("address_attribute"), "{attribute}");
        let zero = refused(&format!("{plain}timeout_seconds = 0\n"));
        assert!(zero.contains("timeout_seconds"), "{zero}");
        let unknown: Result<LdapConfig, _> = toml::from_str(
            "name = \"d\"\nurl = \"ldaps://d\"\nbind_dn = \"x\"\nbase = \"y\"\nsurprise = 1\n",
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn the_service_password_is_one_of_two_keys_never_empty_and_never_printed() {
        let plain = "url = \"ldap://127.0.0.1\"\nallow_plaintext_on_loopback = true\n";
        let empty: LdapConfig = toml::from_str(&format!(
            "name = \"d\"\n{plain}bind_dn = \"cn=service\"\nbind_password = \"\"\nbase = \"dc=x\"\n"
        ))
        .unwrap();
        assert!(LdapSource::new(&empty).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from a file\n").unwrap();
        let both: LdapConfig = toml::from_str(&format!(
            "name = \"d\"\n{plain}bind_dn = \"cn=service\"\nbind_password = \"x\"\n\
             bind_password_file = \"{}\"\nbase = \"dc=x\"\n",
            file.display()
        ))
        .unwrap();
        assert!(LdapSource::new(&both).is_err());
        let from_file: LdapConfig = toml::from_str(&format!(
            "name = \"d\"\n{plain}bind_dn = \"cn=service\"\nbind_password_file = \"{}\"\nbase = \"dc=x\"\n",
            file.display()
        ))
        .unwrap();
        assert_eq!(LdapSource::new(&from_file).unwrap().bind_password, "from a file");
        let printed = format!("{:?}", config(plain));
        assert!(!printed.contains("secret") && printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn standing_finds_the_address_among_what_the_filter_allows() {
        assert_eq!(
            standing_filter(
                "(&(objectClass=inetOrgPerson)(uid={user})(!(employeeType=disabled)))",
                "mail",
                "a*b@example.com"
            ),
            "(&(mail=a\\2ab@example.com)(&(objectClass=inetOrgPerson)(uid=*)(!(employeeType=disabled))))"
        );
    }

    #[test]
    fn the_documented_example_is_a_configuration() {
        let doc = include_str!("../../../../docs/CONFIGURATION.md");
        let section = doc.split("#### `kind = \"ldap\"`").nth(1).unwrap();
        let example = section.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        #[derive(Deserialize)]
        struct File {
            sign_in: crate::config::SignInConfig,
        }
        let file: File = toml::from_str(example).expect("the example in docs/CONFIGURATION.md");
        match file.sign_in.sources.as_slice() {
            [super::super::SourceConfig::Ldap(ldap)] => {
                assert_eq!(ldap.address_attribute, "mail");
                assert_eq!((ldap.timeout_seconds, ldap.concurrent_checks), (5, 8));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_without_asking() {
        // A directory that is not there: were it asked, the answer would be unavailable.
        let source = LdapSource::new(&config(&format!(
            "url = \"ldap://127.0.0.1:{}\"\nallow_plaintext_on_loopback = true\n",
            closed_port()
        )))
        .unwrap();
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let empty = Attempt { typed: "alice@example.com", password: "", peer };
        assert_eq!(source.check(&empty).await, Verdict::Refused);
        let asked = Attempt { typed: "alice@example.com", password: "x", peer };
        assert!(matches!(source.check(&asked).await, Verdict::Unavailable { .. }));
    }

    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}
