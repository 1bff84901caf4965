//! The refresh token grant (RFC 6749 §6) with rotation, reuse detection and a retry window.
//!
//! RFC 9700 §4.14.2: every refresh rotates the token, and a rotated-out token presented again
//! means two parties hold it, so the grant is revoked. This happens in two ways, both handled
//! here: a token already marked rotated is presented ([`Grants::refresh`]), or two requests
//! present the current one at once and the store's compare-and-swap in `record_issue` lets only
//! one rotate it ([`Grants::after_lost_race`], called from issuing).
//!
//! The exception, in both ways, is a retry (issue 16; RFC 9700 §4.14.2 allows a grace period):
//! within `refresh_retry_window_seconds` of the rotation, before the new refresh token is used,
//! the same installation (the same authenticated client, and the same DPoP key when the token
//! is bound to one) gets the answer the rotation gave, again ([`super::retry`]). Nothing new is
//! issued, so a duplicate never doubles the tokens; anyone else is reuse.
use letterlock_store::RefreshContext;

use super::issue::{Exchanged, Subject};
use super::{Caller, GrantError, Grants, Issued, TokenAsk, check_live, narrow};
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
        let exchanged = Exchanged { token: presented, hash: &hash };
        if context.token.rotated_at.is_some() {
            // RFC 9700 §4.14.2: a rotated-out token presented again means two parties hold it,
            // unless it is the same installation's retry within the window.
            return self.retry_or_revoke(caller, exchanged, &context).await;
        }
        let (record, grant) = (context.token, context.grant);
        if grant.client_id != caller.client.client_id {
            return Err(GrantError::RefreshTokenOfAnotherClient);
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
        self.recheck_source(
            &grant.user_id,
            &context.address,
            &context.user_source,
            context.user_checked_at,
        )
        .await?;
        let asked = narrow(ask, &grant.scope, &grant.resources, self.issuer.services)?;
        // Keep the binding of the token being replaced.
        let jkt = record.jkt.or(caller.jkt.map(str::to_owned));
        let subject =
            Subject { grant: &grant, address: &context.address, rotated: Some(exchanged) };
        self.issue(caller, subject, asked, jkt).await
    }

    /// A refresh lost the store's compare-and-swap: another request rotated the token between
    /// this one's read and its write. Read again, now that the winner has committed, and answer
    /// as for a rotated token.
    pub(super) async fn after_lost_race(
        &self,
        caller: Caller<'_>,
        exchanged: Exchanged<'_>,
    ) -> Result<Issued, GrantError> {
        let context = self
            .store
            .refresh_context(exchanged.hash)
            .await?
            .ok_or(GrantError::UnknownRefreshToken)?;
        self.retry_or_revoke(caller, exchanged, &context).await
    }

    /// A rotated-out token came back: the answer its rotation gave, if this is the same
    /// installation's retry within the window; else reuse, and the grant is revoked.
    async fn retry_or_revoke(
        &self,
        caller: Caller<'_>,
        exchanged: Exchanged<'_>,
        context: &RefreshContext,
    ) -> Result<Issued, GrantError> {
        let (record, grant) = (&context.token, &context.grant);
        let now = self.now();
        let window = self.issuer.lifetimes.refresh_retry_window;
        let same_installation = grant.client_id == caller.client.client_id
            // RFC 9449 §5: a bound token's retry proves the same key; a proof with another
            // key, or none, is a thief's.
            && record.jkt.as_deref().is_none_or(|bound| caller.jkt == Some(bound));
        let kept = match (&record.retry, record.rotated_at) {
            // The answer is erased when the successor is used, so its absence also means the
            // client evidently got the answer. A window shortened (or turned off) since the
            // rotation applies at once.
            (Some(retry), Some(rotated_at))
                if window > 0
                    && now < retry.until.min(rotated_at.saturating_add(window))
                    && same_installation =>
            {
                retry
            }
            _ => return Err(self.reuse_detected(&grant.id).await),
        };
        check_live(grant, context.user_disabled)?;
        let answer =
            super::retry::open(exchanged.token, exchanged.hash, &grant.id, &kept.sealed, now)?;
        tracing::info!(
            grant_id = grant.id.as_str(),
            "a rotated-out refresh token was retried within the window; the same answer again"
        );
        Ok(answer)
    }

    /// Asks the identity source that proved the person whether they are still there, when its
    /// word is older than `[sign_in] recheck_seconds` (issue 17 point 3): a person removed or
    /// disabled at a directory loses every device at their next refresh after that, and their
    /// access tokens (short-lived, and checked by the doors against the feed) with them. A
    /// source that cannot tell lets the refresh through: an outage of the directory must not
    /// sign every mail program out. The local table needs no question: its `disabled` flag was
    /// read with the token.
    async fn recheck_source(
        &self,
        user_id: &str,
        address: &str,
        source: &str,
        checked_at: i64,
    ) -> Result<(), GrantError> {
        let now = self.now();
        let who = crate::identity::Vouched { user_id, address, source, checked_at };
        match self.identity.recheck(self.store, who, now).await? {
            crate::identity::Standing::Active | crate::identity::Standing::Unknown => Ok(()),
            crate::identity::Standing::Gone => {
                let revoked = self.store.revoke_grants_of_user(user_id, now).await?;
                tracing::warn!(
                    user = address,
                    source,
                    revoked,
                    "the identity source no longer knows this person; their devices are revoked"
                );
                Err(GrantError::UserGoneAtSource)
            }
        }
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
