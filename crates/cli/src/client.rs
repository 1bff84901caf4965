//! The client commands: `login`, `token`, `accounts`, `logout`. Everything for people goes to
//! stderr; stdout carries only what a program reads (the token, the account list).

use letterlock_protocol::ErrorCode;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use letterlock_client::{
    Browser, Client, Endpoint, Error, FileStorage, KeyringStorage, Login, Options, PrintUrl,
    SecretService, Service, Storage, SystemBrowser,
};

/// Exit codes of the client commands, documented in `letterlock token --help` and
/// docs/CLIENT.md.
pub mod exit {
    /// Bad arguments, or the account has no such service.
    pub const USAGE: u8 = 2;
    /// Not signed in, or the grant is gone (revoked, expired): run `letterlock login`.
    pub const SIGN_IN: u8 = 3;
    /// The issuer or a server could not be reached or answered badly; try again later.
    pub const UNAVAILABLE: u8 = 4;
    /// Refused for safety: an answer failed a check, so no token was sent or kept.
    pub const REFUSED: u8 = 5;
    /// The person declined, or the sign-in did not finish.
    pub const NOT_AUTHORIZED: u8 = 6;
    /// Local storage failed.
    pub const STORAGE: u8 = 7;
}

/// Options shared by the client commands.
#[derive(Args, Clone)]
pub struct ClientOptions {
    /// Where accounts, registrations and tokens are kept (default: $XDG_DATA_HOME/letterlock,
    /// else ~/.local/share/letterlock).
    #[arg(long, env = "LETTERLOCK_CLIENT_DIR", global = true)]
    client_dir: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust besides the system's.
    #[arg(long, env = "LETTERLOCK_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Answer HOST with ADDRESS:PORT instead of DNS (the port is used when a URL names none),
    /// like curl's --resolve; repeat or separate with commas.
    #[arg(long, env = "LETTERLOCK_RESOLVE", value_delimiter = ',', global = true)]
    resolve: Vec<String>,
    /// Where registrations and refresh tokens are kept: `keyring` (the desktop's Secret
    /// Service), `file` (user-only files in the client folder), or `auto`: the keyring when one
    /// answers on the session bus, else files.
    #[arg(long, env = "LETTERLOCK_SECRETS", value_enum, default_value_t = Secrets::Auto, global = true)]
    secrets: Secrets,
    /// Ask this DNS server (ADDRESS:PORT) for SRV records instead of the system's resolver.
    #[arg(long, env = "LETTERLOCK_DNS_SERVER", global = true)]
    dns_server: Option<std::net::SocketAddr>,
}

/// Where secrets are kept.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Secrets {
    /// The keyring when there is one, else files.
    Auto,
    /// The Secret Service; an error when there is none.
    Keyring,
    /// Files readable only by the user.
    File,
}

/// The client commands.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Sign in: discover the issuer of an address's services, register this installation, and
    /// approve in the browser (one consent per issuer).
    Login {
        /// The mail address.
        address: String,
        /// The IMAP server: imaps://HOST[:PORT] (TLS), imap://HOST[:PORT] (STARTTLS), or HOST.
        #[arg(long)]
        imap: Option<String>,
        /// The SMTP submission server: smtps://HOST[:PORT], smtp://HOST[:PORT], or HOST.
        #[arg(long)]
        smtp: Option<String>,
        /// The POP3 server: pop3s://HOST[:PORT], pop3://HOST[:PORT], or HOST.
        #[arg(long)]
        pop3: Option<String>,
        /// The CardDAV URL.
        #[arg(long)]
        carddav: Option<String>,
        /// The CalDAV URL.
        #[arg(long)]
        caldav: Option<String>,
        /// The issuer, if known: skips asking the servers.
        #[arg(long)]
        issuer: Option<String>,
        /// Print the sign-in URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Approve on another device (RFC 8628 device grant), for machines without a browser.
        #[arg(long)]
        device: bool,
        /// A software statement (a file holding the JWT) signed by this client's vendor.
        #[arg(long, env = "LETTERLOCK_SOFTWARE_STATEMENT")]
        software_statement: Option<PathBuf>,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Print an access token for one service of a signed-in address, and nothing else, on
    /// stdout. Exit codes: 0 token printed; 2 usage; 3 sign in again (`letterlock login`);
    /// 4 issuer unreachable, try later; 5 refused for safety; 7 local storage failed.
    Token {
        /// The mail address.
        address: String,
        /// The service the token is for.
        #[arg(long, value_parser = ["imap", "smtp", "pop3", "carddav", "caldav"])]
        service: String,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List the signed-in addresses, their issuers and services (tab-separated on stdout).
    Accounts {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Sign out: revoke the address's grants at their issuers and forget them here.
    Logout {
        /// The mail address.
        address: String,
        #[command(flatten)]
        options: ClientOptions,
    },
}

/// Runs a client command and returns its exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    match run_inner(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("letterlock: {error}");
            ExitCode::from(code(&error))
        }
    }
}

