//! Identity sources: who may sign in, and what proves it (issue 17).
//!
//! A person proves who they are to a *source*, and the source names the mail address that
//! becomes the token's `sub`. Password sources are tried in the configured order
//! (`[[sign_in.sources]]`): this server's own table ([`PasswordSource::Local`], Argon2id),
//! Dovecot's auth service ([`dovecot`]), an LDAP directory ([`ldap`]). The first that proves the
//! address wins; one that refuses passes the attempt to the next; one that cannot answer ends
//! the attempt ("sign-in is unavailable"), because trying a later source then would let an
//! outage hand the decision to a weaker one (an old local password, say).
//!
//! Throttling is not here: [`crate::accounts::SignInGuard`] spends the account's and the
//! address's budgets once, before any source is asked, whatever the source.
//!
//! A proven address gets, or reuses, a row in `users` (same address, same person), which is
//! what grants, sessions and the devices page hang on. The row records which source last proved
//! the person and when, so that a refresh can ask that source again ([`Sources::standing`]):
//! a person removed or disabled at the source loses their devices within
//! `[sign_in] recheck_seconds` of their next refresh.

pub mod dovecot;
pub mod ldap;
pub mod passkey;
pub mod upstream;

use std::net::IpAddr;

use letterlock_store::LOCAL_SOURCE;
use serde::Deserialize;

use crate::config::{ConfigError, SignInConfig};

/// One sign-in attempt, as a password source sees it.
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    /// The name as the person typed it, trimmed (a mail address, or a user name a source
    /// understands); not normalized, because a source may have its own rules.
    pub typed: &'a str,
    /// The password.
    pub password: &'a str,
    /// The client's address (after trusted proxies), for the source's own logs and limits.
    pub peer: IpAddr,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Attempt")
            .field("typed", &self.typed)
            .field("password", &"<redacted>")
            .field("peer", &self.peer)
            .finish()
    }
}

/// What a password source says about an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The source vouches for the person: this is their mail address (normalized).
    Proven {
        /// The address, as [`crate::accounts::normalize_address`] made it.
        address: String,
    },
    /// Wrong password, unknown or disabled account: the next source is asked.
    Refused,
    /// The source could not answer (down, slow, misconfigured): the attempt ends here.
    Unavailable {
        /// Why, for the operator's log (never shown to the person).
        reason: String,
    },
}

/// What a source says, at a refresh, about a person it proved before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Still there and allowed.
    Active,
    /// Removed or disabled at the source: the person's devices end.
    Gone,
    /// The source cannot tell now (down, or it has no way to look a person up).
    Unknown,
}

/// `[[sign_in.sources]]`: one password source, by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// This server's own accounts (`letterlock user add`).
    Local,
    /// Dovecot's auth service.
    Dovecot(dovecot::DovecotConfig),
    /// An LDAP directory (boxed: its many keys would make every variant as large).
    Ldap(Box<ldap::LdapConfig>),
}

/// A password source, ready to be asked.
pub enum PasswordSource {
    /// This server's own accounts: an Argon2id hash per address (asked by
    /// [`crate::accounts::Accounts`], which holds the store and the bound on hashing).
    Local,
    /// Dovecot's auth service.
    Dovecot(dovecot::DovecotSource),
    /// An LDAP directory.
    Ldap(ldap::LdapSource),
}

impl PasswordSource {
    fn new(config: &SourceConfig) -> Result<Self, ConfigError> {
        Ok(match config {
            SourceConfig::Local => Self::Local,
            SourceConfig::Dovecot(config) => Self::Dovecot(dovecot::DovecotSource::new(config)?),
            SourceConfig::Ldap(config) => Self::Ldap(ldap::LdapSource::new(config)?),
        })
    }

    /// The configured name: what `users.source` and the logs say.
    pub fn name(&self) -> &str {
        match self {
            Self::Local => LOCAL_SOURCE,
            Self::Dovecot(source) => source.name(),
            Self::Ldap(source) => source.name(),
        }
    }

    /// Whether the person this source proved is still there and allowed. The local table
    /// answers through the account's own `disabled` flag, which every refresh reads anyway.
    pub async fn standing(&self, address: &str) -> Standing {
        match self {
            Self::Local => Standing::Active,
            Self::Dovecot(source) => source.standing(address).await,
            Self::Ldap(source) => source.standing(address).await,
        }
    }
}

/// The configured identity sources.
pub struct Sources {
    password: Vec<PasswordSource>,
    upstream: Vec<upstream::UpstreamProvider>,
    require_second_factor: bool,
    recheck_after: i64,
    passkeys: bool,
}

