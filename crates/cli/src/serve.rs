//! `letterlock serve`: the authorization server, the front doors its file configures, and one
//! shutdown for both. The libraries do not know each other; this is where they meet.

use std::future::Future;

use anyhow::Context as _;
use letterlock_gateway::FrontDoors;
use letterlock_gateway::config::GatewayConfig;
use letterlock_server::BoundServer;
use letterlock_server::config::{Config, ResourceServerConfig};
use letterlock_server::random::Randomness;

use crate::file::ConfigFile;

/// The `[[resource_servers]]` entry the server grants front doors run inside it.
const INTERNAL_FEED_CLIENT: &str = "letterlock-internal-gateway";

/// Runs the authorization server and its front doors until `shutdown` completes, or until the
/// doors fail to start (then the server stops too).
pub async fn run(file: ConfigFile, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (mut config, mut doors) = file.split();
    grant_internal_feed(&mut config, &mut doors, || Ok(Randomness::system().token(32)?))?;
    let state = letterlock_server::prepare(&config).await?;
    let server = BoundServer::bind(&config, state).await?;
    let issuer = server.state().issuer().clone();
    // The front doors start once the listener is open, since they read the issuer's metadata
    // and keys over HTTP like remote ones; if they cannot start, the server stops too.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let stopping = std::sync::Arc::new(stopping);
    let gateway = (!doors.is_empty()).then(|| {
        let (stopping, mut stopped) = (stopping.clone(), stopped.clone());
        tokio::spawn(async move {
            match letterlock_gateway::Gateway::start(issuer, doors).await {
                Ok(gateway) => {
                    gateway
                        .run(async move {
                            let _ = stopped.wait_for(|stopped| *stopped).await;
                        })
                        .await;
                    Ok(())
                }
                Err(error) => {
                    let _ = stopping.send(true);
                    Err(error)
                }
            }
        })
    });
    let mut stopped = stopped.clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
        let _ = stopping.send(true);
    };
    server.serve(shutdown).await?;
    if let Some(gateway) = gateway {
        gateway.await.unwrap_or(Ok(())).context("front doors")?;
    }
    Ok(())
}

/// For front doors run inside the server: when `[gateway]` names no feed credentials, makes an
/// internal resource server (a random secret, this process only) so that they can follow the
/// revocation feed.
fn grant_internal_feed(
    config: &mut Config,
    doors: &mut FrontDoors,
    secret: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if doors.is_empty() || doors.gateway.client_id.is_some() {
        return Ok(());
    }
    let secret = secret()?;
    config.resource_servers.push(ResourceServerConfig {
        client_id: INTERNAL_FEED_CLIENT.to_owned(),
        secret: secret.clone(),
        resources: doors.resources(),
    });
    let GatewayConfig { client_id, secret: gateway_secret, .. } = &mut doors.gateway;
    *client_id = Some(INTERNAL_FEED_CLIENT.to_owned());
    *gateway_secret = Some(secret);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (Config, FrontDoors) {
        toml::from_str::<ConfigFile>(text).unwrap().split()
    }

    const DOOR: &str = "[[imap]]\nlisten = \"127.0.0.1:1\"\nresource = \"imaps://m.example\"\n\
                        [imap.backend]\naddress = \"127.0.0.1:2\"\n";

    #[test]
    fn doors_inside_the_server_get_internal_feed_credentials() {
        let (mut config, mut doors) = file(DOOR);
        grant_internal_feed(&mut config, &mut doors, || Ok("s".repeat(43))).unwrap();
        let granted = &config.resource_servers[0];
        assert_eq!(granted.client_id, INTERNAL_FEED_CLIENT);
        assert_eq!(granted.resources, ["imaps://m.example"]);
        assert_eq!(doors.gateway.client_id.as_deref(), Some(INTERNAL_FEED_CLIENT));
        assert_eq!(doors.gateway.secret.as_deref(), Some(granted.secret.as_str()));
    }

    #[test]
    fn configured_feed_credentials_and_no_doors_need_none() {
        let (mut config, mut doors) =
            file(&format!("[gateway]\nclient_id = \"gw\"\nsecret = \"x\"\n{DOOR}"));
        grant_internal_feed(&mut config, &mut doors, || unreachable!()).unwrap();
        assert!(config.resource_servers.is_empty());
        let (mut config, mut doors) = file("");
        grant_internal_feed(&mut config, &mut doors, || unreachable!()).unwrap();
        assert!(config.resource_servers.is_empty());
    }
}
