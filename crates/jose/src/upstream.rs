//! ID tokens of an upstream OpenID provider ("Sign in with ..."), checked against that
//! provider's published JWKS (OpenID Connect Core §3.1.3.7).
//!
//! This is the one place where the crate verifies RSA: an upstream provider signs with what it
//! chooses, and `RS256` is OpenID Connect's default (Core §3.1.3.7 step 7, Discovery §3
//! `id_token_signing_alg_values_supported` "MUST include RS256"). Nothing here signs, and the
//! rest of the crate keeps to ES256 and EdDSA.
//!
//! What is checked, in order, and never skipped:
//! - the header: a compact JWS of at most [`MAX_ID_TOKEN_BYTES`], `alg` on the allow-list
//!   ([`UpstreamAlgorithm`]: no `none`, no HMAC, which would let anyone who read the JWKS sign
//!   with the public key as the secret), no `crit`;
//! - the key: the JWKS key with the header's `kid` (or, without a `kid`, any key of the right
//!   type), whose type fits `alg` and whose own `alg`, if it names one, is the header's;
//! - the signature;
//! - the claims: `iss` exactly the issuer, `aud` holding the client id (and `azp`, when present or
//!   when there are several audiences, the client id), `exp` not past and `iat` not in the
//!   future (each with [`LEEWAY_SECONDS`]), `nonce` exactly the one sent, `sub` present.
//!
//! ```
//! use letterlock_jose::upstream::{Expected, UpstreamKeys, UpstreamTokenError, verify_id_token};
//! let keys = UpstreamKeys::from_jwks(&serde_json::json!({"keys": []}));
//! let expected = Expected {
//!     issuer: "https://id.example.com",
//!     client_id: "letterlock",
//!     nonce: "n-0S6_WzA2Mj",
//!     now: 1_800_000_000,
//! };
//! // `{"alg":"none"}` is refused before any key is looked at.
//! let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
//! assert!(matches!(
//!     verify_id_token(token, &keys, &expected),
//!     Err(UpstreamTokenError::Algorithm(_))
//! ));
//! ```

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512, RsaParameters,
    RsaPublicKeyComponents, VerificationAlgorithm,
};
use letterlock_protocol::base64url;
use serde_json::{Map, Value};

/// The longest ID token accepted, in bytes. A provider's ID token with an RSA-4096 signature
/// and a handful of claims is under 2 KiB; 32 KiB leaves room for generous claims.
pub const MAX_ID_TOKEN_BYTES: usize = 32 * 1024;

/// Clock difference tolerated between the provider and this server on `exp` and `iat`
/// (OpenID Connect Core §3.1.3.7 steps 9 and 10 leave it to the client): one minute.
pub const LEEWAY_SECONDS: i64 = 60;

/// The most keys read from one JWKS. Providers publish two or three (the current key and the
/// next or the last); the bound keeps a hostile document from costing much.
pub const MAX_KEYS: usize = 16;

/// An upstream provider's signing algorithm that Letterlock verifies (RFC 7518 §3.1). `none`
/// and the HMAC algorithms are not on the list and cannot be added: an ID token is verified with
/// public keys only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), OpenID Connect's default.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 and MGF1 (RFC 7518 §3.5).
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519 (RFC 8037 §3.1).
    EdDsa,
}

impl UpstreamAlgorithm {
    /// Every algorithm on the list, in RFC 7518's order.
    pub const ALL: [Self; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Es256,
        Self::Es384,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::EdDsa,
    ];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses an `alg` value from the allow-list; `None` for everything else, `none` and
    /// `HS256` among them.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|algorithm| algorithm.as_str() == text)
    }

    fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        match self {
            Self::Rs256 => Some(&RSA_PKCS1_2048_8192_SHA256),
            Self::Rs384 => Some(&RSA_PKCS1_2048_8192_SHA384),
            Self::Rs512 => Some(&RSA_PKCS1_2048_8192_SHA512),
            Self::Ps256 => Some(&RSA_PSS_2048_8192_SHA256),
            Self::Ps384 => Some(&RSA_PSS_2048_8192_SHA384),
            Self::Ps512 => Some(&RSA_PSS_2048_8192_SHA512),
            Self::Es256 | Self::Es384 | Self::EdDsa => None,
        }
    }
}

