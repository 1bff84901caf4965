//! `letterlock dovecot-config`: the settings with which Dovecot's oauth2 support accepts this
//! server's access tokens for one resource, in the syntax of Dovecot 2.3 (an oauth2 passdb's
//! `args` file) or 2.4 (`oauth2_*` settings), and the key files it reads for local validation.
//! docs/DOVECOT.md says what Dovecot 2.3.19 accepts and why each setting is there.
//!
//! Two ways of checking a token:
//! - [`DovecotOauth2::local`]: Dovecot verifies the JWT's signature with the published ES256
//!   keys, written as files by [`export_keys`] (it cannot see revocations before expiry);
//! - [`DovecotOauth2::introspection`]: Dovecot posts every token to `/introspect` (RFC 7662) as a
//!   `[[resource_servers]]` entry, so revocations take effect at once.

use std::path::{Path, PathBuf};

use letterlock_jose::keyring::{KeyState, SigningKeyRing};
use letterlock_protocol::{Issuer, resource, scope};

use letterlock_store::Store;

use super::AdminError;
use crate::config::{Config, TokenTyp};
use crate::settings::seconds;

/// The Dovecot release whose configuration syntax is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DovecotVersion {
    /// Dovecot 2.3 (Debian 12): an oauth2 passdb with an `args` file.
    V2_3,
    /// Dovecot 2.4: `oauth2_*` settings in dovecot.conf, no passdb.
    V2_4,
}

/// Dovecot 2.3 answers a token from its auth cache without looking at its expiry again; the
/// CLI's integration tests show it.
const AUTH_CACHE_WARNING: &str = "\
# Keep auth_cache_size = 0 (the default) with this passdb: Dovecot 2.3 accepts a cached token
# past its expiry, for as long as auth_cache_ttl (an hour by default).";

/// Dovecot's oauth2 settings for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DovecotOauth2 {
    resource: String,
    settings: Vec<(&'static str, String)>,
    /// Local validation: the folder holding `<azp>/<alg>/<kid>` key files.
    keys_dir: Option<PathBuf>,
}

impl DovecotOauth2 {
    /// Local validation of `resource`'s tokens with the key files in `keys_dir`. The resource
    /// must be configured with `token_typ = "JWT"`: Dovecot 2.3 refuses RFC 9068's `at+jwt`.
    pub fn local(config: &Config, resource: &str, keys_dir: &Path) -> Result<Self, AdminError> {
        let configured = config
            .resources
            .iter()
            .find(|configured| resource::same(&configured.uri, resource))
            .ok_or_else(|| AdminError::UnknownResource(resource.to_owned()))?;
        // RFC 9068 §4: Dovecot checks that its `client_id` is in `aud`, byte for byte; tokens
        // carry the configured spelling, so that is what it is given.
        let resource = configured.uri.as_str();
        if configured.token_typ != TokenTyp::Jwt {
            return Err(AdminError::AtJwtResource(resource.to_owned()));
        }
        let issuer = Issuer::parse(config.issuer_text())?;
        Ok(Self {
            resource: resource.to_owned(),
            settings: vec![
                ("introspection_mode", "local".into()),
                ("issuers", issuer.as_str().into()),
                // RFC 9068 §4: the audience Dovecot checks is the resource it serves.
                ("client_id", resource.into()),
                ("scope", scope::MAIL.into()),
                ("username_attribute", "sub".into()),
                ("openid_configuration_url", issuer.openid_configuration_url()),
            ],
            keys_dir: Some(keys_dir.to_owned()),
        })
    }

    /// Introspection (RFC 7662) of every token, as the `[[resource_servers]]` entry that serves
    /// `resource`: its credentials go in the URL, which is how Dovecot sends HTTP Basic.
    pub fn introspection(config: &Config, resource: &str) -> Result<Self, AdminError> {
        let issuer = Issuer::parse(config.issuer_text())?;
        let caller = config
            .resource_servers
            .iter()
            .find(|caller| caller.resources.iter().any(|served| resource::same(served, resource)))
            .ok_or_else(|| AdminError::NoResourceServer(resource.to_owned()))?;
        let encode =
            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let endpoint = issuer.endpoint("/introspect");
        let (scheme, rest) = endpoint.split_once("://").ok_or(AdminError::IssuerNotUrl)?;
        let url =
            format!("{scheme}://{}:{}@{rest}", encode(&caller.client_id), encode(&caller.secret));
        Ok(Self {
            resource: resource.to_owned(),
            settings: vec![
                ("introspection_mode", "post".into()),
                ("introspection_url", url),
                ("force_introspection", "yes".into()),
                ("active_attribute", "active".into()),
                ("active_value", "true".into()),
                ("username_attribute", "sub".into()),
                ("scope", scope::MAIL.into()),
                ("openid_configuration_url", issuer.openid_configuration_url()),
            ],
            keys_dir: None,
        })
    }

