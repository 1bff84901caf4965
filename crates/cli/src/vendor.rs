//! `letterlock vendor keygen|sign`: for client vendors, a key pair and software statements
//! (RFC 7591 §2.3).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use clap::Subcommand;
use letterlock_jose::statement::{self, SoftwareStatement};
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_server::clock::{Clock as _, SystemClock};
use serde_json::json;

/// `letterlock vendor`.
#[derive(Subcommand)]
pub enum VendorCommand {
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

/// `letterlock vendor ...`.
pub fn vendor(command: VendorCommand) -> anyhow::Result<()> {
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
            let statement = SoftwareStatement {
                iss: issuer,
                iat: now,
                exp: (expires_in_days > 0).then(|| now + i64::from(expires_in_days) * 86_400),
                software_id,
                client_name,
                software_version,
                client_uri,
                logo_uri,
                redirect_uris,
            };
            println!("{}", statement.sign(&key, &random)?);
        }
    }
    Ok(())
}
