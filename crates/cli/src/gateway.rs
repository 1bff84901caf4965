//! `letterlock gateway`: the front doors alone, for a remote issuer. It reads `issuer` and the
//! door sections of the file (see [`GatewayFile`]) and nothing of the authorization server's.

use std::future::Future;

use anyhow::{Context as _, bail};
use letterlock_protocol::issuer::Issuer;

use crate::file::GatewayFile;

/// Runs the configured front doors until `shutdown` completes.
pub async fn run(file: GatewayFile, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let issuer = Issuer::parse(file.issuer_text()).context("issuer")?;
    let doors = file.front_doors();
    if doors.is_empty() {
        bail!("the configuration has no [[imap]], [[smtp]], [[pop3]] or [[dav]] front door");
    }
    let gateway = letterlock_gateway::Gateway::start(issuer, doors).await?;
    gateway.run(shutdown).await;
    Ok(())
}
