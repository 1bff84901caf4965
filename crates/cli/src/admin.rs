//! The operator's commands: `keys`, `user` and `dovecot-config`. Each parses its arguments,
//! calls `letterlock_server::admin`, which decides, and prints what it returns.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use letterlock_jose::keyring::KeyState;
use letterlock_server::admin::dovecot::{self, DovecotOauth2};
use letterlock_server::admin::keys::{self, KeyList, SealingState};
use letterlock_server::admin::users;
use letterlock_server::clock::{Clock as _, SystemClock};

use crate::ServerOptions;

/// `letterlock keys`.
#[derive(Subcommand)]
pub enum KeysCommand {
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

/// `letterlock user`.
#[derive(Subcommand)]
pub enum UserCommand {
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
    List {
        #[command(flatten)]
        server: ServerOptions,
        /// One JSON object per account, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Show an account: where it signs in from, its state, and its devices.
    Show {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List an account's devices (grants), with the ids `user revoke` takes.
    Devices {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
        /// One JSON object per device, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one device of an account (a lost phone), or all of them: their refresh tokens stop
    /// working and the front doors close their sessions.
    Revoke {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
        /// The device's id, as `user devices` lists it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        device: Option<String>,
        /// Every device of the account.
        #[arg(long)]
        all: bool,
    },
    /// Disable an account: it cannot sign in, its sessions end, and its devices are revoked.
    Disable {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
    },
    /// Enable a disabled account again (its revoked devices stay revoked).
    Enable {
        #[command(flatten)]
        server: ServerOptions,
        /// The mail address.
        address: String,
    },
}

/// `letterlock dovecot-config`.
#[derive(Args)]
pub struct DovecotConfigArgs {
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
}

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

impl From<DovecotVersion> for dovecot::DovecotVersion {
    fn from(version: DovecotVersion) -> Self {
        match version {
            DovecotVersion::V2_3 => Self::V2_3,
            DovecotVersion::V2_4 => Self::V2_4,
        }
    }
}

/// Prints Dovecot's settings; for local validation, first writes the key files.
pub async fn dovecot_config(args: DovecotConfigArgs) -> anyhow::Result<()> {
    let DovecotConfigArgs { server, resource, keys_dir, introspection, dovecot: version } = args;
    let config = server.load()?;
    let settings = if introspection {
        DovecotOauth2::introspection(&config, &resource)?
    } else {
        let settings = DovecotOauth2::local(&config, &resource, &keys_dir)?;
        let store = letterlock_server::open_store(&config).await?;
        let exported =
            dovecot::export_stored_keys(&store, &config, SystemClock.now(), &keys_dir).await?;
        for (kid, state) in &exported.skipped {
            eprintln!("skipped {kid} ({}): Dovecot verifies ES256, not EdDSA", state.name());
        }
        eprintln!("wrote {} key(s) to {}", exported.written.len(), exported.directory.display());
        settings
    };
    print!("{}", settings.render(version.into()));
    Ok(())
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

/// `letterlock user ...`.
pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        UserCommand::Add { server, address, password_stdin } => {
            let password = read_password(password_stdin)?;
            let store = letterlock_server::open_store(&server.load()?).await?;
            let user = users::add(&store, &address, &password, now).await?;
            println!("added {}", user.address);
        }
        UserCommand::Passwd { server, address, password_stdin, revoke_devices } => {
            let password = read_password(password_stdin)?;
            let store = letterlock_server::open_store(&server.load()?).await?;
            let revoked = users::passwd(&store, &address, &password, revoke_devices, now).await?;
            println!("password changed; {revoked} devices revoked");
        }
        UserCommand::List { server, json } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            for user in users::list(&store).await? {
                if json {
                    println!("{}", user_json(&user));
                } else {
                    println!(
                        "{}  {}  {}  created {}",
                        user.address,
                        user_state(&user),
                        user.source,
                        date(user.created_at)
                    );
                }
            }
        }
        UserCommand::Show { server, address, json } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let shown = users::show(&store, &address).await?;
            if json {
                let mut object = user_json(&shown.user);
                object["devices"] = shown.devices.iter().map(device_json).collect();
                println!("{object}");
            } else {
                let user = &shown.user;
                println!("{}", user.address);
                println!("  state        {}", user_state(user));
                println!("  signs in by  {}", user.source);
                println!(
                    "  password     {}",
                    if user.password_hash.is_empty() { "none here" } else { "local" }
                );
                println!("  created      {}", date(user.created_at));
                if user.checked_at > 0 {
                    println!("  last vouched {}", date(user.checked_at));
                }
                let live = shown.devices.iter().filter(|grant| grant.revoked_at.is_none()).count();
                println!("  devices      {live} live, {} revoked", shown.devices.len() - live);
            }
        }
        UserCommand::Devices { server, address, json } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            for grant in users::show(&store, &address).await?.devices {
                if json {
                    println!("{}", device_json(&grant));
                } else {
                    let state = grant
                        .revoked_at
                        .map_or_else(|| "live".to_owned(), |at| format!("revoked {}", date(at)));
                    println!(
                        "{}  {} ({})  {state}  first {}  last {}",
                        grant.id,
                        grant.device_name,
                        grant.client_name,
                        date(grant.created_at),
                        date(grant.last_used_at)
                    );
                }
            }
        }
        UserCommand::Revoke { server, address, device, all } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let which = match (&device, all) {
                (Some(device), false) => users::Revoke::Device(device),
                _ => users::Revoke::All,
            };
            let revoked = users::revoke(&store, &address, which, now).await?;
            println!("{revoked} devices revoked");
        }
        UserCommand::Enable { server, address } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let user = users::enable(&store, &address).await?;
            println!("enabled {}", user.address);
        }
        UserCommand::Disable { server, address } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let disabled = users::disable(&store, &address, now).await?;
            println!("disabled {}; {} devices revoked", disabled.address, disabled.revoked);
        }
    }
    Ok(())
}

