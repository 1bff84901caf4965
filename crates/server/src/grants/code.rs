//! Authorization codes (RFC 6749 §4.1): made when the person approves, redeemed once, with PKCE
//! (RFC 7636) and an optional DPoP binding (RFC 9449 §10).

use letterlock_protocol::CodeChallenge;
use letterlock_protocol::oidc::{self, IdTokenClaims};
use letterlock_protocol::scope::{EMAIL, OPENID};
use letterlock_store::{CodeRedemption, GrantRecord};

use super::issue::Subject;
use super::records::{CodeDetails, PendingRequest};
use super::{Caller, GrantError, Grants, TokenAsk, narrow};
use crate::clients::Client;
use crate::secrets::hash_secret;

/// What a code redemption presents besides the code's client.
#[derive(Debug, Clone, Default)]
pub struct CodeRequest<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`, if sent.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier` (RFC 7636 §4.5).
    pub code_verifier: Option<&'a str>,
    /// `scope` and `resource`.
    pub ask: TokenAsk<'a>,
}

impl Grants<'_> {
    /// Makes a code for an approved request under `grant`; returns the code. Only its hash is
    /// stored, with the details the redemption checks and, for OpenID Connect, the request's
    /// `nonce` and when the person signed in (`auth_time`).
    pub async fn create_code(
        &self,
        client: &Client,
        pending: &PendingRequest,
        user_id: &str,
        grant: &GrantRecord,
        auth_time: Option<i64>,
    ) -> Result<String, GrantError> {
        let code = self.random.token(32)?;
        let details = CodeDetails {
            client_id: client.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            scope: pending.scope.clone(),
            resources: pending.resources.clone(),
            dpop_jkt: pending.dpop_jkt.clone(),
            user_id: user_id.to_owned(),
            nonce: pending.nonce.clone(),
            auth_time,
        };
        let details = details.to_json();
        let expires_at = self.now() + self.issuer.lifetimes.code;
        self.store.insert_code(&hash_secret(&code), &grant.id, &details, expires_at).await?;
        Ok(code)
    }

    /// Redeems a code (RFC 6749 §4.1.3) for tokens.
    pub async fn redeem_code(
        &self,
        caller: Caller<'_>,
        request: &CodeRequest<'_>,
    ) -> Result<super::Issued, GrantError> {
        let now = self.now();
        let (grant_id, details, expires_at) =
            match self.store.redeem_code(&hash_secret(request.code), now).await? {
                CodeRedemption::Fresh { grant_id, details, expires_at } => {
                    (grant_id, details, expires_at)
                }
                CodeRedemption::Reused { grant_id } => {
                    // RFC 6749 §4.1.2: a code used twice revokes what it issued.
                    self.store.revoke_grant(&grant_id, None, now).await?;
                    tracing::warn!(
                        grant_id,
                        "an authorization code was used twice; the grant is revoked"
                    );
                    return Err(GrantError::CodeReused);
                }
                CodeRedemption::Unknown => return Err(GrantError::UnknownCode),
            };
        let details = CodeDetails::from_json(&details)?;
        if expires_at <= now {
            return Err(GrantError::CodeExpired);
        }
        if details.client_id != caller.client.client_id {
            return Err(GrantError::CodeOfAnotherClient);
        }
        // RFC 6749 §4.1.3: if the request named a redirect URI, this must be the same.
        if request.redirect_uri.is_some_and(|uri| uri != details.redirect_uri) {
            return Err(GrantError::RedirectMismatch);
        }
        match (&details.code_challenge, request.code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if !verifier_matches(verifier, challenge) {
                    return Err(GrantError::VerifierMismatch);
                }
            }
            // RFC 7636 §4.5: a code issued with a challenge needs its verifier.
            (Some(_), None) => return Err(GrantError::VerifierMissing),
            // RFC 9700 §2.1.1: "a token request containing a code_verifier parameter is
            // accepted only if a code_challenge parameter was present in the authorization
            // request" (against PKCE downgrade, §4.8.2).
            (None, Some(_)) => return Err(GrantError::VerifierWithoutChallenge),
            // Only a client still exempted today may redeem a code without PKCE.
            (None, None) if caller.client.pkce_optional() => {}
            (None, None) => return Err(GrantError::VerifierMissing),
        }
        // RFC 9449 §10: a code bound to a key is redeemed only with a proof by that key.
        if details.dpop_jkt.is_some() && details.dpop_jkt.as_deref() != caller.jkt {
            return Err(GrantError::CodeBoundToAnotherKey);
        }
        let (grant, address) = self.live_grant(&grant_id).await?;
        let granted_scope =
            letterlock_protocol::ScopeSet::parse(&details.scope).map_err(GrantError::internal)?;
        let asked = narrow(&request.ask, &granted_scope, &details.resources, self.issuer.services)?;
        let subject = Subject { grant: &grant, address: &address, rotated: None };
        let mut issued = self.issue(caller, subject, asked, caller.jkt.map(str::to_owned)).await?;
        // OpenID Connect Core §3.1.3.3: a grant with `openid` returns an ID token.
        if granted_scope.contains(OPENID) {
            let email = granted_scope.contains(EMAIL);
            issued.id_token = Some(self.id_token(caller.client, &address, &details, email)?);
        }
        Ok(issued)
    }

    /// OpenID Connect Core §2 and §3.1.3.6: the ID token for a code exchange, signed with the
    /// server's key (the one of its access tokens), `typ: JWT`. It lives as long as an access
    /// token: a client checks it at once.
    fn id_token(
        &self,
        client: &Client,
        address: &str,
        details: &CodeDetails,
        email: bool,
    ) -> Result<String, GrantError> {
        let now = self.now();
        let claims = IdTokenClaims {
            iss: self.issuer.issuer.as_str().to_owned(),
            sub: address.to_owned(),
            aud: client.client_id.clone(),
            exp: now + self.issuer.lifetimes.access_token,
            iat: now,
            auth_time: details.auth_time,
            nonce: details.nonce.clone(),
            azp: Some(client.client_id.clone()),
            // OpenID Connect Core §5.4: with `email`, the address (the account itself).
            email: email.then(|| address.to_owned()),
            email_verified: email.then_some(true),
        };
        self.issuer
            .keys
            .sign(oidc::TYP, &claims.to_json(), now, self.random.for_crypto())
            .map_err(GrantError::internal)
    }
}

/// RFC 7636 §4.6, by `letterlock-protocol`'s PKCE types: the verifier is well formed (§4.1:
/// 43 to 128 unreserved characters) and `BASE64URL(SHA256(verifier))` is the stored S256
/// challenge, compared in constant time. SHA-256 is `letterlock_jose::sha256` (aws-lc-rs).
/// RFC 7636 Appendix B is tested in `letterlock-protocol` (`pkce`) and `letterlock-jose`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    CodeChallenge::parse(challenge)
        .is_ok_and(|challenge| challenge.verify(verifier, letterlock_jose::sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's own path: protocol's PKCE types with jose's SHA-256, on RFC 7636
    /// Appendix B's values.
    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!verifier_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }
}
