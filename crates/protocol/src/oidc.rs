//! OpenID Connect Core 1.0 basics: the ID token's claims (§2) that the code exchange of a grant
//! with the `openid` scope returns (§3.1.3.3), and the UserInfo response (§5.3.2). The server
//! writes both; a client reads them back and checks an ID token with [`IdTokenClaims::check`]
//! (§3.1.3.7, after the signature).
//!
//! An ID token is not an access token: it has no `scope`, `client_id`, `jti` or `grant_id`, so
//! [`crate::AccessTokenClaims::from_json`] refuses it, and its `typ` is `JWT`, not `at+jwt`
//! (RFC 9068 §4).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access_token::SKEW_SECONDS;

/// The UserInfo endpoint's path under the issuer (OpenID Connect Core §5.3).
pub const USERINFO_PATH: &str = "/userinfo";

/// OpenID Connect Core §2: the JWS `typ` of an ID token. JWT's own type (RFC 7519 §5.1), which
/// keeps it apart from access tokens (`at+jwt`, RFC 9068 §2.1).
pub const TYP: &str = "JWT";

/// The claims Letterlock's ID tokens and UserInfo responses carry (OpenID Connect Discovery §3
/// `claims_supported`).
pub const CLAIMS_SUPPORTED: [&str; 10] =
    ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "email", "email_verified"];

/// An ID token's claims (OpenID Connect Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// `iss`: the issuer, exactly as in discovery.
    pub iss: String,
    /// `sub`: the person, here their mail address (a `public` subject: the same for every
    /// client).
    pub sub: String,
    /// `aud`: the client the token is for (its `client_id`).
    pub aud: String,
    /// `exp`: seconds since the epoch.
    pub exp: i64,
    /// `iat`: seconds since the epoch.
    pub iat: i64,
    /// `auth_time`: when the person signed in (§2; required when asked for, always sent here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// `nonce`: the authorization request's, unchanged (§3.1.3.6); absent when it sent none,
    /// and on refresh (§12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `azp`: the authorized party, the same `client_id` (§2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// `email` (§5.1) with the `email` scope: also in the ID token (§5.4 allows it), so that a
    /// webmail that reads the address from the ID token (Roundcube's `oauth_identity_fields`)
    /// needs no UserInfo request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified` (§5.1), with `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// Why a client refused an ID token (OpenID Connect Core §3.1.3.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not the claims of an ID token.
    #[error("the ID token's claims are malformed")]
    Malformed,
    /// §3.1.3.7 step 2: `iss` is not the issuer.
    #[error("the ID token was issued by someone else")]
    Issuer,
    /// §3.1.3.7 step 3: `aud` is not this client.
    #[error("the ID token is for another client")]
    Audience,
    /// §3.1.3.7 step 9: expired.
    #[error("the ID token has expired")]
    Expired,
    /// §3.1.3.7 step 11: the nonce is not the one sent.
    #[error("the ID token's nonce is not the request's")]
    Nonce,
}

impl IdTokenClaims {
    /// As the JSON object that is signed.
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings and numbers always serializes to an object.
            _ => Map::new(),
        }
    }

    /// Reads claims back, `None` when they are not an ID token's.
    pub fn from_json(claims: &Map<String, Value>) -> Option<Self> {
        serde_json::from_value(Value::Object(claims.clone())).ok()
    }

    /// OpenID Connect Core §3.1.3.7, the checks after the signature: the issuer, the audience
    /// (this client), the lifetime (with [`SKEW_SECONDS`]) and the nonce sent, if any.
    pub fn check(
        claims: &Map<String, Value>,
        issuer: &str,
        client_id: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<Self, IdTokenError> {
        let token = Self::from_json(claims).ok_or(IdTokenError::Malformed)?;
        if token.iss != issuer {
            return Err(IdTokenError::Issuer);
        }
        if token.aud != client_id || token.azp.as_deref().is_some_and(|azp| azp != client_id) {
            return Err(IdTokenError::Audience);
        }
        if token.exp + SKEW_SECONDS <= now {
            return Err(IdTokenError::Expired);
        }
        if nonce.is_some() && token.nonce.as_deref() != nonce {
            return Err(IdTokenError::Nonce);
        }
        Ok(token)
    }
}

/// A UserInfo response (OpenID Connect Core §5.3.2): `sub` always, the `email` scope's claims
/// (§5.4) and the `profile` scope's `name` when the account has one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    /// `sub`: the same as the ID token's (§5.3.2).
    pub sub: String,
    /// `name` (§5.1), with the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `email` (§5.1), with the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified` (§5.1), with the `email` scope: the address is the account itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://auth.example.com".into(),
            sub: "alice@example.com".into(),
            aud: "c1".into(),
            exp: 1_800_000_600,
            iat: 1_800_000_000,
            auth_time: Some(1_799_999_000),
            nonce: Some("n-0S6_WzA2Mj".into()),
            azp: Some("c1".into()),
            email: None,
            email_verified: None,
        }
    }

    #[test]
    fn id_tokens_round_trip_and_are_checked() {
        let json = claims().to_json();
        assert_eq!(json["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(json["aud"], "c1");
        let check =
            |issuer, client, nonce, now| IdTokenClaims::check(&json, issuer, client, nonce, now);
        let issuer = "https://auth.example.com";
        assert_eq!(check(issuer, "c1", Some("n-0S6_WzA2Mj"), 1_800_000_000), Ok(claims()));
        assert_eq!(check(issuer, "c1", None, 1_800_000_000), Ok(claims()));
        assert_eq!(check("https://evil", "c1", None, 0), Err(IdTokenError::Issuer));
        assert_eq!(check(issuer, "c2", None, 0), Err(IdTokenError::Audience));
        assert_eq!(check(issuer, "c1", Some("other"), 0), Err(IdTokenError::Nonce));
        assert_eq!(check(issuer, "c1", None, 1_800_000_630), Err(IdTokenError::Expired));
        let mut without = claims();
        without.nonce = None;
        let json = without.to_json();
        assert!(!json.contains_key("nonce"));
        assert_eq!(
            IdTokenClaims::check(&json, issuer, "c1", Some("n"), 0),
            Err(IdTokenError::Nonce)
        );
    }

    #[test]
    fn an_id_token_is_not_an_access_token() {
        assert_eq!(crate::AccessTokenClaims::from_json(&claims().to_json()), None);
    }

    #[test]
    fn userinfo_leaves_out_what_the_scope_does_not_cover() {
        let only_sub = UserInfo { sub: "alice@example.com".into(), ..UserInfo::default() };
        assert_eq!(serde_json::to_string(&only_sub).unwrap(), r#"{"sub":"alice@example.com"}"#);
        let email = UserInfo {
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            ..only_sub
        };
        let text = serde_json::to_string(&email).unwrap();
        assert_eq!(
            text,
            r#"{"sub":"alice@example.com","email":"alice@example.com","email_verified":true}"#
        );
        assert_eq!(serde_json::from_str::<UserInfo>(&text).unwrap(), email);
    }
}
