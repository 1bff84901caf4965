//! An LDAP directory as an identity source. (Being built: this placeholder answers that
//! the source is unavailable, so that a configuration naming it fails closed.)

use serde::Deserialize;

use super::{Attempt, Standing, Verdict};
use crate::config::ConfigError;

/// `[[sign_in.sources]]` with `kind = "ldap"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// The source's name in logs and `users.source`.
    pub name: String,
}

/// An LDAP directory.
pub struct LdapSource {
    name: String,
}

impl LdapSource {
    /// Checks the configuration.
    pub fn new(config: &LdapConfig) -> Result<Self, ConfigError> {
        Ok(Self { name: config.name.clone() })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the directory about an attempt.
    pub async fn check(&self, _attempt: &Attempt<'_>) -> Verdict {
        Verdict::Unavailable { reason: "the LDAP source is not built yet".to_owned() }
    }

    /// Asks the directory whether a person is still there.
    pub async fn standing(&self, _address: &str) -> Standing {
        Standing::Unknown
    }
}
