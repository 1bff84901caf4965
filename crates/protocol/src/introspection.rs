//! Token introspection (RFC 7662): the request (§2.1) and the response (§2.2), both
//! directions. A resource server (or Dovecot's `oauth2` passdb) writes the request and reads
//! the response; the server reads the request and writes the response. An active token's
//! response carries its RFC 9068 claims ([`AccessTokenClaims`]), the members RFC 7662 §2.2
//! names the same way (`scope`, `client_id`, `sub`, `exp`, `iat`, `aud`, `iss`, `jti`...).

use serde_json::{Map, Value};

use crate::access_token::AccessTokenClaims;
use crate::params::Params;
use crate::revocation::{self, TokenParameterError};

/// An introspection request (RFC 7662 §2.1). The caller authenticates in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// `token` (required): the token to look at.
    pub token: String,
    /// `token_type_hint` (optional), as sent (RFC 7662 §2.1, the values of RFC 7009 §2.1).
    pub token_type_hint: Option<String>,
}

impl IntrospectionRequest {
    /// Reads a request's form (RFC 7662 §2.1).
    pub fn from_params(params: &Params) -> Result<Self, TokenParameterError> {
        let (token, token_type_hint) = revocation::read(params)?;
        Ok(Self { token, token_type_hint })
    }

    /// The request as form parameters, `token` then `token_type_hint`.
    pub fn to_params(&self) -> Params {
        revocation::write(&self.token, self.token_type_hint.as_deref())
    }
}

/// An introspection response (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectionResponse {
    /// `{"active": false}`, and nothing else: RFC 7662 §2.2 asks a server not to say why.
    Inactive,
    /// `"active": true` with the token's claims and its `token_type` (`DPoP` for a bound token,
    /// else `Bearer`: RFC 7662 §2.2, RFC 9449 §6).
    Active(Box<AccessTokenClaims>),
}

impl IntrospectionResponse {
    /// The response as a JSON object, its members in name order.
    pub fn to_object(&self) -> Map<String, Value> {
        match self {
            Self::Inactive => {
                let mut object = Map::new();
                object.insert("active".into(), false.into());
                object
            }
            Self::Active(claims) => {
                let mut object = claims.to_json();
                object.insert("active".into(), true.into());
                object.insert("token_type".into(), claims.token_type().into());
                object
            }
        }
    }

    /// The response as JSON.
    pub fn to_json(&self) -> String {
        Value::Object(self.to_object()).to_string()
    }

    /// Reads a response: `active` must be a boolean (RFC 7662 §2.2); an active token's members
    /// must be Letterlock's claims. `None` otherwise.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else { return None };
        if object.get("active")?.as_bool()? {
            AccessTokenClaims::from_json(&object).map(|claims| Self::Active(Box::new(claims)))
        } else {
            Some(Self::Inactive)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            issuer: "https://auth.example.com".into(),
            subject: "alice@example.com".into(),
            audience: vec!["imaps://mail.example.com".into()],
            client_id: "ll1.x.y".into(),
            scopes: vec!["urn:ietf:params:oauth:scope:mail".into()],
            jti: "j".into(),
            issued_at: Some(1_000),
            expires_at: 1_600,
            grant_id: "g".into(),
            ..AccessTokenClaims::default()
        }
    }

    #[test]
    fn requests_both_ways() {
        let request = IntrospectionRequest { token: "t".into(), token_type_hint: None };
        assert_eq!(request.to_params().encode(), "token=t");
        let params = Params::parse(&request.to_params().encode()).unwrap();
        assert_eq!(IntrospectionRequest::from_params(&params), Ok(request));
        let missing = Params::parse("token_type_hint=access_token").unwrap();
        assert_eq!(
            IntrospectionRequest::from_params(&missing),
            Err(TokenParameterError::TokenMissing)
        );
    }

    #[test]
    fn inactive_says_nothing_else() {
        let json = IntrospectionResponse::Inactive.to_json();
        assert_eq!(json, r#"{"active":false}"#);
        assert_eq!(
            IntrospectionResponse::from_json(json.as_bytes()),
            Some(IntrospectionResponse::Inactive)
        );
    }

    #[test]
    fn active_carries_the_claims_and_the_token_type() {
        let active = IntrospectionResponse::Active(Box::new(claims()));
        let json = active.to_json();
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            json!({
                "active": true,
                "token_type": "Bearer",
                "iss": "https://auth.example.com",
                "sub": "alice@example.com",
                "aud": "imaps://mail.example.com",
                "client_id": "ll1.x.y",
                "scope": "urn:ietf:params:oauth:scope:mail",
                "jti": "j",
                "iat": 1_000,
                "exp": 1_600,
                "grant_id": "g",
            })
        );
        assert!(json.starts_with(r#"{"active":true,"aud":"imaps://mail.example.com","#));
        assert_eq!(IntrospectionResponse::from_json(json.as_bytes()), Some(active));
        let bound = IntrospectionResponse::Active(Box::new(AccessTokenClaims {
            jkt: Some("k".repeat(43)),
            ..claims()
        }));
        assert_eq!(bound.to_object()["token_type"], "DPoP");
        assert_eq!(IntrospectionResponse::from_json(bound.to_json().as_bytes()), Some(bound));
    }

    #[test]
    fn active_must_be_a_boolean() {
        let bodies: [&[u8]; 4] = [br#"{"active":"true"}"#, b"{}", b"[]", br#"{"active":true}"#];
        for body in bodies {
            assert_eq!(IntrospectionResponse::from_json(body), None);
        }
    }
}
