//! The configuration file: one TOML file describes an installation, the authorization server's
//! sections and the front doors' beside them. Unknown keys are errors. Every key is documented in
//! `docs/CONFIGURATION.md`, whose example a test below parses.
//!
//! The binary owns the file so that neither library knows the other: [`ConfigFile::split`] hands
//! the authorization server its [`Config`] and the front doors their [`FrontDoors`].
//! `letterlock gateway` reads the same file as a [`GatewayFile`]: `issuer` and the door sections,
//! leaving the authorization server's keys alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use letterlock_gateway::FrontDoors;
use letterlock_gateway::config::{DavConfig, DoorConfig, GatewayConfig};
use letterlock_server::config::{
    Config, DEFAULT_ISSUER, DpopConfig, KeysConfig, LifetimesConfig, LimitsConfig,
    PublicClientConfig, RegistrationConfig, ResourceConfig, ResourceServerConfig, SignInConfig,
    TlsConfig, VendorConfig, WebClientConfig,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The whole file: every top-level key. The authorization server's keys are listed in the order
/// of its `Config` (so the parser's "expected one of" reads as before), then the front doors'.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The issuer identifier (`https://...`; `http://` only on a loopback host).
    pub issuer: Option<String>,
    /// The address to listen on.
    pub listen: Option<SocketAddr>,
    /// Where the SQLite database and other state live.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://path` or `postgres://user@host/db`.
    pub database: Option<String>,
    /// Published as `service_documentation`.
    pub service_documentation: Option<String>,
    /// `[tls]`.
    pub tls: Option<TlsConfig>,
    /// `[registration]`.
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// `[[vendors]]`.
    #[serde(default)]
    pub vendors: Vec<VendorConfig>,
    /// `[[public_clients]]`.
    #[serde(default)]
    pub public_clients: Vec<PublicClientConfig>,
    /// `[[web_clients]]`.
    #[serde(default)]
    pub web_clients: Vec<WebClientConfig>,
    /// `[[resources]]`.
    #[serde(default)]
    pub resources: Vec<ResourceConfig>,
    /// `[keys]`.
    #[serde(default)]
    pub keys: KeysConfig,
    /// `[lifetimes]`.
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[sign_in]`.
    #[serde(default)]
    pub sign_in: SignInConfig,
    /// `[[resource_servers]]`.
    #[serde(default)]
    pub resource_servers: Vec<ResourceServerConfig>,
    /// `[dpop]`.
    #[serde(default)]
    pub dpop: DpopConfig,
    /// `trusted_proxies`.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// `[gateway]`: what the front doors share.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// `[[imap]]`.
    #[serde(default)]
    pub imap: Vec<DoorConfig>,
    /// `[[smtp]]`.
    #[serde(default)]
    pub smtp: Vec<DoorConfig>,
    /// `[[pop3]]`.
    #[serde(default)]
    pub pop3: Vec<DoorConfig>,
    /// `[[dav]]`.
    #[serde(default)]
    pub dav: Vec<DavConfig>,
}

/// Values from the command line that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--issuer`.
    pub issuer: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
}

/// Reads a file; `None` gives the embedded defaults (an empty file).
fn read(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    std::fs::read_to_string(path)
        .map(Some)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// A configuration file that does not parse: its name and the parser's line and key. `main`
/// exits with sysexits' `EX_CONFIG` (78) for it.
#[derive(Debug)]
pub struct FileError(String);

impl std::fmt::Display for FileError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for FileError {}

/// Parses TOML into `T`; errors carry the file's name and the parser's line and key.
fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    toml::from_str(text)
        .map_err(|error| anyhow::Error::new(FileError(format!("{}: {error}", path.display()))))
}

impl ConfigFile {
    /// Reads a file; `None` gives the embedded defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match (path, read(path)?) {
            (Some(path), Some(text)) => parse(path, &text),
            _ => Ok(Self::default()),
        }
    }

    /// Parses TOML text.
    #[cfg(test)]
    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// Applies command-line overrides.
    pub fn apply(&mut self, overrides: Overrides) {
        self.listen = overrides.listen.or(self.listen);
        self.issuer = overrides.issuer.or(self.issuer.take());
        self.data_dir = overrides.data_dir.or(self.data_dir.take());
        self.database = overrides.database.or(self.database.take());
    }

    /// The authorization server's sections and the front doors'. The struct literals name every
    /// field, so a key added to either library's sections fails to compile here until the file
    /// has it too.
    pub fn split(self) -> (Config, FrontDoors) {
        let Self {
            issuer,
            listen,
            data_dir,
            database,
            service_documentation,
            tls,
            registration,
            vendors,
            public_clients,
            web_clients,
            resources,
            keys,
            lifetimes,
            limits,
            sign_in,
            resource_servers,
            dpop,
            trusted_proxies,
            gateway,
            imap,
            smtp,
            pop3,
            dav,
        } = self;
        let config = Config {
            issuer,
            listen,
            data_dir,
            database,
            service_documentation,
            tls,
            registration,
            vendors,
            public_clients,
            web_clients,
            resources,
            keys,
            lifetimes,
            limits,
            sign_in,
            resource_servers,
            dpop,
            trusted_proxies,
        };
        (config, FrontDoors { gateway, imap, smtp, pop3, dav })
    }
}