/// A date as a person reads it (UTC).
fn date(unix: i64) -> String {
    letterlock_server::pages::date(unix)
}

fn user_state(user: &letterlock_store::UserRecord) -> &'static str {
    if user.disabled { "disabled" } else { "active" }
}

/// An account as JSON: dates as RFC 3339 text beside nothing secret (no password hash).
fn user_json(user: &letterlock_store::UserRecord) -> serde_json::Value {
    serde_json::json!({
        "address": user.address,
        "state": user_state(user),
        "source": user.source,
        "local_password": !user.password_hash.is_empty(),
        "created": rfc3339(user.created_at),
        "last_vouched": (user.checked_at > 0).then(|| rfc3339(user.checked_at)),
    })
}

/// A device (grant) as JSON.
fn device_json(grant: &letterlock_store::GrantRecord) -> serde_json::Value {
    serde_json::json!({
        "id": grant.id,
        "device": grant.device_name,
        "application": grant.client_name,
        "vendor": grant.vendor,
        "scope": grant.scope.to_string(),
        "resources": grant.resources,
        "first_used": rfc3339(grant.created_at),
        "last_used": rfc3339(grant.last_used_at),
        "last_address": grant.last_address,
        "revoked": grant.revoked_at.map(rfc3339),
    })
}

fn rfc3339(unix: i64) -> String {
    letterlock_server::pages::rfc3339(unix)
}

/// `letterlock keys ...`.
pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        KeysCommand::List(server) => {
            let config = server.load()?;
            let store = letterlock_server::open_store(&config).await?;
            print_keys(&keys::list(&store, &config, now).await?)?;
        }
        KeysCommand::Rotate { server, sealing: true, .. } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let kid = keys::rotate_sealing(&store, now).await?;
            println!(
                "new sealing key {kid}: seals new client ids now; older ids keep working until their key is retired"
            );
        }
        KeysCommand::Rotate { server, sealing: false, algorithm, now: immediately } => {
            let config = server.load()?;
            let store = letterlock_server::open_store(&config).await?;
            let key = keys::rotate_signing(&store, &config, algorithm.as_deref(), immediately, now)
                .await?;
            println!(
                "new signing key {} ({}): published now, signs from {}",
                key.kid, key.algorithm, key.activates_at
            );
        }
        KeysCommand::Retire { server, kid } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let retired = keys::retire(&store, &kid, now).await?;
            match retired.fresh {
                Some(fresh) => {
                    println!("retired {kid}; made {fresh} so that registration keeps working");
                }
                None => println!(
                    "retired {kid}: client ids sealed under it are refused from the next key reload"
                ),
            }
            println!("{} devices of those client ids revoked", retired.revoked);
        }
    }
    Ok(())
}

fn print_keys(list: &KeyList) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "signing keys:")?;
    for key in &list.signing {
        let detail = match key.state {
            KeyState::Pending => format!("signs from {}", key.activates_at),
            KeyState::Retiring { unpublished_at } => format!("published until {unpublished_at}"),
            KeyState::Active | KeyState::Expired => String::new(),
        };
        writeln!(
            out,
            "  {}  {:<5}  {:<8}  created {}  {detail}",
            key.kid,
            key.algorithm,
            key.state.name(),
            key.created_at
        )?;
    }
    writeln!(out, "sealing keys (client ids):")?;
    for key in &list.sealing {
        let state = match key.state {
            SealingState::Retired(at) => format!("retired {at}"),
            SealingState::Sealing => "sealing".to_owned(),
            SealingState::OpeningOnly => "opening only".to_owned(),
        };
        writeln!(out, "  {:<8}  {state:<16}  created {}", key.kid, key.created_at)?;
    }
    Ok(())
}
