//! Consent: creating the grant of a user for an installation, or widening the live one.

use letterlock_protocol::ScopeSet;
use letterlock_store::{GrantRecord, UserRecord};

use super::records::PendingRequest;
use super::{GrantError, Grants};
use crate::clients::Client;

/// How many approved redirect URIs a grant remembers (the newest): a loopback client on a new
/// port each time would otherwise grow the list without end.
const MAX_APPROVED_REDIRECTS: usize = 16;

/// What the person approved.
#[derive(Debug, Clone, Copy)]
pub struct Approval<'a> {
    /// The name the person gave the device.
    pub device_name: &'a str,
    /// The scopes approved, space-separated.
    pub scope: &'a str,
    /// The services approved.
    pub resources: &'a [String],
    /// The redirect URI the person saw (none for a device code).
    pub redirect_uri: Option<&'a str>,
}

impl Grants<'_> {
    /// The live grant of `user` for `client` if it already holds every scope and resource of
    /// the request, and the request's redirect URI is one the person approved for it, exactly
    /// (port included): RFC 8252 §8.6 lets only such a request skip the consent page, and only
    /// for a client that proves its identity (the caller checks that).
    pub async fn covering_grant(
        &self,
        user: &UserRecord,
        client: &Client,
        pending: &PendingRequest,
    ) -> Result<Option<GrantRecord>, GrantError> {
        let existing = self.store.live_grant(&user.id, &client.client_id).await?;
        Ok(existing.filter(|grant| covers(grant, pending)))
    }

    /// Creates the grant of this user for this installation, or widens the live one: scopes,
    /// resources and approved redirect URIs accumulate, so a returning installation keeps what
    /// it had. Under a shared (well-known) client id every approval is a grant of its own:
    /// nothing proves that two requests under it come from the same program.
    pub async fn consent(
        &self,
        client: &Client,
        user: &UserRecord,
        approval: Approval<'_>,
    ) -> Result<GrantRecord, GrantError> {
        let Approval { device_name, scope, resources: requested_resources, redirect_uri } =
            approval;
        let now = self.now();
        let existing = if client.is_shared() {
            None
        } else {
            self.store.live_grant(&user.id, &client.client_id).await?
        };
        let grant = match existing {
            Some(existing) => {
                // Scopes and resources accumulate: a returning installation keeps what it had.
                let mut scopes: Vec<String> = existing.scope.iter().map(str::to_owned).collect();
                for asked in scope.split(' ') {
                    if !scopes.iter().any(|known| known == asked) {
                        scopes.push(asked.to_owned());
                    }
                }
                let mut resources = existing.resources.clone();
                for resource in requested_resources {
                    if !resources.contains(resource) {
                        resources.push(resource.clone());
                    }
                }
                let mut redirects = existing.redirect_uris.clone();
                if let Some(redirect) = redirect_uri
                    && !redirects.iter().any(|known| known == redirect)
                {
                    redirects.push(redirect.to_owned());
                }
                // Each loopback port is a redirect of its own: keep the newest few.
                let excess = redirects.len().saturating_sub(MAX_APPROVED_REDIRECTS);
                redirects.drain(..excess);
                let updated = GrantRecord {
                    device_name: device_name.to_owned(),
                    client_name: client.display_name(),
                    scope: ScopeSet::parse(&scopes.join(" ")).unwrap_or(existing.scope.clone()),
                    resources,
                    redirect_uris: redirects,
                    vendor: client.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
                    ..existing
                };
                self.store.update_grant(&updated).await?;
                updated
            }
            None => {
                let grant = GrantRecord {
                    id: self.random.id()?,
                    user_id: user.id.clone(),
                    client_id: client.client_id.clone(),
                    device_name: device_name.to_owned(),
                    client_name: client.display_name(),
                    software_id: client.metadata.software_id.clone(),
                    software_version: client.metadata.software_version.clone(),
                    vendor: client.vendor.as_ref().map(|vendor| vendor.issuer.clone()),
                    scope: ScopeSet::parse(scope).map_err(GrantError::internal)?,
                    resources: requested_resources.to_vec(),
                    redirect_uris: redirect_uri.into_iter().map(str::to_owned).collect(),
                    created_at: now,
                    last_used_at: now,
                    last_address: None,
                    revoked_at: None,
                };
                self.store.insert_grant(&grant).await?;
                grant
            }
        };
        Ok(grant)
    }
}

/// True when a live grant already holds every scope and resource of the request, and the
/// request's redirect URI is one the person approved for it, exactly (port included).
fn covers(grant: &GrantRecord, pending: &PendingRequest) -> bool {
    pending.scope.split(' ').all(|scope| grant.scope.contains(scope))
        && pending.resources.iter().all(|resource| grant.resources.contains(resource))
        && grant.redirect_uris.contains(&pending.redirect_uri)
}
