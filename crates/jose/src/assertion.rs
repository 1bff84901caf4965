//! Client assertions (RFC 7523 §2.2, `private_key_jwt`): how an installation proves, with its own
//! key, that it is the client it registered as. The server's side is in `letterlock-server`.
//!
//! ```
//! use aws_lc_rs::rand::SystemRandom;
//! use letterlock_jose::{Algorithm, PrivateKey, assertion};
//!
//! let random = SystemRandom::new();
//! let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
//! let jwt = assertion::sign(&key, "client-1", "https://issuer.example", 1_800_000_000, &random).unwrap();
//! assert_eq!(jwt.split('.').count(), 3);
//! ```

use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::base64url;
use serde_json::Map;

use crate::Error;
use crate::key::PrivateKey;

/// How long an assertion is good for, in seconds: one token request.
pub const LIFETIME: i64 = 60;

/// Signs an assertion that `client_id` (as `iss` and `sub`) sends to `audience` (the issuer) at
/// `now`, with a fresh `jti`. The key id is the key's RFC 7638 thumbprint, which is also the
/// `kid` the installation registers its public key under.
pub fn sign(
    key: &PrivateKey,
    client_id: &str,
    audience: &str,
    now: i64,
    random: &dyn SecureRandom,
) -> Result<String, Error> {
    let mut jti = [0u8; 16];
    random.fill(&mut jti).map_err(|_| Error::Signing)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + LIFETIME).into());
    claims.insert("jti".into(), base64url::encode(jti).into());
    let kid = crate::key::thumbprint(&key.public_jwk(None));
    crate::jws::sign(key, Some(&kid), "JWT", &claims, random)
}
