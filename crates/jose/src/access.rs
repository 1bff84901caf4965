//! Checking RFC 9068 access tokens where they are used: at a front door that has only the
//! issuer's published JWKS, not its private keys.
//!
//! [`AccessTokenVerifier::verify`] checks the header (`typ: at+jwt`, an allowed algorithm, a
//! known `kid`), the signature, `iss`, that this resource is in `aud` (a string or an array,
//! compared as identifiers), `exp`/`nbf`/`iat` with a small
//! skew, and the required scope. An unknown `kid` is reported as such, so the caller can refetch
//! the JWKS once and try again (keys rotate: new ones are published before they sign).
//! Revocation (the grant) is the caller's check: it needs the revocation feed.

use serde_json::{Map, Value};

use letterlock_protocol::{Resource, access_token, jwk};

use crate::jws::UnverifiedJws;
use crate::key::VerifyingKey;

pub use letterlock_protocol::access_token::{AccessTokenClaims, SKEW_SECONDS, TokenError};

/// Verifies access tokens for one resource.
#[derive(Debug, Clone)]
pub struct AccessTokenVerifier {
    issuer: String,
    audience: String,
    /// The audience as an identifier, when it parses as one (RFC 3986 §6.2.2-6.2.3).
    resource: Option<Resource>,
    keys: Vec<VerifyingKey>,
    accept_jwt_typ: bool,
}

