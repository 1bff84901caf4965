//! Issuing: an access token for the services asked for (RFC 9068 claims) and, with `offline_access` or in
//! exchange for a refresh token, the next refresh token; the rotation, the new token and the
//! grant's last use are written in one transaction.

use std::collections::HashMap;

use letterlock_protocol::ScopeSet;
use letterlock_protocol::access_token::AccessTokenClaims;
use letterlock_protocol::scope::OFFLINE_ACCESS;
use letterlock_store::{GrantRecord, RefreshTokenRecord, RetryAnswer, Rotation};

use super::{Caller, GrantError, Grants};
use crate::config::TokenTyp;
use crate::secrets::hash_secret;
use crate::state::token_typ;

/// How stale a grant's recorded last use may be, in seconds: the devices page shows it to the
/// minute.
const LAST_USE_RESOLUTION: i64 = 60;

/// Whom tokens are issued for, and the refresh token they replace.
pub(super) struct Subject<'a> {
    /// The live grant.
    pub grant: &'a GrantRecord,
    /// The user's address (`sub`).
    pub address: &'a str,
    /// The refresh token being exchanged, if this is a refresh.
    pub rotated: Option<Exchanged<'a>>,
}

/// A refresh token presented for exchange: as presented (the key of the answer kept for its
/// retry, [`super::retry`]) and its hash (its key in the store).
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchanged<'a> {
    /// The token as presented.
    pub token: &'a str,
    /// Its hash.
    pub hash: &'a str,
}

/// A token response's contents (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The signed access token.
    pub access_token: String,
    /// `DPoP` when the access token is bound to a key (RFC 9449 §5), else `Bearer`.
    pub token_type: &'static str,
    /// The access token's lifetime in seconds.
    pub expires_in: i64,
    /// The scope granted by this response.
    pub scope: ScopeSet,
    /// The new refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// Seconds until that refresh token expires unused (`refresh_token_expires_in`, not in
    /// RFC 6749; see [`letterlock_protocol::TokenResponse`]).
    pub refresh_token_expires_in: Option<i64>,
    /// OpenID Connect Core §3.1.3.3: the ID token of a code exchange under `openid`, added by
    /// [`super::code`].
    pub id_token: Option<String>,
}