    /// The settings in `version`'s syntax, with comments saying where they go; each line ends
    /// with a newline.
    pub fn render(&self, version: DovecotVersion) -> String {
        let how = if self.keys_dir.is_some() { "" } else { " --introspection" };
        let mut out = String::new();
        let mut line = |text: &str| {
            out.push_str(text);
            out.push('\n');
        };
        match version {
            DovecotVersion::V2_3 => {
                line(&format!(
                    "# Dovecot 2.3 oauth2 passdb for {}, from letterlock dovecot-config{how}",
                    self.resource
                ));
                line("# dovecot.conf:  auth_mechanisms = $auth_mechanisms oauthbearer xoauth2");
                line(
                    "#   passdb { driver = oauth2  mechanisms = oauthbearer xoauth2  args = /etc/dovecot/dovecot-oauth2.conf.ext }",
                );
                line(AUTH_CACHE_WARNING);
                for (name, value) in &self.settings {
                    line(&format!("{name} = {value}"));
                }
                if let Some(keys_dir) = &self.keys_dir {
                    line(&format!(
                        "local_validation_key_dict = fs:posix:prefix={}/",
                        keys_dir.display()
                    ));
                }
            }
            DovecotVersion::V2_4 => {
                line(&format!(
                    "# Dovecot 2.4 oauth2 settings for {}, from letterlock dovecot-config --dovecot 2.4{how}",
                    self.resource
                ));
                line("# Include it from dovecot.conf, after dovecot_config_version. In 2.4 the");
                line("# OAUTHBEARER and XOAUTH2 mechanisms need no oauth2 passdb, only:");
                line("#   auth_mechanisms {\n#     oauthbearer = yes\n#     xoauth2 = yes\n#   }");
                for (name, value) in &self.settings {
                    line(&format!("oauth2_{name} = {value}"));
                }
                if let Some(keys_dir) = &self.keys_dir {
                    // 2.4 pairs client_id with client_secret; local validation never sends it.
                    line("oauth2_client_secret = unused-by-local-validation");
                    line("oauth2_local_validation {");
                    line("  dict fs {\n    fs posix {");
                    line(&format!("      prefix = {}/", keys_dir.display()));
                    line("    }\n  }\n}");
                }
            }
        }
        out
    }
}

/// What [`export_keys`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedKeys {
    /// The folder the key files are in.
    pub directory: PathBuf,
    /// The key ids written, one file each.
    pub written: Vec<String>,
    /// Published keys not written, with their state: Dovecot verifies ES256 only, not EdDSA.
    pub skipped: Vec<(String, KeyState)>,
}

/// Loads the signing keys from `store` and writes them with [`export_keys`].
pub async fn export_stored_keys(
    store: &Store,
    config: &Config,
    now: i64,
    keys_dir: &Path,
) -> Result<ExportedKeys, AdminError> {
    let lifetime = seconds(config.lifetimes.access_token_seconds);
    let ring = crate::keys::load_signing_ring(store, lifetime).await?;
    export_keys(&ring, now, keys_dir)
}

/// Writes the published ES256 keys at `now` where Dovecot's fs dict looks them up
/// (`keys_dir/default/ES256/<kid>`, PEM), and removes the files of keys no longer published.
pub fn export_keys(
    ring: &SigningKeyRing,
    now: i64,
    keys_dir: &Path,
) -> Result<ExportedKeys, AdminError> {
    let io = |context: String| move |source| AdminError::Io { context, source };
    // The fs dict drops the "shared/" of Dovecot's lookup key shared/<azp>/<alg>/<kid>; our
    // tokens have no azp, so Dovecot uses "default".
    let directory = keys_dir.join("default").join("ES256");
    std::fs::create_dir_all(&directory)
        .map_err(io(format!("cannot create {}", directory.display())))?;
    let (mut written, mut skipped) = (Vec::new(), Vec::new());
    for (key, state) in ring.states(now).filter(|(_, state)| state.is_published()) {
        match letterlock_jose::key::p256_spki_pem(&key.key.public_jwk(None)) {
            Some(pem) => {
                let file = directory.join(&key.kid);
                std::fs::write(&file, pem)
                    .map_err(io(format!("cannot write {}", file.display())))?;
                written.push(key.kid.clone());
            }
            None => skipped.push((key.kid.clone(), state)),
        }
    }
    let listing = format!("cannot read {}", directory.display());
    for entry in std::fs::read_dir(&directory).map_err(io(listing.clone()))? {
        let entry = entry.map_err(io(listing.clone()))?;
        if !written.iter().any(|kid| entry.file_name() == kid.as_str()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io(format!("cannot remove {}", path.display())))?;
        }
    }
    Ok(ExportedKeys { directory, written, skipped })
}