impl AccessTokenVerifier {
    /// A verifier for tokens from `issuer` for `audience`, with the issuer's JWKS document.
    /// Keys that are not P-256 or Ed25519 signing keys are skipped.
    pub fn new(issuer: &str, audience: &str, jwks: &Value) -> Self {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| jwk::PublicJwk::from_json(key).ok())
                    .filter_map(|key| VerifyingKey::from_jwk(&key).ok())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            resource: Resource::parse(audience).ok(),
            keys,
            accept_jwt_typ: false,
        }
    }

    /// Also accepts `typ: JWT`, for a resource whose tokens the issuer makes in Dovecot 2.3's
    /// profile (which refuses `at+jwt`). Off by default, as RFC 9068 §4 asks.
    pub fn accept_jwt_typ(mut self, accept: bool) -> Self {
        self.accept_jwt_typ = accept;
        self
    }

    /// How many usable keys the verifier holds.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Checks a token at time `now`, requiring one of the scopes `any_of`.
    pub fn verify(
        &self,
        token: &str,
        any_of: &[&str],
        now: i64,
    ) -> Result<AccessTokenClaims, TokenError> {
        let jws = UnverifiedJws::parse(token)
            .map_err(|error| TokenError::Malformed(error.to_string()))?;
        // RFC 9068 §2.1 and §4: `typ` is `at+jwt` (or `application/at+jwt`), which keeps other
        // JWTs (ID tokens, client assertions) from passing as access tokens.
        let typ = jws.header().get("typ").and_then(Value::as_str).unwrap_or("");
        if !access_token::is_access_token_typ(typ, self.accept_jwt_typ) {
            return Err(TokenError::Malformed("typ must be at+jwt".into()));
        }
        let kid = jws.kid().ok_or(TokenError::Malformed("no kid".into()))?.to_owned();
        let key = self
            .keys
            .iter()
            .find(|key| key.kid() == Some(kid.as_str()))
            .ok_or_else(|| TokenError::UnknownKey(crate::shown(&kid)))?;
        let claims = jws.verify(std::slice::from_ref(key)).map_err(|_| TokenError::Signature)?;
        check_claims(&claims, &self.issuer, |one| self.is_audience(one), any_of, now)
    }

    /// RFC 7519 §4.1.3 and RFC 9068 §4: `one` of the token's audiences names this resource,
    /// written as configured or as another spelling of the same identifier (RFC 3986 §6.2.3:
    /// `imaps://mail.example.com:993` is `imaps://mail.example.com`).
    fn is_audience(&self, one: &str) -> bool {
        one == self.audience || self.resource.as_ref().is_some_and(|resource| resource.is(one))
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    is_audience: impl Fn(&str) -> bool,
    any_of: &[&str],
    now: i64,
) -> Result<AccessTokenClaims, TokenError> {
    let text = |name: &'static str| {
        claims.get(name).and_then(Value::as_str).ok_or(TokenError::Claim(name))
    };
    let number = |name: &'static str| {
        claims.get(name).and_then(Value::as_i64).ok_or(TokenError::Claim(name))
    };
    if text("iss")? != issuer {
        return Err(TokenError::Issuer);
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => {
            many.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => return Err(TokenError::Claim("aud")),
    };
    // RFC 7519 §4.1.3: the token may be for several services (one asked without `resource`);
    // this one must be among them.
    let audience_matches = audiences.iter().any(|one| is_audience(one));
    if !audience_matches {
        return Err(TokenError::Audience);
    }
    let expires_at = number("exp")?;
    let mut times = [None, None];
    for (index, name) in ["nbf", "iat"].into_iter().enumerate() {
        if let Some(value) = claims.get(name) {
            let time = value.as_i64().ok_or(TokenError::Claim(if name == "nbf" {
                "nbf"
            } else {
                "iat"
            }))?;
            if time > now + SKEW_SECONDS {
                return Err(TokenError::Lifetime);
            }
            times[index] = Some(time);
        }
    }
    let scopes: Vec<String> = text("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect();
    let [not_before, issued_at] = times;
    let claims = AccessTokenClaims {
        issuer: issuer.to_owned(),
        audience: audiences,
        issued_at,
        not_before,
        auth_time: claims.get("auth_time").and_then(Value::as_i64),
        subject: text("sub")?.to_owned(),
        client_id: text("client_id")?.to_owned(),
        grant_id: text("grant_id")?.to_owned(),
        jti: text("jti")?.to_owned(),
        expires_at,
        scopes,
        jkt: claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    claims.permits(any_of, now)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use serde_json::json;

    use super::*;
    use crate::keyring::{SigningKey, SigningKeyRing};
    use crate::{Algorithm, PrivateKey};

    const ISSUER: &str = "https://auth.example.com";
    const IMAP: &str = "imaps://mail.example.com";
    const MAIL: &str = "urn:ietf:params:oauth:scope:mail";
    const NOW: i64 = 1_800_000_000;

    fn ring(kid: &str) -> SigningKeyRing {
        let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        SigningKeyRing::new(
            vec![SigningKey { kid: kid.into(), key, created_at: 0, activates_at: 0 }],
            600,
        )
    }

    fn token(ring: &SigningKeyRing, changes: Value) -> String {
        let mut claims = json!({
            "iss": ISSUER, "sub": "alice@example.com", "aud": IMAP, "client_id": "ll1.x.y",
            "scope": MAIL, "jti": "j1", "iat": NOW, "exp": NOW + 600, "grant_id": "g1",
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        ring.sign("at+jwt", claims.as_object().unwrap(), NOW, &SystemRandom::new()).unwrap()
    }

    #[test]
    fn a_good_token_gives_the_claims_a_front_door_needs() {
        let ring = ring("k1");
        let verifier = AccessTokenVerifier::new(ISSUER, IMAP, &ring.jwks(NOW));
        assert_eq!(verifier.key_count(), 1);
        let claims = verifier
            .verify(&token(&ring, json!({"cnf": {"jkt": "thumb"}})), &[MAIL], NOW + 10)
            .unwrap();
        assert_eq!(claims.subject, "alice@example.com");
        assert_eq!(claims.grant_id, "g1");
        assert_eq!(claims.expires_at, NOW + 600);
        assert_eq!(claims.jkt.as_deref(), Some("thumb"));
    }

    #[test]
    fn every_wrong_claim_is_refused_with_its_reason() {
        let ring = ring("k1");
        let verifier = AccessTokenVerifier::new(ISSUER, IMAP, &ring.jwks(NOW));
        let cases = [
            (json!({"iss": "https://evil.example"}), TokenError::Issuer),
            (json!({"aud": "https://dav.example.com/caldav/"}), TokenError::Audience),
            (json!({"exp": NOW - 31}), TokenError::Lifetime),
            (json!({"nbf": NOW + 120}), TokenError::Lifetime),
            (
                json!({"scope": "urn:ietf:params:oauth:scope:calendars"}),
                TokenError::InsufficientScope(MAIL.into()),
            ),
            (json!({"grant_id": null}), TokenError::Claim("grant_id")),
            (json!({"sub": null}), TokenError::Claim("sub")),
        ];
        for (changes, error) in cases {
            assert_eq!(
                verifier.verify(&token(&ring, changes.clone()), &[MAIL], NOW),
                Err(error),
                "{changes}"
            );
        }
        assert_eq!(TokenError::InsufficientScope(MAIL.into()).status(), "insufficient_scope");
        assert_eq!(TokenError::Audience.status(), "invalid_token");
    }

    /// Issue 16 point 2: a token asked without `resource` names every service its scope
    /// reaches; each door finds itself in the array, in any spelling of its identifier, and a
    /// door that is not in it still refuses.
    #[test]
    fn an_audience_array_holding_this_resource_is_accepted() {
        let ring = ring("k1");
        let both = json!({"aud": [IMAP, "smtps://mail.example.com"]});
        for door in [IMAP, "smtps://mail.example.com", "IMAPS://Mail.Example.com:993/"] {
            let verifier = AccessTokenVerifier::new(ISSUER, door, &ring.jwks(NOW));
            assert!(verifier.verify(&token(&ring, both.clone()), &[MAIL], NOW).is_ok(), "{door}");
        }
        let spelled = json!({"aud": ["imaps://MAIL.example.com:993"]});
        let imap = AccessTokenVerifier::new(ISSUER, IMAP, &ring.jwks(NOW));
        assert!(imap.verify(&token(&ring, spelled), &[MAIL], NOW).is_ok());
        for door in [
            "pop3s://mail.example.com",
            "imaps://mail.example.com:994",
            "imaps://mail.example.org",
            "https://dav.example.com/",
        ] {
            let verifier = AccessTokenVerifier::new(ISSUER, door, &ring.jwks(NOW));
            assert_eq!(
                verifier.verify(&token(&ring, both.clone()), &[MAIL], NOW),
                Err(TokenError::Audience),
                "{door}"
            );
        }
        for aud in [json!([]), json!([5, "imaps://x"]), json!({"imaps://mail.example.com": 1})] {
            let refused = imap.verify(&token(&ring, json!({"aud": aud.clone()})), &[MAIL], NOW);
            assert!(refused.is_err(), "{aud}");
        }
    }

    #[test]
    fn unknown_keys_forged_signatures_and_other_typs() {
        let ring = ring("k1");
        let verifier = AccessTokenVerifier::new(ISSUER, IMAP, &ring.jwks(NOW));
        let rotated = self::ring("k2");
        assert_eq!(
            verifier.verify(&token(&rotated, json!({})), &[MAIL], NOW),
            Err(TokenError::UnknownKey("k2".into()))
        );
        let impostor = self::ring("k1");
        assert_eq!(
            verifier.verify(&token(&impostor, json!({})), &[MAIL], NOW),
            Err(TokenError::Signature)
        );
        let claims = json!({"iss": ISSUER, "aud": IMAP, "scope": MAIL, "exp": NOW + 60});
        let id_token =
            ring.sign("JWT", claims.as_object().unwrap(), NOW, &SystemRandom::new()).unwrap();
        assert!(matches!(verifier.verify(&id_token, &[MAIL], NOW), Err(TokenError::Malformed(_))));
        assert!(matches!(verifier.verify("garbage", &[MAIL], NOW), Err(TokenError::Malformed(_))));
        let empty = AccessTokenVerifier::new(
            ISSUER,
            IMAP,
            &json!({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}),
        );
        assert_eq!(empty.key_count(), 0, "keys Letterlock does not sign with are skipped");
    }

    /// Issue 14 (log injection): a `kid` or `alg` with CR and LF cannot forge log lines through
    /// the refusal that the doors log, and a huge one cannot fill the log.
    #[test]
    fn header_values_in_refusals_are_escaped_and_bounded() {
        use letterlock_protocol::base64url;
        let verifier = AccessTokenVerifier::new(ISSUER, IMAP, &ring("k1").jwks(NOW));
        let forged = "x\r\n2026-12-01T00:00:00Z  INFO token refused peer=198.51.100.7:1";
        for header in [
            json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("{forged}{}", "y".repeat(2_000))}),
            json!({"alg": forged, "typ": "at+jwt", "kid": "k1"}),
        ] {
            let token = format!("{}.e30.AAAA", base64url::encode(header.to_string()));
            let refusal = verifier.verify(&token, &[MAIL], NOW).unwrap_err().to_string();
            assert!(
                !refusal.contains(['\r', '\n']) && refusal.contains("x\\r\\n2026"),
                "{refusal}"
            );
            assert!(refusal.len() < 200, "{refusal}");
        }
    }
}
