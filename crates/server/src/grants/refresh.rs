//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection.
//!
//! RFC 9700 §4.14.2: every refresh rotates the token, and a rotated-out token presented again
//! means two parties hold it, so the grant is revoked. This happens in two ways, both handled
//! here: a token already marked rotated is presented ([`Grants::refresh`]), or two holders
//! present the current one at once and the store's compare-and-swap in `record_issue` lets only
//! one rotate it ([`Grants::reuse_detected`], called from issuing).

use super::issue::Subject;
use super::{Caller, GrantError, Grants, TokenAsk, check_live, narrow};
use crate::secrets::hash_secret;

impl Grants<'_> {
    /// Exchanges a refresh token for new tokens: the client must be the token's, the token
    /// current and unexpired, its DPoP key (if bound) proved, the grant live and the user
    /// enabled; the scope may narrow (RFC 6749 §6) and one resource may be chosen.
    pub async fn refresh(
        &self,
        caller: Caller<'_>,
        presented: &str,
        ask: &TokenAsk<'_>,
    ) -> Result<super::Issued, GrantError> {
        let hash = hash_secret(presented);
        let now = self.now();
        let context =
            self.store.refresh_context(&hash).await?.ok_or(GrantError::UnknownRefreshToken)?;
        let (record, grant) = (context.token, context.grant);
        if grant.client_id != caller.client.client_id {
            return Err(GrantError::RefreshTokenOfAnotherClient);
        }
        if record.rotated_at.is_some() {
            // RFC 9700 §4.14.2: a rotated-out token presented again means two parties hold it.
            return Err(self.reuse_detected(&grant.id).await);
        }
        if record.expires_at <= now {
            return Err(GrantError::RefreshTokenExpired);
        }
        if let Some(bound) = &record.jkt {
            match caller.jkt {
                None => return Err(GrantError::RefreshTokenNeedsProof),
                Some(presented) if presented != bound => {
                    return Err(GrantError::RefreshTokenBoundToAnotherKey);
                }
                Some(_) => {}
            }
        }
        check_live(&grant, context.user_disabled)?;
        let asked = narrow(ask, &grant.scope, &grant.resources, self.issuer.services)?;
        // Keep the binding of the token being replaced.
        let jkt = record.jkt.or(caller.jkt.map(str::to_owned));
        let subject = Subject { grant: &grant, address: &context.address, rotated: Some(&hash) };
        self.issue(caller, subject, asked, jkt).await
    }

    /// RFC 9700 §4.14.2: revokes a grant whose refresh token was presented after rotation, and
    /// returns the refusal to answer with.
    pub async fn reuse_detected(&self, grant_id: &str) -> GrantError {
        if let Err(error) = self.store.revoke_grant(grant_id, None, self.now()).await {
            return GrantError::from(error);
        }
        tracing::warn!(grant_id, "a rotated-out refresh token was presented; the grant is revoked");
        GrantError::RefreshTokenReused
    }
}