impl Sources {
    /// Checks `[sign_in]` and builds its sources: without any `[[sign_in.sources]]`, the local
    /// table alone (which is how every earlier configuration keeps working). Names must be
    /// unique, and `local` is the local table's alone.
    pub fn new(config: &SignInConfig) -> Result<Self, ConfigError> {
        let configured: &[SourceConfig] =
            if config.sources.is_empty() { &[SourceConfig::Local] } else { &config.sources };
        let mut password: Vec<PasswordSource> = Vec::with_capacity(configured.len());
        for entry in configured {
            let source = PasswordSource::new(entry)?;
            let clashes = password.iter().any(|other| other.name() == source.name())
                || (source.name() == LOCAL_SOURCE && !matches!(source, PasswordSource::Local));
            if clashes || source.name().is_empty() {
                return Err(ConfigError::invalid(
                    "sign_in.sources",
                    format!(
                        "each source needs its own name ('{}' is empty, taken, or the local \
                         table's)",
                        source.name()
                    ),
                ));
            }
            password.push(source);
        }
        // `[[sign_in.upstream]]`: their names share `users.source` with the password sources.
        let mut providers: Vec<upstream::UpstreamProvider> = Vec::new();
        for entry in &config.upstream {
            let provider = upstream::UpstreamProvider::new(entry)?;
            let clashes = provider.name() == LOCAL_SOURCE
                || password.iter().any(|source| source.name() == provider.name())
                || providers.iter().any(|other| other.name() == provider.name());
            if clashes {
                return Err(ConfigError::invalid(
                    "sign_in.upstream.name",
                    format!("'{}' is taken by another source", provider.name()),
                ));
            }
            providers.push(provider);
        }
        let recheck_after = i64::try_from(config.recheck_seconds)
            .ok()
            .filter(|seconds| *seconds >= 1)
            .ok_or_else(|| ConfigError::invalid("sign_in.recheck_seconds", "must be at least 1"))?;
        Ok(Self {
            password,
            upstream: providers,
            require_second_factor: config.require_second_factor,
            recheck_after,
            passkeys: config.passkeys,
        })
    }

