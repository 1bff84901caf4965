//! The claims of Letterlock's access tokens: the JWT profile of RFC 9068 §2.2, plus the grant
//! the token belongs to. The server writes them when it issues a token, reads them back when a
//! resource server introspects it (RFC 7662 §2.2 answers with the same members), and the front
//! doors read them after checking the signature (`letterlock_jose::access`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bearer::BearerError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const SKEW_SECONDS: i64 = 30;

/// Why a token was refused. [`TokenError::InsufficientScope`] maps to the `insufficient_scope`
/// status, every other variant to `invalid_token` (RFC 6750 §3.1, RFC 7628 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWS with an allowed algorithm, or not `typ: at+jwt`.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// Signed with a key id the JWKS does not have: refetch the JWKS and try again.
    #[error("the token's key '{0}' is not in the issuer's key set")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Another issuer.
    #[error("the token was issued by someone else")]
    Issuer,
    /// Made for another service (RFC 8707 audience).
    #[error("the token is for another service")]
    Audience,
    /// Expired, or not valid yet.
    #[error("the token has expired or is not valid yet")]
    Lifetime,
    /// A required claim is missing or has the wrong type.
    #[error("the token lacks the claim '{0}'")]
    Claim(&'static str),
    /// Valid, but without the scope this service needs.
    #[error("the token does not carry the scope '{0}'")]
    InsufficientScope(String),
}

impl TokenError {
    /// The RFC 6750 / RFC 7628 status for this error, as text.
    pub fn status(&self) -> &'static str {
        match self {
            Self::InsufficientScope(_) => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// The RFC 6750 §3.1 error for this refusal.
    pub fn bearer_error(&self) -> BearerError {
        match self {
            Self::InsufficientScope(_) => BearerError::InsufficientScope,
            _ => BearerError::InvalidToken,
        }
    }
}

/// RFC 9068 §2.1: the JWS `typ` of an access token. `application/at+jwt` is the same type
/// (RFC 7515 §4.1.9: the `application/` prefix may be left out).
pub const TYP: &str = "at+jwt";

/// True when a JWS `typ` marks an access token (RFC 9068 §2.1, §4), compared without regard to
/// case. `accept_jwt` also takes plain `JWT`, for a resource whose tokens are made in Dovecot
/// 2.3's profile (which refuses `at+jwt`); RFC 9068 §4 asks for it to be off by default, since
/// it lets other JWTs (ID tokens, client assertions) pass as access tokens.
pub fn is_access_token_typ(typ: &str, accept_jwt: bool) -> bool {
    typ.eq_ignore_ascii_case(TYP)
        || typ.eq_ignore_ascii_case("application/at+jwt")
        || (accept_jwt && typ.eq_ignore_ascii_case("JWT"))
}

/// An access token's claims. The Rust names are what a front door acts on; the wire names are
/// RFC 9068's (`sub`, `exp`, `scope`, `cnf`...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// RFC 9068 §2.2 `iss`: the issuer.
    #[serde(rename = "iss", default)]
    pub issuer: String,
    /// RFC 9068 §2.2 `sub`: the user (a mail address).
    #[serde(rename = "sub")]
    pub subject: String,
    /// RFC 9068 §2.2 and RFC 8707 §2 `aud`: the one service the token is for. A single string
    /// on the wire when there is one (as Letterlock writes it), an array otherwise (RFC 7519
    /// §4.1.3); absent when empty.
    #[serde(
        rename = "aud",
        default,
        serialize_with = "audience_out",
        deserialize_with = "audience_in",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub audience: Vec<String>,
    /// RFC 9068 §2.2 `client_id`: the installation the token was issued to.
    pub client_id: String,
    /// RFC 9068 §2.2.3 `scope`: space-separated on the wire (RFC 6749 §3.3).
    #[serde(
        rename = "scope",
        default,
        serialize_with = "scope_out",
        deserialize_with = "scope_in"
    )]
    pub scopes: Vec<String>,
    /// RFC 9068 §2.2 `jti`: the token's id, by which RFC 7009 revocation names it.
    pub jti: String,
    /// RFC 9068 §2.2 `iat`.
    #[serde(rename = "iat", default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// RFC 7519 §4.1.5 `nbf`; Letterlock writes none.
    #[serde(rename = "nbf", default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// RFC 9068 §2.2 `exp`, seconds since the epoch: a session lives no longer (RFC 7628 §5).
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// RFC 9068 §2.2.1 `auth_time`: when the person signed in; Letterlock writes none today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Letterlock's grant: what the devices page calls a device, and what revocation names.
    pub grant_id: String,
    /// RFC 9449 §6.1 `cnf.jkt`: the DPoP key thumbprint of a DPoP-bound token.
    #[serde(
        rename = "cnf",
        default,
        serialize_with = "confirmation_out",
        deserialize_with = "confirmation_in",
        skip_serializing_if = "Option::is_none"
    )]
    pub jkt: Option<String>,
}

