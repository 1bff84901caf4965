//! Dovecot's auth service as an identity source. (Being built: this placeholder answers that
//! the source is unavailable, so that a configuration naming it fails closed.)

use serde::Deserialize;

use super::{Attempt, Standing, Verdict};
use crate::config::ConfigError;

/// `[[sign_in.sources]]` with `kind = "dovecot"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DovecotConfig {
    /// The source's name in logs and `users.source`.
    pub name: String,
}

/// Dovecot's auth service.
pub struct DovecotSource {
    name: String,
}

impl DovecotSource {
    /// Checks the configuration.
    pub fn new(config: &DovecotConfig) -> Result<Self, ConfigError> {
        Ok(Self { name: config.name.clone() })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks Dovecot about an attempt.
    pub async fn check(&self, _attempt: &Attempt<'_>) -> Verdict {
        Verdict::Unavailable { reason: "the Dovecot source is not built yet".to_owned() }
    }

    /// Asks Dovecot whether a person is still there.
    pub async fn standing(&self, _address: &str) -> Standing {
        Standing::Unknown
    }
}