impl fmt::Display for UpstreamAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a key is, from its JWK members (RFC 7518 §6).
#[derive(Clone)]
enum KeyMaterial {
    /// `kty: RSA`: the modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `kty: EC, crv: P-256`, or `P-384`: the uncompressed point.
    Ec { p384: bool, point: Vec<u8> },
    /// `kty: OKP, crv: Ed25519`.
    Ed25519(Vec<u8>),
}

/// One usable public key of the provider's JWKS.
#[derive(Clone)]
struct UpstreamKey {
    kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the key signs with that alone.
    alg: Option<String>,
    material: KeyMaterial,
}

impl UpstreamKey {
    /// True when this key may verify `algorithm`: its type fits, and its `alg` (if any) is it.
    fn fits(&self, algorithm: UpstreamAlgorithm) -> bool {
        use UpstreamAlgorithm as A;
        let type_fits = match (&self.material, algorithm) {
            (KeyMaterial::Rsa { .. }, A::Rs256 | A::Rs384 | A::Rs512)
            | (KeyMaterial::Rsa { .. }, A::Ps256 | A::Ps384 | A::Ps512)
            | (KeyMaterial::Ed25519(_), A::EdDsa) => true,
            (KeyMaterial::Ec { p384, .. }, A::Es256) => !p384,
            (KeyMaterial::Ec { p384, .. }, A::Es384) => *p384,
            _ => false,
        };
        type_fits && self.alg.as_deref().is_none_or(|alg| alg == algorithm.as_str())
    }

    fn verify(&self, algorithm: UpstreamAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Rsa { n, e } => algorithm.rsa_parameters().is_some_and(|parameters| {
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                    .verify(parameters, message, signature)
                    .is_ok()
            }),
            KeyMaterial::Ec { p384, point } => {
                let curve: &'static dyn VerificationAlgorithm =
                    if *p384 { &ECDSA_P384_SHA384_FIXED } else { &ECDSA_P256_SHA256_FIXED };
                ParsedPublicKey::new(curve, point.as_slice())
                    .is_ok_and(|key| key.verify_sig(message, signature).is_ok())
            }
            KeyMaterial::Ed25519(key) => ParsedPublicKey::new(&ED25519, key.as_slice())
                .is_ok_and(|key| key.verify_sig(message, signature).is_ok()),
        }
    }
}

/// The provider's signing keys, from its JWKS (RFC 7517 §5). Keys this crate cannot use are
/// left out rather than refused, since a provider's set also holds encryption keys and keys
/// for algorithms it does not sign ID tokens with: `use` other than `sig`, private or symmetric
/// members (`d`, `k`, ...), RSA moduli under 2048 bits, unknown types and curves.
#[derive(Clone, Default)]
pub struct UpstreamKeys {
    keys: Vec<UpstreamKey>,
}