impl AccessTokenClaims {
    /// Checks what can change after verification: the token has not expired at `now` (with
    /// [`SKEW_SECONDS`]) and carries at least one of the scopes `any_of`. A front door that
    /// remembers verified claims calls this on every use.
    pub fn permits(&self, any_of: &[&str], now: i64) -> Result<(), TokenError> {
        if self.expires_at + SKEW_SECONDS <= now {
            return Err(TokenError::Lifetime);
        }
        if !self.scopes.iter().any(|granted| any_of.contains(&granted.as_str())) {
            return Err(TokenError::InsufficientScope(any_of.join(" ")));
        }
        Ok(())
    }

    /// The claims as a JSON object, for signing.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // A struct of strings and numbers always serialises to an object.
            _ => serde_json::Map::new(),
        }
    }

    /// Claims read from a verified token's JSON object; `None` if a required claim is missing
    /// or has the wrong type.
    pub fn from_json(claims: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        serde_json::from_value(serde_json::Value::Object(claims.clone())).ok()
    }

    /// RFC 9449 §6 / RFC 7662 §2.2 `token_type`: `DPoP` for a token bound to a key, else
    /// `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.jkt.is_some() { "DPoP" } else { "Bearer" }
    }

    /// The scopes joined as on the wire.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

fn audience_out<S: Serializer>(audience: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    match audience {
        [one] => serializer.serialize_str(one),
        many => many.serialize(serializer),
    }
}

fn audience_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Audience::deserialize(deserializer)? {
        Audience::One(one) => vec![one],
        Audience::Many(many) => many,
    })
}

fn scope_out<S: Serializer>(scopes: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&scopes.join(" "))
}

fn scope_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(text.split(' ').filter(|scope| !scope.is_empty()).map(str::to_owned).collect())
}

#[derive(Serialize, Deserialize)]
struct Confirmation {
    jkt: String,
}

fn confirmation_out<S: Serializer>(jkt: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    jkt.as_ref().map(|jkt| Confirmation { jkt: jkt.clone() }).serialize(serializer)
}

fn confirmation_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Confirmation>::deserialize(deserializer)?.map(|confirmation| confirmation.jkt))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example() -> AccessTokenClaims {
        AccessTokenClaims {
            issuer: "https://auth.example.com".into(),
            subject: "alice@example.com".into(),
            audience: vec!["imaps://mail.example.com".into()],
            client_id: "ll1.x.y".into(),
            scopes: vec![crate::scope::MAIL.into()],
            jti: "j1".into(),
            issued_at: Some(1_800_000_000),
            not_before: None,
            expires_at: 1_800_000_600,
            auth_time: None,
            grant_id: "g1".into(),
            jkt: Some("thumb".into()),
        }
    }

    #[test]
    fn the_wire_names_are_rfc_9068s() {
        let json = serde_json::Value::Object(example().to_json());
        assert_eq!(
            json,
            json!({
                "iss": "https://auth.example.com", "sub": "alice@example.com",
                "aud": "imaps://mail.example.com", "client_id": "ll1.x.y",
                "scope": "urn:ietf:params:oauth:scope:mail", "jti": "j1",
                "iat": 1_800_000_000, "exp": 1_800_000_600, "grant_id": "g1",
                "cnf": {"jkt": "thumb"},
            })
        );
        assert_eq!(example().token_type(), "DPoP");
    }

    #[test]
    fn claims_round_trip_and_audiences_may_be_arrays() {
        let claims = example();
        assert_eq!(AccessTokenClaims::from_json(&claims.to_json()), Some(claims.clone()));
        let mut map = claims.to_json();
        map.insert("aud".into(), json!(["a", "b"]));
        map.remove("cnf");
        let read = AccessTokenClaims::from_json(&map).unwrap();
        assert_eq!(read.audience, ["a", "b"]);
        assert_eq!(read.jkt, None);
        assert_eq!(read.token_type(), "Bearer");
        map.remove("grant_id");
        assert_eq!(AccessTokenClaims::from_json(&map), None);
    }

    #[test]
    fn permits_checks_expiry_and_scope() {
        let claims = example();
        assert_eq!(claims.permits(&[crate::scope::MAIL], 1_800_000_600 + SKEW_SECONDS - 1), Ok(()));
        assert_eq!(
            claims.permits(&[crate::scope::MAIL], 1_800_000_600 + SKEW_SECONDS),
            Err(TokenError::Lifetime)
        );
        let refused = claims.permits(&[crate::scope::CALENDARS], 1_800_000_000).unwrap_err();
        assert_eq!(refused, TokenError::InsufficientScope(crate::scope::CALENDARS.into()));
        assert_eq!(refused.bearer_error(), BearerError::InsufficientScope);
        assert_eq!(TokenError::Signature.bearer_error(), BearerError::InvalidToken);
    }

    #[test]
    fn typ() {
        assert!(is_access_token_typ("at+jwt", false));
        assert!(is_access_token_typ("Application/AT+JWT", false));
        assert!(!is_access_token_typ("JWT", false));
        assert!(is_access_token_typ("jwt", true));
        assert!(!is_access_token_typ("dpop+jwt", true));
    }
}
