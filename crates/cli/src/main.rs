//! `letterlock`: the authorization server and its tools. This file parses arguments and
//! dispatches; the libraries decide, and each command's module prints.
//!
//! - `letterlock serve`: run the server (embedded defaults without `--config`), with the front
//!   doors its configuration names (`serve`);
//! - `letterlock gateway`: run only the IMAP, SMTP, POP3 and DAV front doors, for a remote issuer
//!   (`gateway`);
//! - `letterlock keys list|rotate|retire`, `user add|passwd|list|disable`, `dovecot-config`: the
//!   operator's tools (`admin`);
//! - `letterlock vendor keygen|sign`: for client vendors, a key pair and software statements
//!   (`vendor`);
//! - `letterlock login|token|accounts|logout`: the client, for mail programs (`client`).
//!
//! The configuration file, which holds both the server's and the front doors' sections, is
//! `file`'s.
#![forbid(unsafe_code)]

mod admin;
mod client;
mod file;
mod gateway;
mod serve;
mod vendor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use letterlock_server::config::Config;
use letterlock_server::listen::shutdown_signal;

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
        command: admin::KeysCommand,
    },
    /// Manage accounts (the user name is the mail address).
    User {
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Print Dovecot's oauth2 configuration (2.3's passdb file, or 2.4's settings) that validates
    /// this server's tokens for one resource locally, and write the signing keys where it reads
    /// them. Run it again after `keys rotate` (for example from cron): it adds new keys and
    /// removes unpublished ones.
    DovecotConfig(admin::DovecotConfigArgs),
    /// Tools for client vendors: make a key pair and sign software statements.
    Vendor {
        #[command(subcommand)]
        command: vendor::VendorCommand,
    },
}

/// Where the server's configuration and state are.
#[derive(Args, Clone)]
pub struct ServerOptions {
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
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(self.file()?.split().0)
    }

    /// What `letterlock gateway` reads: `issuer` and the door sections.
    fn gateway_file(&self) -> anyhow::Result<file::GatewayFile> {
        let mut file = file::GatewayFile::load(self.config.as_deref())?;
        file.issuer = self.issuer.clone().or(file.issuer);
        Ok(file)
    }
}

/// Logs to stderr at `LETTERLOCK_LOG` (default `info`): one JSON object per line with
/// `LETTERLOCK_LOG_FORMAT=json` (for a log collector), else text, with colours only when stderr
/// is a terminal (journald and files get no escape codes).
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LETTERLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LETTERLOCK_LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
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
            if is_configuration_error(&error) {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// sysexits.h `EX_CONFIG`: the configuration is wrong (what systemd and scripts can tell apart
/// from a failure at run time).
const EX_CONFIG: u8 = 78;

/// True when `error` comes from the configuration: a file that does not parse, or a value the
/// server's checks refuse.
fn is_configuration_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<file::FileError>()
            || cause.is::<letterlock_server::config::ConfigError>()
            || matches!(
                cause.downcast_ref::<letterlock_server::ServerError>(),
                Some(letterlock_server::ServerError::Config(_))
            )
    })
}

async fn dispatch(command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Serve(options) => serve::run(options.file()?, shutdown_signal()).await,
        ServerCommand::Gateway(options) => {
            gateway::run(options.gateway_file()?, shutdown_signal()).await
        }
        ServerCommand::Keys { command } => admin::keys(command).await,
        ServerCommand::User { command } => admin::user(command).await,
        ServerCommand::DovecotConfig(args) => admin::dovecot_config(args).await,
        ServerCommand::Vendor { command } => vendor::vendor(command),
    }
}