    /// Refuses a source that may take as long as a whole request may (`[limits]
    /// request_timeout_seconds`): the browser would get a bare 408 instead of the source's
    /// answer or the "unavailable" page.
    pub fn check_timeouts(config: &SignInConfig, request_timeout: u64) -> Result<(), ConfigError> {
        for source in &config.sources {
            let (name, timeout) = match source {
                SourceConfig::Local => continue,
                SourceConfig::Dovecot(source) => (&source.name, source.timeout_seconds),
                SourceConfig::Ldap(source) => (&source.name, source.timeout_seconds),
            };
            if timeout >= request_timeout {
                return Err(ConfigError::invalid(
                    "sign_in.sources",
                    format!(
                        "source '{name}': timeout_seconds ({timeout}) must be below \
                         [limits] request_timeout_seconds ({request_timeout})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The password sources, in the order they are asked.
    pub fn password(&self) -> &[PasswordSource] {
        &self.password
    }

    /// The upstream OpenID providers, in the order their buttons show.
    pub fn upstream(&self) -> &[upstream::UpstreamProvider] {
        &self.upstream
    }

    /// The upstream provider of this name.
    pub fn upstream_named(&self, name: &str) -> Option<&upstream::UpstreamProvider> {
        self.upstream.iter().find(|provider| provider.name() == name)
    }

    /// True when local accounts sign in (a `kind = "local"` source is configured).
    pub fn local_accounts(&self) -> bool {
        self.password.iter().any(|source| matches!(source, PasswordSource::Local))
    }

    /// `[sign_in] require_second_factor`: password sign-ins need a second factor.
    pub fn require_second_factor(&self) -> bool {
        self.require_second_factor
    }

    /// `[sign_in] passkeys`: passkeys are offered (if the issuer's host is a domain; see
    /// [`passkey::RelyingParty::for_issuer`]).
    pub fn passkeys(&self) -> bool {
        self.passkeys
    }

    /// How long a source's word on a person stands before a refresh asks it again.
    pub fn recheck_after(&self) -> i64 {
        self.recheck_after
    }

    /// Whether the person `source` proved as `address`, `since` seconds ago, is still there. A
    /// source no longer configured cannot tell ([`Standing::Unknown`]), so renaming a source
    /// does not end every device its people have; `letterlock user disable` does that.
    pub async fn standing(&self, source: &str, address: &str, since: i64) -> Standing {
        if let Some(provider) = self.upstream_named(source) {
            return provider.standing(since);
        }
        match self.password.iter().find(|candidate| candidate.name() == source) {
            Some(source) => source.standing(address).await,
            None => {
                tracing::warn!(
                    source,
                    address,
                    "a refresh re-check names a source that is not configured any more"
                );
                Standing::Unknown
            }
        }
    }
}

/// Who a re-check asks about: a `users` row's id and address, the source that last proved
/// the person, and when it last vouched.
#[derive(Debug, Clone, Copy)]
pub struct Vouched<'a> {
    /// `users.id`.
    pub user_id: &'a str,
    /// `users.address`.
    pub address: &'a str,
    /// `users.source`.
    pub source: &'a str,
    /// `users.checked_at`.
    pub checked_at: i64,
}

impl Sources {
    /// The re-check of issue 17 point 3, for a refresh and a passkey sign-in alike. The local
    /// table's people, and anyone whose source vouched less than `recheck_seconds` ago, stand
    /// without a question ([`Standing::Active`]); otherwise the source is asked, and its
    /// `Active` moves `users.checked_at` on. The caller decides what `Gone` costs.
    pub async fn recheck(
        &self,
        store: &letterlock_store::Store,
        who: Vouched<'_>,
        now: i64,
    ) -> Result<Standing, letterlock_store::Error> {
        let since = now.saturating_sub(who.checked_at);
        if who.source == LOCAL_SOURCE || since < self.recheck_after {
            return Ok(Standing::Active);
        }
        let standing = self.standing(who.source, who.address, since).await;
        if standing == Standing::Active {
            store.set_checked(who.user_id, now).await?;
        }
        Ok(standing)
    }
}

/// How a person proved who they are, for what comes after ([`crate::http::session::
/// finish_sign_in`]): whether a second factor is due, and what the logs say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedInBy {
    /// A password, checked by the named password source.
    Password {
        /// The source's configured name.
        source: String,
    },
    /// An upstream OpenID provider, by its configured name.
    Upstream {
        /// The provider's configured name.
        name: String,
    },
    /// A passkey (WebAuthn, with user verification).
    Passkey,
}

impl SignedInBy {
    /// What `users.source` records for this way of signing in.
    pub fn source(&self) -> &str {
        match self {
            Self::Password { source } => source,
            Self::Upstream { name } => name,
            Self::Passkey => "passkey",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(toml_text: &str) -> SignInConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn without_sources_the_local_table_alone_signs_people_in() {
        let sources = Sources::new(&SignInConfig::default()).unwrap();
        assert_eq!(sources.password().len(), 1);
        assert!(sources.local_accounts());
        assert_eq!(sources.recheck_after(), 900);
    }

    #[test]
    fn sources_keep_their_order_and_local_accounts_can_be_left_out() {
        let config = sign_in(
            "[[sources]]\nkind = \"dovecot\"\nname = \"mail\"\n\
             [[sources]]\nkind = \"local\"\n",
        );
        let sources = Sources::new(&config).unwrap();
        let names: Vec<_> = sources.password().iter().map(PasswordSource::name).collect();
        assert_eq!(names, ["mail", "local"]);
        let without = sign_in("[[sources]]\nkind = \"dovecot\"\nname = \"mail\"\n");
        assert!(!Sources::new(&without).unwrap().local_accounts());
    }

    #[test]
    fn names_are_unique_and_local_is_the_tables_own() {
        for clash in [
            "[[sources]]\nkind = \"local\"\n[[sources]]\nkind = \"local\"\n",
            "[[sources]]\nkind = \"dovecot\"\nname = \"a\"\n[[sources]]\nkind = \"ldap\"\nname = \"a\"\n\
             url = \"ldap://127.0.0.1\"\nallow_plaintext_on_loopback = true\nbind_dn = \"cn=s\"\n\
             bind_password = \"p\"\nbase = \"dc=x\"\n",
            "[[sources]]\nkind = \"dovecot\"\nname = \"local\"\n",
            "[[sources]]\nkind = \"dovecot\"\nname = \"\"\n",
        ] {
            let error = Sources::new(&sign_in(clash)).err().unwrap().to_string();
            assert!(error.contains("sign_in.sources"), "{clash}: {error}");
        }
        assert!(toml::from_str::<SignInConfig>("[[sources]]\nkind = \"pam\"\n").is_err());
        let zero = SignInConfig { recheck_seconds: 0, ..SignInConfig::default() };
        assert!(Sources::new(&zero).is_err());
    }

    #[test]
    fn a_source_may_not_outlast_the_request_it_answers() {
        let slow =
            sign_in("[[sources]]\nkind = \"dovecot\"\nname = \"mail\"\ntimeout_seconds = 10\n");
        let error = Sources::check_timeouts(&slow, 10).err().unwrap().to_string();
        assert!(error.contains("request_timeout_seconds"), "{error}");
        assert!(Sources::check_timeouts(&slow, 11).is_ok());
        assert!(Sources::check_timeouts(&SignInConfig::default(), 1).is_ok(), "local only");
    }
}