/// The file as `letterlock gateway` reads it: the same file as `letterlock serve`'s, of which it
/// uses only `issuer` and the door sections. The authorization server's keys are accepted and
/// not looked at (their meaning is the server's); any other key is an error, as for `serve`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "the authorization server's keys are read only to be skipped")]
pub struct GatewayFile {
    /// The issuer the doors trust: its metadata, keys and revocation feed are read over HTTP(S).
    pub issuer: Option<String>,
    /// `[gateway]`.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// `[[imap]]`.
    #[serde(default)]
    pub imap: Vec<DoorConfig>,
    /// `[[smtp]]`.
    #[serde(default)]
    pub smtp: Vec<DoorConfig>,
    /// `[[pop3]]`.
    #[serde(default)]
    pub pop3: Vec<DoorConfig>,
    /// `[[dav]]`.
    #[serde(default)]
    pub dav: Vec<DavConfig>,
    // The authorization server's keys, skipped (see `ConfigFile` for what they mean).
    #[serde(default)]
    listen: Option<IgnoredAny>,
    #[serde(default)]
    data_dir: Option<IgnoredAny>,
    #[serde(default)]
    database: Option<IgnoredAny>,
    #[serde(default)]
    service_documentation: Option<IgnoredAny>,
    #[serde(default)]
    tls: Option<IgnoredAny>,
    #[serde(default)]
    registration: Option<IgnoredAny>,
    #[serde(default)]
    vendors: Option<IgnoredAny>,
    #[serde(default)]
    public_clients: Option<IgnoredAny>,
    #[serde(default)]
    web_clients: Option<IgnoredAny>,
    #[serde(default)]
    resources: Option<IgnoredAny>,
    #[serde(default)]
    keys: Option<IgnoredAny>,
    #[serde(default)]
    lifetimes: Option<IgnoredAny>,
    #[serde(default)]
    limits: Option<IgnoredAny>,
    #[serde(default)]
    sign_in: Option<IgnoredAny>,
    #[serde(default)]
    resource_servers: Option<IgnoredAny>,
    #[serde(default)]
    dpop: Option<IgnoredAny>,
    #[serde(default)]
    trusted_proxies: Option<IgnoredAny>,
}

impl GatewayFile {
    /// Reads a file; `None` gives the embedded defaults (no door).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match (path, read(path)?) {
            (Some(path), Some(text)) => parse(path, &text),
            _ => Ok(Self::default()),
        }
    }

    /// Parses TOML text.
    #[cfg(test)]
    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The issuer text: `--issuer`, else the file's, else the default.
    pub fn issuer_text(&self) -> &str {
        self.issuer.as_deref().unwrap_or(DEFAULT_ISSUER)
    }

    /// The door sections.
    pub fn front_doors(self) -> FrontDoors {
        let Self { gateway, imap, smtp, pop3, dav, .. } = self;
        FrontDoors { gateway, imap, smtp, pop3, dav }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-file example: the first TOML block that sets `issuer` (the identity sources'
    /// sections have small examples of their own before it).
    /// The whole-file example: the first TOML block under "## A complete example" (the
    /// sections' own small examples come before it).
    fn documented_example() -> &'static str {
        let doc = include_str!("../../../docs/CONFIGURATION.md");
        let (_, example) = doc.split_once("\n## A complete example").unwrap();
        example.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap()
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let (config, doors) = ConfigFile::parse("").unwrap().split();
        assert_eq!(config.issuer_text(), DEFAULT_ISSUER);
        assert!(doors.is_empty());
        assert!(GatewayFile::parse("").unwrap().front_doors().is_empty());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = ConfigFile::parse("isser = \"https://x\"").unwrap_err();
        assert!(error.contains("unknown field") && error.contains("isser"), "{error}");
        let error = ConfigFile::parse("[registration]\nmode = \"sometimes\"").unwrap_err();
        assert!(error.contains("unknown variant"), "{error}");
        let error = ConfigFile::parse("[[imap]]\nlisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(error.contains("unknown field") && error.contains("lisen"), "{error}");
        let error = GatewayFile::parse("isser = \"https://x\"").unwrap_err();
        assert!(error.contains("unknown field") && error.contains("isser"), "{error}");
    }

    #[test]
    fn the_documented_example_parses() {
        let (config, doors) = ConfigFile::parse(documented_example()).unwrap().split();
        assert_eq!(config.issuer_text(), "https://auth.example.com");
        assert_eq!(config.resources.len(), 3);
        assert_eq!((doors.imap.len(), doors.smtp.len(), doors.pop3.len()), (1, 1, 0));
        for (protocol, door) in doors.doors() {
            door.validate(protocol.section()).unwrap();
        }
        assert_eq!(doors.dav.len(), 1);
        doors.dav[0].validate().unwrap();
        assert_eq!(doors.dav[0].paths.len(), 2);
    }

    /// `letterlock gateway` reads the same file and finds the same doors and issuer.
    #[test]
    fn the_gateway_reads_the_documented_example_too() {
        let file = GatewayFile::parse(documented_example()).unwrap();
        assert_eq!(file.issuer_text(), "https://auth.example.com");
        let (_, served) = ConfigFile::parse(documented_example()).unwrap().split();
        let doors = file.front_doors();
        assert_eq!(format!("{doors:?}"), format!("{served:?}"));
    }

    #[test]
    fn overrides_win() {
        let mut file =
            ConfigFile::parse("issuer = \"https://a.example\"\nlisten = \"127.0.0.1:1\"").unwrap();
        file.apply(Overrides {
            issuer: Some("https://b.example".into()),
            database: Some("postgres://x/y".into()),
            ..Overrides::default()
        });
        let (config, _) = file.split();
        assert_eq!(config.issuer_text(), "https://b.example");
        assert_eq!(config.listen_address().port(), 1);
        assert_eq!(config.database_url(), "postgres://x/y");
    }
}
