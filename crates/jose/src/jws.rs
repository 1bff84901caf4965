//! JWS compact serialization (RFC 7515 §7.1) for the algorithms in [`Algorithm`].
//!
//! The header is read before anything else so that `alg` is checked against the allow-list and
//! a `jwk` with private members is refused, which a general JOSE library does not do for us.

use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::base64url;
use serde_json::{Map, Value};

use crate::Error;
use crate::key::{Algorithm, PrivateKey, VerifyingKey};

/// The longest compact JWS accepted, in bytes. Software statements and client assertions are a
/// few hundred bytes; 16 KiB leaves room for long metadata without inviting abuse.
pub const MAX_COMPACT_BYTES: usize = 16 * 1024;

/// A compact JWS whose structure and algorithm are acceptable, not yet verified.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    algorithm: Algorithm,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl<'a> UnverifiedJws<'a> {
    /// Splits and decodes a compact JWS; the header and payload must be JSON objects and `alg`
    /// must be ES256 or EdDSA.
    pub fn parse(compact: &'a str) -> Result<Self, Error> {
        if compact.len() > MAX_COMPACT_BYTES {
            return Err(Error::Malformed("the JWS is too long"));
        }
        let mut parts = compact.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("a compact JWS has exactly three parts"));
        };
        let header = decode_object(header)
            .ok_or(Error::Malformed("the JWS header is not a base64url JSON object"))?;
        let algorithm = match header.get("alg").and_then(Value::as_str) {
            Some(name) => {
                Algorithm::parse(name).ok_or_else(|| Error::Algorithm(crate::shown(name)))?
            }
            None => return Err(Error::Malformed("the JWS header has no alg")),
        };
        // RFC 7515 §4.1.11: a `crit` we do not understand makes the JWS invalid, and we
        // understand no extensions.
        if header.contains_key("crit") {
            return Err(Error::Malformed("the JWS header has crit extensions"));
        }
        let claims = decode_object(payload)
            .ok_or(Error::Malformed("the JWS payload is not a base64url JSON object"))?;
        let signature = base64url::decode(signature)
            .ok_or(Error::Malformed("the JWS signature is not base64url"))?;
        let signing_input = &compact[..compact.len() - signature_len(compact)];
        Ok(Self { signing_input, signature, algorithm, header, claims })
    }

    /// The header's `alg`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims, unverified: use them only to find the key.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Verifies the signature with the first key that fits (same `kid` when the header names
    /// one, same algorithm) and returns the claims.
    pub fn verify(self, keys: &[VerifyingKey]) -> Result<Map<String, Value>, Error> {
        let kid = self.kid();
        let verified = keys
            .iter()
            .filter(|key| key.algorithm() == self.algorithm)
            .filter(|key| kid.is_none() || key.kid().is_none() || key.kid() == kid)
            .any(|key| key.verify(self.algorithm, self.signing_input.as_bytes(), &self.signature));
        if verified { Ok(self.claims) } else { Err(Error::Signature) }
    }
}

/// Signs claims with a header of `alg`, `typ` and `kid`.
pub fn sign(
    key: &PrivateKey,
    kid: Option<&str>,
    typ: &str,
    claims: &Map<String, Value>,
    random: &dyn SecureRandom,
) -> Result<String, Error> {
    let mut header = Map::new();
    header.insert("typ".into(), typ.into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    sign_with_header(key, header, claims, random)
}

/// Signs claims with the given header members (a DPoP proof's `jwk`, for example); `alg` is
/// set from the key, whatever the header says.
pub fn sign_with_header(
    key: &PrivateKey,
    mut header: Map<String, Value>,
    claims: &Map<String, Value>,
    random: &dyn SecureRandom,
) -> Result<String, Error> {
    header.insert("alg".into(), key.algorithm().as_str().into());
    let header = serde_json::to_vec(&header).map_err(|_| Error::Signing)?;
    let claims = serde_json::to_vec(claims).map_err(|_| Error::Signing)?;
    let signing_input = format!("{}.{}", base64url::encode(header), base64url::encode(claims));
    let signature = key.sign(signing_input.as_bytes(), random)?;
    Ok(format!("{signing_input}.{}", base64url::encode(signature)))
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&base64url::decode(part)?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// The length of the last part and its dot.
fn signature_len(compact: &str) -> usize {
    compact.rsplit('.').next().map_or(0, |signature| signature.len() + 1)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use serde_json::json;

    use super::*;

    fn claims() -> Map<String, Value> {
        json!({"iss": "https://vendor.example", "software_id": "mail"})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let random = SystemRandom::new();
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let compact = sign(&key, Some("k1"), "JWT", &claims(), &random).unwrap();
        let verifying = VerifyingKey::from_jwk(&key.public_jwk(Some("k1".into()))).unwrap();
        let parsed = UnverifiedJws::parse(&compact).unwrap();
        assert_eq!(parsed.kid(), Some("k1"));
        assert_eq!(parsed.verify(std::slice::from_ref(&verifying)).unwrap(), claims());
        let other = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let stranger = VerifyingKey::from_jwk(&other.public_jwk(None)).unwrap();
        assert!(matches!(
            UnverifiedJws::parse(&compact).unwrap().verify(&[stranger]),
            Err(Error::Signature)
        ));
    }

    #[test]
    fn refuses_none_hmac_and_malformed_tokens() {
        let payload = base64url::encode(b"{\"iss\":\"x\"}");
        for alg in ["none", "HS256", "RS256"] {
            let header = base64url::encode(format!("{{\"alg\":\"{alg}\"}}"));
            let compact = format!("{header}.{payload}.");
            assert!(matches!(UnverifiedJws::parse(&compact), Err(Error::Algorithm(_))), "{alg}");
        }
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(MAX_COMPACT_BYTES + 1)] {
            assert!(matches!(UnverifiedJws::parse(bad), Err(Error::Malformed(_))), "{bad:.20}");
        }
    }

    #[test]
    fn interoperates_with_jsonwebtoken() {
        // jsonwebtoken is an independent implementation: what it signs we verify, and what we
        // sign it verifies.
        let random = SystemRandom::new();
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_ec_der(key.pkcs8_der());
        let theirs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims(),
            &encoding,
        )
        .unwrap();
        let verifying = VerifyingKey::from_jwk(&key.public_jwk(None)).unwrap();
        assert_eq!(UnverifiedJws::parse(&theirs).unwrap().verify(&[verifying]).unwrap(), claims());

        let ours = sign(&key, None, "JWT", &claims(), &random).unwrap();
        let public = key.public_jwk(None);
        let decoding =
            jsonwebtoken::DecodingKey::from_ec_components(&public.x, public.y.as_deref().unwrap())
                .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<Value>(&ours, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["software_id"], "mail");
    }
}