impl Grants<'_> {
    /// Issues an access token for the services of `audience` and, with `offline_access` or in exchange for a
    /// refresh token, a new refresh token. A refresh narrowed to one service's scope (without
    /// `offline_access`) still rotates into a new refresh token: the narrowing is the access
    /// token's, and the grant must not be lost by asking for less.
    pub(super) async fn issue(
        &self,
        caller: Caller<'_>,
        subject: Subject<'_>,
        (scope, audience): (ScopeSet, Vec<String>),
        jkt: Option<String>,
    ) -> Result<Issued, GrantError> {
        let now = self.now();
        let lifetimes = self.issuer.lifetimes;
        let grant = subject.grant;
        let client = caller.client;
        let access_scope: Vec<&str> =
            scope.iter().filter(|scope| *scope != OFFLINE_ACCESS).collect();
        let bound = client.metadata.dpop_bound_access_tokens && jkt.is_some();
        // RFC 9068 §3: `aud` is never absent. When no configured service is reached (none is
        // configured, or the scope reaches none), the token is for the issuer itself, the
        // default resource indicator (docs/ARCHITECTURE.md, "Audiences").
        let audience = if audience.is_empty() {
            vec![self.issuer.issuer.as_str().to_owned()]
        } else {
            audience
        };
        // RFC 9068 §2.2: the access token's claims.
        let claims = AccessTokenClaims {
            issuer: self.issuer.issuer.as_str().to_owned(),
            subject: subject.address.to_owned(),
            audience: audience.clone(),
            client_id: client.client_id.clone(),
            scopes: access_scope.iter().map(|scope| (*scope).to_owned()).collect(),
            jti: self.random.id()?,
            issued_at: Some(now),
            expires_at: now + lifetimes.access_token,
            grant_id: grant.id.clone(),
            // RFC 9449 §6.1: a bound token names its key.
            jkt: jkt.clone().filter(|_| bound),
            ..AccessTokenClaims::default()
        }
        .to_json();
        let typ = access_token_typ(self.issuer.token_typs, &audience);
        let access_token = self
            .issuer
            .keys
            .sign(typ, &claims, now, self.random.for_crypto())
            .map_err(GrantError::internal)?;
        let mut refresh_token = None;
        let mut issued = None;
        if scope.contains(OFFLINE_ACCESS) || subject.rotated.is_some() {
            let refresh = self.random.token(32)?;
            // The refresh token is bound to the DPoP key the client proved, if it sent a proof:
            // a thief without the installation's key cannot use it (RFC 9449 §5).
            issued = Some(RefreshTokenRecord {
                hash: hash_secret(&refresh),
                grant_id: grant.id.clone(),
                jkt: jkt.clone(),
                created_at: now,
                expires_at: now + lifetimes.refresh_token,
                rotated_at: None,
                replaces: subject.rotated.map(|exchanged| exchanged.hash.to_owned()),
                retry: None,
            });
            refresh_token = Some(refresh);
        }
        // The devices page shows the last use to the minute: a grant used again within a minute
        // from the same address is not written again.
        let peer = caller.peer;
        let touch = (now - grant.last_used_at >= LAST_USE_RESOLUTION
            || (peer.is_some() && grant.last_address.as_deref() != peer))
            .then_some(peer);
        let answer = Issued {
            access_token,
            token_type: if bound { "DPoP" } else { "Bearer" },
            expires_in: lifetimes.access_token,
            scope,
            refresh_token_expires_in: refresh_token.as_ref().map(|_| lifetimes.refresh_token),
            refresh_token,
            id_token: None,
        };
        // The answer is kept, sealed under the presented token, for a retry within the window
        // (RFC 9700 §4.14.2's grace period; super::retry says why it is safe to keep).
        let retry = match subject.rotated {
            Some(exchanged) if lifetimes.refresh_retry_window > 0 => Some(RetryAnswer {
                sealed: super::retry::seal(
                    exchanged.token,
                    exchanged.hash,
                    &grant.id,
                    &answer,
                    now,
                    self.random,
                )?,
                until: now.saturating_add(lifetimes.refresh_retry_window),
            }),
            _ => None,
        };
        let rotation = subject
            .rotated
            .map(|exchanged| Rotation { hash: exchanged.hash, retry: retry.as_ref() });
        let recorded =
            self.store.record_issue(rotation, issued.as_ref(), &grant.id, now, touch).await?;
        // The store's compare-and-swap: rotation, the new refresh token and the grant's last use
        // are one transaction, and the rotation only happens if the token was still current.
        // Losing means another request rotated it meanwhile (RFC 9700 §4.14.2, the race half):
        // the same installation's duplicate gets that request's answer, anyone else revokes.
        // Nothing this request made is stored, so nothing is issued twice.
        match subject.rotated {
            Some(exchanged) if !recorded => self.after_lost_race(caller, exchanged).await,
            _ if !recorded => Err(GrantError::internal("a rotation without a refresh token")),
            _ => Ok(answer),
        }
    }
}

/// The `typ` header of a token for `audience`: RFC 9068 §2.1's `at+jwt`, unless one of the
/// services is configured `token_typ = "JWT"`. Such a service (Dovecot 2.3 validating tokens
/// itself) refuses `at+jwt`, and a token made for several services must be accepted by each of
/// them; the others' front doors then need `accept_jwt_typ` (docs/CONFIGURATION.md says so).
fn access_token_typ(typs: &HashMap<String, TokenTyp>, audience: &[String]) -> &'static str {
    if audience.iter().any(|one| token_typ(typs, one) == TokenTyp::Jwt.as_str()) {
        TokenTyp::Jwt.as_str()
    } else {
        TokenTyp::AtJwt.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 point 1: one `JWT` service makes a token for several services `JWT`.
    #[test]
    fn a_token_for_a_jwt_service_is_jwt() {
        let typs: HashMap<String, TokenTyp> =
            [("imaps://m".to_owned(), TokenTyp::Jwt), ("smtps://m".to_owned(), TokenTyp::AtJwt)]
                .into();
        let typ = |audience: &[&str]| {
            access_token_typ(
                &typs,
                &audience.iter().map(|one| (*one).to_owned()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(typ(&["imaps://m", "smtps://m"]), "JWT");
        assert_eq!(typ(&["smtps://m", "imaps://m"]), "JWT");
        assert_eq!(typ(&["imaps://m"]), "JWT");
        assert_eq!(typ(&["smtps://m"]), "at+jwt");
        assert_eq!(typ(&["smtps://m", "https://d/"]), "at+jwt");
        assert_eq!(typ(&["https://issuer.example"]), "at+jwt");
    }
}