fn code(error: &Error) -> u8 {
    match error {
        Error::Usage(_) => exit::USAGE,
        Error::SignInAgain(..) => exit::SIGN_IN,
        Error::Discovery(_) | Error::Network(_) => exit::UNAVAILABLE,
        Error::Server {
            error: ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError, ..
        } => exit::UNAVAILABLE,
        Error::Server { .. } | Error::Authorization(_) => exit::NOT_AUTHORIZED,
        Error::Refused(_) => exit::REFUSED,
        Error::Storage(_) => exit::STORAGE,
    }
}

fn client(
    options: &ClientOptions,
    browser: Arc<dyn Browser>,
    statement: Option<String>,
) -> Result<Client, Error> {
    let files = match &options.client_dir {
        Some(dir) => FileStorage::new(dir),
        None => FileStorage::for_user()?,
    };
    let storage: Arc<dyn Storage> = match options.secrets {
        Secrets::File => Arc::new(files),
        Secrets::Keyring => Arc::new(KeyringStorage::new(files, SecretService::connect()?)),
        Secrets::Auto => match SecretService::connect() {
            Ok(keyring) => Arc::new(KeyringStorage::new(files, keyring)),
            Err(error) => {
                tracing::debug!("no keyring, secrets go to files: {error}");
                Arc::new(files)
            }
        },
    };
    let mut settings = Options::default();
    settings.software.software_statement = statement;
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path)
            .map_err(|error| Error::Usage(format!("{}: {error}", path.display())))?;
        settings.net.add_roots_from_pem(&pem)?;
    }
    for entry in options.resolve.iter().filter(|entry| !entry.is_empty()) {
        settings.net.add_resolve(entry)?;
    }
    settings.net.dns_server = options.dns_server;
    Client::new(storage, browser, settings)
}

fn progress(line: &str) {
    eprintln!("{line}");
}

async fn run_inner(command: ClientCommand) -> Result<(), Error> {
    match command {
        ClientCommand::Login {
            address,
            imap,
            smtp,
            pop3,
            carddav,
            caldav,
            issuer,
            no_browser,
            device,
            software_statement,
            options,
        } => {
            let statement = software_statement
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map(|text| text.trim().to_owned())
                        .map_err(|error| Error::Usage(format!("{}: {error}", path.display())))
                })
                .transpose()?;
            let browser: Arc<dyn Browser> =
                if no_browser { Arc::new(PrintUrl) } else { Arc::new(SystemBrowser) };
            let client = client(&options, browser, statement)?;
            let mut login = Login::new(&address);
            for (service, location) in [
                (Service::Imap, imap),
                (Service::Smtp, smtp),
                (Service::Pop3, pop3),
                (Service::CardDav, carddav),
                (Service::CalDav, caldav),
            ] {
                if let Some(location) = location {
                    login.endpoints.push(Endpoint::parse(service, &location)?);
                }
            }
            login.issuer = issuer;
            login.device = device;
            let account = client.login(&login, &progress).await?;
            for grant in &account.grants {
                let services: Vec<&str> =
                    grant.services.iter().map(|item| item.endpoint.service.name()).collect();
                eprintln!(
                    "Signed in {} at {} for {}.",
                    account.address,
                    grant.issuer,
                    services.join(", ")
                );
            }
            eprintln!(
                "Mail programs can now run: letterlock token {} --service imap",
                account.address
            );
            Ok(())
        }
        ClientCommand::Token { address, service, options } => {
            let service = Service::parse(&service)
                .ok_or_else(|| Error::Usage(format!("unknown service {service}")))?;
            let client = client(&options, Arc::new(PrintUrl), None)?;
            let token = client.token(&address, service).await?;
            println!("{}", token.token);
            Ok(())
        }
        ClientCommand::Accounts { options } => {
            let client = client(&options, Arc::new(PrintUrl), None)?;
            let accounts = client.accounts()?;
            if accounts.is_empty() {
                eprintln!("No account is signed in ({}).", client.storage().describe());
            }
            for account in accounts {
                for grant in &account.grants {
                    let services: Vec<String> = grant
                        .services
                        .iter()
                        .map(|item| {
                            format!("{}={}", item.endpoint.service.name(), item.endpoint.url)
                        })
                        .collect();
                    println!("{}\t{}\t{}", account.address, grant.issuer, services.join(" "));
                }
            }
            Ok(())
        }
        ClientCommand::Logout { address, options } => {
            let client = client(&options, Arc::new(PrintUrl), None)?;
            let report = client.logout(&address).await?;
            for issuer in &report.revoked {
                eprintln!("Revoked {address}'s access at {issuer}.");
            }
            for (issuer, why) in &report.not_revoked {
                eprintln!(
                    "Could not revoke at {issuer} ({why}); revoke this device on its devices page."
                );
            }
            eprintln!("Forgot {address} on this computer.");
            if report.not_revoked.is_empty() {
                Ok(())
            } else {
                Err(Error::Network("not every issuer was told".into()))
            }
        }
    }
}
