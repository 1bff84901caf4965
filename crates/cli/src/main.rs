//! `letterlock`: the authorization server and its tools.
//!
//! - `letterlock serve`: run the server (embedded defaults without `--config`), with the front
//!   doors its configuration names;
//! - `letterlock gateway`: run only the IMAP, SMTP and POP3 front doors, for a remote issuer;
//! - `letterlock keys list|rotate|retire`: the server's signing and sealing keys;
//! - `letterlock vendor keygen|sign`: for client vendors, a key pair and software statements;
//! - `letterlock login|token|accounts|logout`: the client, for mail programs (see `client`).
#![forbid(unsafe_code)]

mod client;
mod file;
mod gateway;
mod serve;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use aws_lc_rs::rand::SystemRandom;
use clap::{Args, Parser, Subcommand};
use letterlock_jose::keyring::KeyState;
use letterlock_jose::statement;
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_server::accounts;
use letterlock_server::clock::{Clock as _, SystemClock};
use letterlock_server::config::Config;
use serde_json::{Map, Value, json};

#[derive(Parser)]
#[command(
    name = "letterlock",
    version,
    about = "OAuth for every open mail client and every mail server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// The provider's commands: the server, the front doors and their tools.
#[derive(Subcommand)]
enum ServerCommand {
    /// Run the authorization server, and the IMAP, SMTP, POP3 and DAV front doors configured
    /// with it.
    Serve(ServerOptions),
    /// Run only the front doors (`[[imap]]`, `[[smtp]]`, `[[pop3]]`, `[[dav]]`), for a remote issuer: its
    /// metadata, keys and revocation feed are read over HTTPS (`[gateway]` has the feed's
    /// credentials).
    Gateway(ServerOptions),
    /// Manage the server's signing and sealing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage accounts (the user name is the mail address).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print Dovecot's oauth2 configuration (2.3's passdb file, or 2.4's settings) that validates
    /// this server's tokens for one resource locally, and write the signing keys where it reads
    /// them. Run it again after `keys rotate` (for example from cron): it adds new keys and
    /// removes unpublished ones.
    DovecotConfig {
        #[command(flatten)]
        server: ServerOptions,
        /// The resource Dovecot serves, as configured in `[[resources]]` with `token_typ = "JWT"`.
        #[arg(long)]
        resource: String,
        /// Where to write the public keys (the dict's prefix).
        #[arg(long, default_value = "/etc/dovecot/oauth2-keys")]
        keys_dir: PathBuf,
        /// Ask this server about every token (RFC 7662) instead of checking it locally: a request
        /// per login, but revoked devices are refused at once. Uses the `[[resource_servers]]`
        /// entry that serves the resource.
        #[arg(long)]
        introspection: bool,
        /// The Dovecot release to write for.
        #[arg(long, value_enum, default_value = "2.3")]
        dovecot: DovecotVersion,
    },
    /// Tools for client vendors: make a key pair and sign software statements.
    Vendor {
        #[command(subcommand)]
        command: VendorCommand,
    },
}

/// Where the server's configuration and state are.
#[derive(Args, Clone)]
struct ServerOptions {
    /// The configuration file (TOML). Without it, the embedded defaults apply.
    #[arg(long, short, env = "LETTERLOCK_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The issuer identifier (default http://127.0.0.1:8080).
    #[arg(long)]
    issuer: Option<String>,
    /// The data folder (default ./letterlock-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "LETTERLOCK_DATABASE")]
    database: Option<String>,
}

impl ServerOptions {
    /// The whole file with the command line's overrides.
    fn file(&self) -> anyhow::Result<file::ConfigFile> {
        let mut file = file::ConfigFile::load(self.config.as_deref())?;
        file.apply(file::Overrides {
            listen: self.listen,
            issuer: self.issuer.clone(),
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
        });
        Ok(file)
    }

    /// The authorization server's sections, for the commands that work on its state.
    fn load(&self) -> anyhow::Result<Config> {
        Ok(self.file()?.split().0)
    }