impl fmt::Debug for UpstreamKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<Option<&str>> = self.keys.iter().map(|key| key.kid.as_deref()).collect();
        formatter.debug_struct("UpstreamKeys").field("kids", &kids).finish()
    }
}

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl UpstreamKeys {
    /// Reads the usable keys of a JWKS document (`{"keys": [...]}`); anything else gives none.
    pub fn from_jwks(jwks: &Value) -> Self {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().take(MAX_KEYS).filter_map(parse_key).collect())
            .unwrap_or_default();
        Self { keys }
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_key(value: &Value) -> Option<UpstreamKey> {
    let object = value.as_object()?;
    if PRIVATE_MEMBERS.iter().any(|member| object.contains_key(*member)) {
        return None;
    }
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    if object.get("use").is_some_and(|value| value.as_str() != Some("sig")) {
        return None;
    }
    let bytes = |name: &str| text(name).and_then(base64url::decode);
    let material = match (text("kty")?, text("crv")) {
        ("RSA", _) => {
            // RFC 7518 §6.3.1.1: the minimum number of octets; a stray leading zero is dropped
            // rather than refused, since the value is the same.
            let n = strip_leading_zeros(bytes("n")?);
            let e = strip_leading_zeros(bytes("e")?);
            // RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used".
            if n.len() < 256 || e.is_empty() {
                return None;
            }
            KeyMaterial::Rsa { n, e }
        }
        ("EC", Some(curve @ ("P-256" | "P-384"))) => {
            let size = if curve == "P-384" { 48 } else { 32 };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != size || y.len() != size {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial::Ec { p384: curve == "P-384", point }
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            KeyMaterial::Ed25519(x)
        }
        _ => return None,
    };
    let alg = text("alg").map(str::to_owned);
    if alg.as_deref().is_some_and(|alg| UpstreamAlgorithm::parse(alg).is_none()) {
        return None;
    }
    let kid = text("kid").filter(|kid| kid.len() <= 256).map(str::to_owned);
    Some(UpstreamKey { kid, alg, material })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// What the ID token must say: the provider's issuer, this server's client id at the provider,
/// and the nonce this sign-in sent (OpenID Connect Core §3.1.2.1), at `now`.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer identifier, exactly as its discovery document gives it.
    pub issuer: &'a str,
    /// Letterlock's client id at the provider.
    pub client_id: &'a str,
    /// The nonce sent in this sign-in's authorization request.
    pub nonce: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

/// Why an upstream ID token was refused. Each names the check that failed; none carries the
/// token. The variants that hold a value the provider chose show it through [`crate::shown`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamTokenError {
    /// Not a compact JWS with JSON header and claims, or too long.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// `alg` is not on the allow-list: `none`, an HMAC algorithm or an unknown one.
    #[error("the ID token's algorithm '{0}' is not accepted (never none or HMAC)")]
    Algorithm(String),
    /// No key in the JWKS has the header's `kid` (refetch the JWKS once, then refuse), or no
    /// key fits the algorithm.
    #[error("no key of the provider's JWKS fits the ID token (kid '{0}')")]
    UnknownKey(String),
    /// The signature does not verify under the key the header names.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// OpenID Connect Core §3.1.3.7 step 2: `iss` is not the provider's issuer.
    #[error("the ID token was issued by someone else")]
    Issuer,
    /// §3.1.3.7 step 3: `aud` does not hold this server's client id.
    #[error("the ID token is for another client")]
    Audience,
    /// §3.1.3.7 steps 4 and 5: several audiences without `azp`, or an `azp` that is not this
    /// server's client id.
    #[error("the ID token was issued to another party (azp)")]
    AuthorizedParty,
    /// §3.1.3.7 step 9: `exp` is past.
    #[error("the ID token has expired")]
    Expired,
    /// §3.1.3.7 step 10: `iat` is in the future.
    #[error("the ID token was issued in the future")]
    IssuedInFuture,
    /// §3.1.3.7 step 11: the nonce is not this sign-in's.
    #[error("the ID token's nonce is not this sign-in's")]
    Nonce,
    /// A required claim is missing or of the wrong type.
    #[error("the ID token has no valid '{0}' claim")]
    Claim(&'static str),
}

/// Checks an upstream ID token (OpenID Connect Core §3.1.3.7, see the module documentation) and
/// returns its claims.
pub fn verify_id_token(
    compact: &str,
    keys: &UpstreamKeys,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, UpstreamTokenError> {
    use UpstreamTokenError as E;
    if compact.len() > MAX_ID_TOKEN_BYTES {
        return Err(E::Malformed("too long"));
    }
    let mut parts = compact.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(E::Malformed("a compact JWS has exactly three parts"));
    };
    let header = decode_object(header).ok_or(E::Malformed("the header is not a JSON object"))?;
    // RFC 8725 §3.1: the algorithm is checked against the allow-list before anything else;
    // `none` and HMAC (the public key as the secret) end here.
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some(name) => {
            UpstreamAlgorithm::parse(name).ok_or_else(|| E::Algorithm(crate::shown(name)))?
        }
        None => return Err(E::Malformed("the header has no alg")),
    };
    // RFC 7515 §4.1.11: a `crit` we do not understand makes the JWS invalid; we understand none.
    if header.contains_key("crit") {
        return Err(E::Malformed("the header has crit extensions"));
    }
    let claims = decode_object(payload).ok_or(E::Malformed("the claims are not a JSON object"))?;
    let signature =
        base64url::decode(signature).ok_or(E::Malformed("the signature is not base64url"))?;
    let signing_input = &compact[..header_and_payload_len(compact)];
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(E::Malformed("the kid is not a string")),
    };
    // OpenID Connect Core §10.1: with a `kid`, the key it names; without one, the provider
    // must have one key of this type, and any that fits is tried.
    let mut candidates =
        keys.keys.iter().filter(|key| kid.is_none() || key.kid.as_deref() == kid).peekable();
    if candidates.peek().is_none() {
        return Err(E::UnknownKey(crate::shown(kid.unwrap_or("(none)"))));
    }
    let mut fitting = candidates.filter(|key| key.fits(algorithm)).peekable();
    if fitting.peek().is_none() {
        // The header's `kid` names a key of another type: an algorithm confusion attempt
        // (RS256 with an EC key, say) or a broken provider; either way no signature verifies.
        return Err(E::Signature);
    }
    if !fitting.any(|key| key.verify(algorithm, signing_input.as_bytes(), &signature)) {
        return Err(E::Signature);
    }
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The claims after the signature (OpenID Connect Core §3.1.3.7 steps 2 to 11).
fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(), UpstreamTokenError> {
    use UpstreamTokenError as E;
    let text = |name: &'static str| claims.get(name).and_then(Value::as_str).ok_or(E::Claim(name));
    let number =
        |name: &'static str| claims.get(name).and_then(Value::as_i64).ok_or(E::Claim(name));
    // Step 2: exact string comparison, no normalization (OpenID Connect Discovery §4.3).
    if text("iss")? != expected.issuer {
        return Err(E::Issuer);
    }
    // Step 3: `aud` is a string or an array of strings holding our client id.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => {
            let strings: Vec<&str> = many.iter().filter_map(Value::as_str).collect();
            if strings.len() != many.len() || strings.is_empty() {
                return Err(E::Claim("aud"));
            }
            strings
        }
        _ => return Err(E::Claim("aud")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(E::Audience);
    }
    // Steps 4 and 5: several audiences need an `azp`, and an `azp` must be us.
    match claims.get("azp") {
        None if audiences.len() > 1 => return Err(E::AuthorizedParty),
        None => {}
        Some(azp) if azp.as_str() == Some(expected.client_id) => {}
        Some(_) => return Err(E::AuthorizedParty),
    }
    // Step 9: the current time MUST be before `exp`.
    if number("exp")? + LEEWAY_SECONDS <= expected.now {
        return Err(E::Expired);
    }
    // Step 10: `iat` is required; one from the future is refused.
    if number("iat")? > expected.now + LEEWAY_SECONDS {
        return Err(E::IssuedInFuture);
    }
    if let Some(not_before) = claims.get("nbf")
        && not_before.as_i64().ok_or(E::Claim("nbf"))? > expected.now + LEEWAY_SECONDS
    {
        return Err(E::IssuedInFuture);
    }
    // Step 11: a nonce was sent, so the token MUST carry the same value.
    if claims.get("nonce").and_then(Value::as_str) != Some(expected.nonce) {
        return Err(E::Nonce);
    }
    // Core §2: `sub` is REQUIRED.
    if text("sub")?.is_empty() {
        return Err(E::Claim("sub"));
    }
    Ok(())
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&base64url::decode(part)?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// The length of `header.payload`, the signing input (RFC 7515 §5.2).
fn header_and_payload_len(compact: &str) -> usize {
    compact.rfind('.').unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::json;

    use super::*;
    use crate::{Algorithm, PrivateKey};

    const ISSUER: &str = "https://id.example.com";
    const CLIENT: &str = "letterlock";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected { issuer: ISSUER, client_id: CLIENT, nonce: NONCE, now: NOW }
    }

    fn claims(changes: Value) -> Map<String, Value> {
        let mut claims = json!({
            "iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
            "iat": NOW, "exp": NOW + 300, "email": "fay@example.com", "email_verified": true,
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims.as_object().unwrap().clone()
    }

    struct Rsa {
        pair: RsaKeyPair,
    }

    impl Rsa {
        fn new() -> Self {
            Self { pair: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap() }
        }

        fn jwk(&self, kid: &str) -> Value {
            let public = self.pair.public_key();
            json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": base64url::encode(public.modulus().big_endian_without_leading_zero()),
                "e": base64url::encode(public.exponent().big_endian_without_leading_zero()),
            })
        }

        fn sign(&self, header: Value, claims: &Map<String, Value>) -> String {
            let input = format!(
                "{}.{}",
                base64url::encode(header.to_string()),
                base64url::encode(Value::Object(claims.clone()).to_string())
            );
            let mut signature = vec![0; self.pair.public_modulus_len()];
            self.pair
                .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
                .unwrap();
            format!("{input}.{}", base64url::encode(signature))
        }
    }

    fn es256(kid: &str) -> (PrivateKey, Value) {
        let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let mut jwk = serde_json::to_value(key.public_jwk(Some(kid.into()))).unwrap();
        jwk["kty"] = "EC".into();
        (key, jwk)
    }

    fn es256_token(key: &PrivateKey, kid: &str, claims: &Map<String, Value>) -> String {
        let mut header = Map::new();
        header.insert("kid".into(), kid.into());
        crate::jws::sign_with_header(key, header, claims, &SystemRandom::new()).unwrap()
    }

    #[test]
    fn rs256_and_es256_tokens_verify() {
        let rsa = Rsa::new();
        let (ec, ec_jwk) = es256("ec1");
        let keys = UpstreamKeys::from_jwks(&json!({"keys": [rsa.jwk("rsa1"), ec_jwk]}));
        assert_eq!(keys.len(), 2);
        let token = rsa.sign(json!({"alg": "RS256", "kid": "rsa1"}), &claims(json!({})));
        let verified = verify_id_token(&token, &keys, &expected()).unwrap();
        assert_eq!(verified["email"], "fay@example.com");
        let token = es256_token(&ec, "ec1", &claims(json!({})));
        assert!(verify_id_token(&token, &keys, &expected()).is_ok());
        // Without a kid, the key of the right type is found.
        let token = rsa.sign(json!({"alg": "RS256"}), &claims(json!({})));
        assert!(verify_id_token(&token, &keys, &expected()).is_ok());
    }

    #[test]
    fn each_bad_claim_is_refused_with_its_reason() {
        let rsa = Rsa::new();
        let keys = UpstreamKeys::from_jwks(&json!({"keys": [rsa.jwk("k")]}));
        let cases = [
            (json!({"iss": "https://evil.example.com"}), UpstreamTokenError::Issuer),
            (json!({"iss": "https://id.example.com/"}), UpstreamTokenError::Issuer),
            (json!({"aud": "someone-else"}), UpstreamTokenError::Audience),
            (json!({"aud": ["someone-else", CLIENT]}), UpstreamTokenError::AuthorizedParty),
            (json!({"azp": "someone-else"}), UpstreamTokenError::AuthorizedParty),
            (json!({"aud": [CLIENT, 7]}), UpstreamTokenError::Claim("aud")),
            (json!({"exp": NOW - LEEWAY_SECONDS}), UpstreamTokenError::Expired),
            (json!({"iat": NOW + LEEWAY_SECONDS + 1}), UpstreamTokenError::IssuedInFuture),
            (json!({"nonce": "another"}), UpstreamTokenError::Nonce),
            (json!({"nonce": null}), UpstreamTokenError::Nonce),
            (json!({"iat": null}), UpstreamTokenError::Claim("iat")),
            (json!({"exp": "soon"}), UpstreamTokenError::Claim("exp")),
            (json!({"sub": null}), UpstreamTokenError::Claim("sub")),
        ];
        for (changes, error) in cases {
            let token = rsa.sign(json!({"alg": "RS256", "kid": "k"}), &claims(changes.clone()));
            assert_eq!(verify_id_token(&token, &keys, &expected()), Err(error), "{changes}");
        }
        let several = claims(json!({"aud": ["other", CLIENT], "azp": CLIENT}));
        let token = rsa.sign(json!({"alg": "RS256", "kid": "k"}), &several);
        assert!(verify_id_token(&token, &keys, &expected()).is_ok());
    }

    #[test]
    fn none_hmac_foreign_keys_and_confused_types_are_refused() {
        let rsa = Rsa::new();
        let jwk = rsa.jwk("k");
        let keys = UpstreamKeys::from_jwks(&json!({"keys": [jwk.clone()]}));
        let body = base64url::encode(Value::Object(claims(json!({}))).to_string());
        let none = format!("{}.{body}.", base64url::encode(r#"{"alg":"none"}"#));
        assert_eq!(
            verify_id_token(&none, &keys, &expected()),
            Err(UpstreamTokenError::Algorithm("none".into()))
        );
        // HS256 keyed with the public JWK's text: refused by the allow-list, no key consulted.
        let input = format!("{}.{body}", base64url::encode(r#"{"alg":"HS256","kid":"k"}"#));
        let secret =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwk.to_string().as_bytes());
        let tag = aws_lc_rs::hmac::sign(&secret, input.as_bytes());
        let hmac = format!("{input}.{}", base64url::encode(tag.as_ref()));
        assert_eq!(
            verify_id_token(&hmac, &keys, &expected()),
            Err(UpstreamTokenError::Algorithm("HS256".into()))
        );
        // A key of the right kid that is not the provider's.
        let impostor = Rsa::new();
        let forged = impostor.sign(json!({"alg": "RS256", "kid": "k"}), &claims(json!({})));
        assert_eq!(
            verify_id_token(&forged, &keys, &expected()),
            Err(UpstreamTokenError::Signature)
        );
        let unknown = impostor.sign(json!({"alg": "RS256", "kid": "k2"}), &claims(json!({})));
        assert_eq!(
            verify_id_token(&unknown, &keys, &expected()),
            Err(UpstreamTokenError::UnknownKey("k2".into()))
        );
        // ES256 claimed under an RSA key's kid.
        let (ec, _) = es256("k");
        let confused = es256_token(&ec, "k", &claims(json!({})));
        assert_eq!(
            verify_id_token(&confused, &keys, &expected()),
            Err(UpstreamTokenError::Signature)
        );
        // A tampered payload.
        let good = rsa.sign(json!({"alg": "RS256", "kid": "k"}), &claims(json!({})));
        let mut parts: Vec<&str> = good.split('.').collect();
        let changed = base64url::encode(
            Value::Object(claims(json!({"email": "boss@example.com"}))).to_string(),
        );
        parts[1] = &changed;
        assert_eq!(
            verify_id_token(&parts.join("."), &keys, &expected()),
            Err(UpstreamTokenError::Signature)
        );
        for malformed in ["", "a.b", "a.b.c.d", "!!.e30.AA", &"a".repeat(MAX_ID_TOKEN_BYTES + 1)] {
            assert!(
                matches!(
                    verify_id_token(malformed, &keys, &expected()),
                    Err(UpstreamTokenError::Malformed(_))
                ),
                "{malformed:.20}"
            );
        }
        let crit = rsa.sign(json!({"alg": "RS256", "kid": "k", "crit": ["x"]}), &claims(json!({})));
        assert!(matches!(
            verify_id_token(&crit, &keys, &expected()),
            Err(UpstreamTokenError::Malformed(_))
        ));
    }

    #[test]
    fn unusable_keys_are_left_out_of_the_set() {
        let rsa = Rsa::new();
        let mut private = rsa.jwk("a");
        private["d"] = "AAAA".into();
        let mut encryption = rsa.jwk("b");
        encryption["use"] = "enc".into();
        let mut small = rsa.jwk("c");
        small["n"] = base64url::encode([0xc5; 128]).into();
        let symmetric = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "d"});
        let mut hmac_alg = rsa.jwk("e");
        hmac_alg["alg"] = "HS256".into();
        let keys = UpstreamKeys::from_jwks(
            &json!({"keys": [private, encryption, small, symmetric, hmac_alg, "x", rsa.jwk("ok")]}),
        );
        assert_eq!(keys.len(), 1);
        assert!(UpstreamKeys::from_jwks(&json!({"nokeys": []})).is_empty());
        // A key whose `alg` says RS256 does not verify PS256.
        let token = rsa.sign(json!({"alg": "PS256", "kid": "ok"}), &claims(json!({})));
        assert_eq!(verify_id_token(&token, &keys, &expected()), Err(UpstreamTokenError::Signature));
    }

    proptest::proptest! {
        /// Whatever a provider (or someone in the middle) sends is refused, never a panic, and
        /// never accepted without a key.
        #[test]
        fn arbitrary_tokens_and_key_sets_are_refused(
            header in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            signature in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            text in ".{0,300}",
        ) {
            let keys = UpstreamKeys::from_jwks(&serde_json::from_str(&text).unwrap_or(Value::Null));
            let token = format!(
                "{}.{}.{}",
                base64url::encode(&header),
                base64url::encode(&payload),
                base64url::encode(&signature)
            );
            proptest::prop_assert!(verify_id_token(&token, &keys, &expected()).is_err());
            proptest::prop_assert!(verify_id_token(&text, &keys, &expected()).is_err());
        }
    }

    #[test]
    fn provider_values_in_refusals_are_escaped_and_bounded() {
        let keys = UpstreamKeys::default();
        let header = json!({"alg": format!("x\r\nFORGED{}", "y".repeat(500))});
        let token = format!("{}.e30.AA", base64url::encode(header.to_string()));
        let refusal = verify_id_token(&token, &keys, &expected()).unwrap_err().to_string();
        assert!(!refusal.contains(['\r', '\n']) && refusal.len() < 200, "{refusal}");
    }
}
