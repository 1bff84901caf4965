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
    List(ServerOptions),
    /// Disable an account: it cannot sign in, its sessions end, and its devices are revoked.
    Disable {
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
        UserCommand::List(server) => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            for user in users::list(&store).await? {
                let state = if user.disabled { "disabled" } else { "active" };
                println!("{}  {state}  created {}", user.address, user.created_at);
            }
        }
        UserCommand::Disable { server, address } => {
            let store = letterlock_server::open_store(&server.load()?).await?;
            let disabled = users::disable(&store, &address, now).await?;
            println!("disabled {}; {} devices revoked", disabled.address, disabled.revoked);
        }
    }
    Ok(())
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