    /// What `letterlock gateway` reads: `issuer` and the door sections.
    fn gateway_file(&self) -> anyhow::Result<file::GatewayFile> {
        let mut file = file::GatewayFile::load(self.config.as_deref())?;
        file.issuer = self.issuer.clone().or(file.issuer);
        Ok(file)
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the keys and their states.
    List(ServerOptions),
    /// Add a new signing key (published now, signing after the activation delay), or with
    /// --sealing a new sealing key for client ids (sealing at once).
    Rotate {
        #[command(flatten)]
        server: ServerOptions,
        /// Rotate the sealing key instead of the signing key.
        #[arg(long)]
        sealing: bool,
        /// The algorithm of the new signing key: ES256 or EdDSA (default: the configured one).
        #[arg(long)]
        algorithm: Option<String>,
        /// Sign with the new key at once (emergency: verifiers that cached the old JWKS will
        /// refuse its tokens until they refetch).
        #[arg(long)]
        now: bool,
    },
    /// Retire a sealing key: the client ids it sealed stop working.
    Retire {
        #[command(flatten)]
        server: ServerOptions,
        /// The sealing key id (the part after "ll1." in a client id).
        kid: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account.
    Add {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address, which is also the user name.
        address: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an account's password; its sessions end.
    Passwd {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Also revoke every device (grant) of the account.
        #[arg(long)]
        revoke_devices: bool,
    },
    /// List accounts.
    List(ServerOptions),
    /// Disable an account: it cannot sign in, its sessions end, and its devices are revoked.
    Disable {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
    },
}

#[derive(Subcommand)]
enum VendorCommand {
    /// Make a vendor key pair: the private key goes to --out, the public JWK Set to stdout for
    /// providers to put in their configuration.
    Keygen {
        /// Where to write the private key (PKCS#8 PEM, readable by the owner only).
        #[arg(long)]
        out: PathBuf,
        /// ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        algorithm: String,
    },
    /// Sign a software statement (RFC 7591 §2.3) and print it.
    Sign {
        /// The vendor's private key (from `vendor keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The vendor's identifier, the statement's `iss` (providers configure the same value).
        #[arg(long)]
        issuer: String,
        /// The software's identifier, the same for every installation and version.
        #[arg(long)]
        software_id: String,
        /// The software's name as users should see it.
        #[arg(long)]
        client_name: String,
        /// The software's version.
        #[arg(long)]
        software_version: Option<String>,
        /// The software's web site (https).
        #[arg(long)]
        client_uri: Option<String>,
        /// The software's logo (https).
        #[arg(long)]
        logo_uri: Option<String>,
        /// Redirect URIs the software uses; repeat for several. Required: a statement vouches
        /// only for registrations with exactly these (a copy of it cannot vouch for another
        /// program's redirect).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Days until the statement expires (0: never).
        #[arg(long, default_value_t = 365)]
        expires_in_days: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LETTERLOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("letterlock: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = match cli.command {
        Command::Client(command) => return runtime.block_on(client::run(command)),
        Command::Server(command) => command,
    };
    match runtime.block_on(dispatch(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("letterlock: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Serve(options) => {
            serve::run(options.file()?, letterlock_server::listen::shutdown_signal()).await
        }
        ServerCommand::Gateway(options) => {
            gateway::run(options.gateway_file()?, letterlock_server::listen::shutdown_signal())
                .await
        }
        ServerCommand::Keys { command } => keys(command).await,
        ServerCommand::Vendor { command } => vendor(command),
        ServerCommand::User { command } => user(command).await,
        ServerCommand::DovecotConfig { server, resource, keys_dir, introspection, dovecot } => {
            let settings = if introspection {
                dovecot_introspection_config(server, &resource)?
            } else {
                dovecot_config(server, &resource, &keys_dir).await?
            };
            settings.print(dovecot);
            Ok(())
        }
    }
}

/// Dovecot's oauth2 settings for one resource, printed in the syntax of the chosen version.
/// See docs/DOVECOT.md for what Dovecot 2.3.19 accepts and why each setting is there.
struct DovecotOauth2 {
    resource: String,
    settings: Vec<(&'static str, String)>,
    /// Local validation: the folder holding `<azp>/<alg>/<kid>` key files.
    keys_dir: Option<PathBuf>,
}

impl DovecotOauth2 {
    fn print(&self, version: DovecotVersion) {
        let how = if self.keys_dir.is_some() { "" } else { " --introspection" };
        match version {
            DovecotVersion::V2_3 => {
                println!(
                    "# Dovecot 2.3 oauth2 passdb for {}, from letterlock dovecot-config{how}",
                    self.resource
                );
                println!("# dovecot.conf:  auth_mechanisms = $auth_mechanisms oauthbearer xoauth2");
                println!(
                    "#   passdb {{ driver = oauth2  mechanisms = oauthbearer xoauth2  args = /etc/dovecot/dovecot-oauth2.conf.ext }}"
                );
                println!("{AUTH_CACHE_WARNING}");
                for (name, value) in &self.settings {
                    println!("{name} = {value}");
                }
                if let Some(keys_dir) = &self.keys_dir {
                    println!("local_validation_key_dict = fs:posix:prefix={}/", keys_dir.display());
                }
            }
            DovecotVersion::V2_4 => {
                println!(
                    "# Dovecot 2.4 oauth2 settings for {}, from letterlock dovecot-config --dovecot 2.4{how}",
                    self.resource
                );
                println!(
                    "# Include it from dovecot.conf, after dovecot_config_version. In 2.4 the"
                );
                println!("# OAUTHBEARER and XOAUTH2 mechanisms need no oauth2 passdb, only:");
                println!(
                    "#   auth_mechanisms {{\n#     oauthbearer = yes\n#     xoauth2 = yes\n#   }}"
                );
                for (name, value) in &self.settings {
                    println!("oauth2_{name} = {value}");
                }
                if let Some(keys_dir) = &self.keys_dir {
                    // 2.4 pairs client_id with client_secret; local validation never sends it.
                    println!("oauth2_client_secret = unused-by-local-validation");
                    println!("oauth2_local_validation {{");
                    println!("  dict fs {{\n    fs posix {{");
                    println!("      prefix = {}/", keys_dir.display());
                    println!("    }}\n  }}\n}}");
                }
            }
        }
    }
}

/// Dovecot 2.3 answers a token from its auth cache without looking at its expiry again; the
/// integration tests show it.
const AUTH_CACHE_WARNING: &str = "\
# Keep auth_cache_size = 0 (the default) with this passdb: Dovecot 2.3 accepts a cached token
# past its expiry, for as long as auth_cache_ttl (an hour by default).";

/// The Dovecot release whose configuration syntax `dovecot-config` prints.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DovecotVersion {
    /// Dovecot 2.3 (Debian 12): an oauth2 passdb with an `args` file.
    #[value(name = "2.3")]
    V2_3,
    /// Dovecot 2.4: `oauth2_*` settings in dovecot.conf, no passdb.
    #[value(name = "2.4")]
    V2_4,
}

/// Local validation: writes the published ES256 keys where Dovecot's fs dict looks them up.
async fn dovecot_config(
    server: ServerOptions,
    resource: &str,
    keys_dir: &std::path::Path,
) -> anyhow::Result<DovecotOauth2> {
    let config = server.load()?;
    let configured = config
        .resources
        .iter()
        .find(|configured| configured.uri == resource)
        .with_context(|| format!("{resource} is not in [[resources]]"))?;
    if configured.token_typ != letterlock_server::config::TokenTyp::Jwt {
        bail!(
            "Dovecot 2.3 refuses typ at+jwt: set token_typ = \"JWT\" for {resource} in [[resources]]"
        );
    }
    let issuer = letterlock_protocol::Issuer::parse(config.issuer_text())?;
    let store = letterlock_server::open_store(&config).await?;
    let lifetime = i64::try_from(config.lifetimes.access_token_seconds).unwrap_or(i64::MAX);
    let ring = letterlock_server::keys::load_signing_ring(&store, lifetime).await?;
    // The fs dict drops the "shared/" of Dovecot's lookup key shared/<azp>/<alg>/<kid>; our
    // tokens have no azp, so Dovecot uses "default".
    let directory = keys_dir.join("default").join("ES256");
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let mut published = Vec::new();
    for (key, state) in ring.states(SystemClock.now()).filter(|(_, state)| state.is_published()) {
        match letterlock_jose::key::p256_spki_pem(&key.key.public_jwk(None)) {
            Some(pem) => {
                std::fs::write(directory.join(&key.kid), pem)?;
                published.push(key.kid.clone());
            }
            None => eprintln!(
                "skipped {} ({}): Dovecot verifies ES256, not EdDSA",
                key.kid,
                state.name()
            ),
        }
    }
    for entry in std::fs::read_dir(&directory)? {
        let entry = entry?;
        if !published.iter().any(|kid| entry.file_name() == kid.as_str()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    eprintln!("wrote {} key(s) to {}", published.len(), directory.display());
    Ok(DovecotOauth2 {
        resource: resource.to_owned(),
        settings: vec![
            ("introspection_mode", "local".into()),
            ("issuers", issuer.as_str().into()),
            ("client_id", resource.into()),
            ("scope", letterlock_protocol::scope::MAIL.into()),
            ("username_attribute", "sub".into()),
            ("openid_configuration_url", issuer.openid_configuration_url()),
        ],
        keys_dir: Some(keys_dir.to_owned()),
    })
}

/// The introspection variant: Dovecot posts each token to `/introspect` as a resource server.
fn dovecot_introspection_config(
    server: ServerOptions,
    resource: &str,
) -> anyhow::Result<DovecotOauth2> {
    let config = server.load()?;
    let issuer = letterlock_protocol::Issuer::parse(config.issuer_text())?;
    let caller = config
        .resource_servers
        .iter()
        .find(|caller| caller.resources.iter().any(|served| served == resource))
        .with_context(|| format!("no [[resource_servers]] entry serves {resource}"))?;
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let endpoint = issuer.endpoint("/introspect");
    let (scheme, rest) = endpoint.split_once("://").context("the issuer is not a URL")?;
    let url = format!("{scheme}://{}:{}@{rest}", encode(&caller.client_id), encode(&caller.secret));
    Ok(DovecotOauth2 {
        resource: resource.to_owned(),
        settings: vec![
            ("introspection_mode", "post".into()),
            ("introspection_url", url),
            ("force_introspection", "yes".into()),
            ("active_attribute", "active".into()),
            ("active_value", "true".into()),
            ("username_attribute", "sub".into()),
            ("scope", letterlock_protocol::scope::MAIL.into()),
            ("openid_configuration_url", issuer.openid_configuration_url()),
        ],
        keys_dir: None,
    })
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        UserCommand::Add { server, address, password_stdin } => {
            let password = read_password(password_stdin)?;
            let store = letterlock_server::open_store(&server.load()?).await?;
            let user = accounts::add_user(&store, &address, &password, now).await?;
            println!("added {}", user.address);
        }
        UserCommand::Passwd { server, address, password_stdin, revoke_devices } => {
            let password = read_password(password_stdin)?;
            let store = letterlock_server::open_store(&server.load()?).await?;
            let revoked =
                accounts::change_password(&store, &address, &password, revoke_devices, now).await?;
            println!("password changed; {revoked} devices revoked");
        }
        UserCommand::List(server) => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            for user in store.users().await? {
                let state = if user.disabled { "disabled" } else { "active" };
                println!("{}  {state}  created {}", user.address, user.created_at);
            }
        }
        UserCommand::Disable { server, address } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let address = accounts::normalize_address(&address)?;
            let user = store
                .user_by_address(&address)
                .await?
                .with_context(|| format!("no account for {address}"))?;
            store.set_disabled(&user.id, true).await?;
            let revoked = store.revoke_grants_of_user(&user.id, now).await?;
            println!("disabled {address}; {revoked} devices revoked");
        }
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        KeysCommand::List(options) => {
            let config = options.load()?;
            let store = letterlock_server::open_store(&config).await?;
            let lifetime = i64::try_from(config.lifetimes.access_token_seconds).unwrap_or(i64::MAX);
            let ring = letterlock_server::keys::load_signing_ring(&store, lifetime).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "signing keys:")?;
            for (key, state) in ring.states(now) {
                let detail = match state {
                    KeyState::Pending => format!("signs from {}", key.activates_at),
                    KeyState::Retiring { unpublished_at } => {
                        format!("published until {unpublished_at}")
                    }
                    KeyState::Active | KeyState::Expired => String::new(),
                };
                writeln!(
                    out,
                    "  {}  {:<5}  {:<8}  created {}  {detail}",
                    key.kid,
                    key.key.algorithm(),
                    state.name(),
                    key.created_at
                )?;
            }
            writeln!(out, "sealing keys (client ids):")?;
            let sealing = store.sealing_keys().await?;
            let current = sealing
                .iter()
                .rev()
                .find(|key| key.retired_at.is_none())
                .map(|key| key.kid.clone());
            for key in &sealing {
                let state = match key.retired_at {
                    Some(at) => format!("retired {at}"),
                    None if Some(&key.kid) == current.as_ref() => "sealing".to_owned(),
                    None => "opening only".to_owned(),
                };
                writeln!(out, "  {:<8}  {state:<16}  created {}", key.kid, key.created_at)?;
            }
            Ok(())
        }
        KeysCommand::Rotate { server, sealing, algorithm, now: immediately } => {
            let config = server.load()?;
            let store = letterlock_server::open_store(&config).await?;
            if sealing {
                let kid = letterlock_server::keys::add_sealing_key(&store, now).await?;
                println!(
                    "new sealing key {kid}: seals new client ids now; older ids keep working until their key is retired"
                );
                return Ok(());
            }
            let name = algorithm.unwrap_or(config.keys.algorithm.clone());
            let algorithm = Algorithm::parse(&name)
                .with_context(|| format!("unknown algorithm {name}; use ES256 or EdDSA"))?;
            let delay = i64::try_from(config.keys.activation_delay_seconds).unwrap_or(i64::MAX);
            let activates_at = if immediately { now } else { now.saturating_add(delay) };
            let kid =
                letterlock_server::keys::add_signing_key(&store, algorithm, now, activates_at)
                    .await?;
            println!(
                "new signing key {kid} ({algorithm}): published now, signs from {activates_at}"
            );
            Ok(())
        }
        KeysCommand::Retire { server, kid } => {
            let config = server.load()?;
            let store = letterlock_server::open_store(&config).await?;
            let Some(revoked) =
                letterlock_server::keys::retire_sealing_key(&store, &kid, now).await?
            else {
                bail!("no sealing key {kid} that is not retired already");
            };
            if store.sealing_keys().await?.iter().all(|key| key.retired_at.is_some()) {
                let fresh = letterlock_server::keys::add_sealing_key(&store, now).await?;
                println!("retired {kid}; made {fresh} so that registration keeps working");
            } else {
                println!(
                    "retired {kid}: client ids sealed under it are refused from the next key reload"
                );
            }
            println!("{revoked} devices of those client ids revoked");
            Ok(())
        }
    }
}

fn vendor(command: VendorCommand) -> anyhow::Result<()> {
    let random = SystemRandom::new();
    match command {
        VendorCommand::Keygen { out, algorithm } => {
            let algorithm = Algorithm::parse(&algorithm)
                .with_context(|| format!("unknown algorithm {algorithm}; use ES256 or EdDSA"))?;
            let key = PrivateKey::generate(algorithm, &random)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&out).with_context(|| {
                format!("cannot create {} (it must not exist yet)", out.display())
            })?;
            file.write_all(key.to_pem().as_bytes())?;
            let public = key.public_jwk(None);
            let jwk = key.public_jwk(Some(statement::key_id(&public))).to_json();
            println!("{}", serde_json::to_string_pretty(&json!({ "keys": [jwk] }))?);
            eprintln!("private key written to {}; give providers the JWK Set above", out.display());
            Ok(())
        }
        VendorCommand::Sign {
            key,
            issuer,
            software_id,
            client_name,
            software_version,
            client_uri,
            logo_uri,
            redirect_uris,
            expires_in_days,
        } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let key = PrivateKey::from_pem(&pem)
                .context("the key is not a PKCS#8 ES256 or EdDSA private key")?;
            let now = SystemClock.now();
            let mut claims = Map::new();
            claims.insert("iss".into(), issuer.into());
            claims.insert("iat".into(), now.into());
            if expires_in_days > 0 {
                claims.insert("exp".into(), (now + i64::from(expires_in_days) * 86_400).into());
            }
            claims.insert("software_id".into(), software_id.into());
            claims.insert("client_name".into(), client_name.into());
            for (name, value) in [
                ("software_version", software_version),
                ("client_uri", client_uri),
                ("logo_uri", logo_uri),
            ] {
                if let Some(value) = value {
                    claims.insert(name.into(), value.into());
                }
            }
            claims.insert("redirect_uris".into(), Value::from(redirect_uris));
            println!("{}", statement::sign(&key, &claims, &random)?);
            Ok(())
        }
    }
}
