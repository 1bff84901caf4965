//! DPoP proofs (RFC 9449 §4.3), checked the same way where tokens are issued (`/token`) and
//! where they are used (a resource such as the DAV front door, §7).
//!
//! [`verify_proof`] does every check that needs nothing but the request: the `typ`, a public
//! `jwk` whose algorithm matches, the signature, `htm`, `htu`, the `iat` window, a `jti`, and for
//! a resource request `ath`. What needs memory is the caller's: refusing a `jti` seen before
//! ([`SeenOnce`] on one node, a shared table on several) and server nonces.
//!
//! ```
//! use letterlock_jose::dpop::{SeenOnce, verify_proof};
//!
//! assert!(verify_proof("not-a-proof", "GET", "https://dav.example.com/", None, 1_800_000_000).is_err());
//! let seen = SeenOnce::default();
//! assert!(seen.first_use("jkt:jti", 1_800_000_300, 1_800_000_000));
//! assert!(!seen.first_use("jkt:jti", 1_800_000_300, 1_800_000_001));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::{PublicJwk, base64url};
use serde_json::{Map, Value};

use crate::VerifyingKey;
use crate::jws::UnverifiedJws;
use crate::key::PrivateKey;
use crate::key::thumbprint;

/// How old a proof's `iat` may be, in seconds. With server nonces the real window is the
/// nonce's; without them, this and the `jti` memory bound replay.
pub const PROOF_MAX_AGE: i64 = 300;
/// How far in the future a proof's `iat` may be (clock skew), in seconds.
pub const PROOF_MAX_SKEW: i64 = 60;

/// A proof that passed [`verify_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: what `cnf.jkt` names.
    pub jkt: String,
    /// The proof's unique id, to be refused if seen again.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
    /// The server nonce it carries, if any.
    pub nonce: Option<String>,
}

impl VerifiedProof {
    /// The key to remember the proof by (thumbprint and `jti`), and until when.
    pub fn replay_key(&self) -> (String, i64) {
        let hash = digest::digest(&digest::SHA256, format!("{}:{}", self.jkt, self.jti).as_bytes());
        (format!("dpop:{}", base64url::encode(hash)), self.iat + PROOF_MAX_AGE + PROOF_MAX_SKEW)
    }
}

/// Checks a DPoP proof for a request with `method` to `url` (without query or fragment) at
/// `now`. For a resource request, `access_token` is the token it must be bound to (`ath`).
/// The error says why, in words fit for `error_description`.
pub fn verify_proof(
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: i64,
) -> Result<VerifiedProof, String> {
    let jws = UnverifiedJws::parse(proof).map_err(|error| error.to_string())?;
    if jws.header().get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("the proof's typ must be dpop+jwt".into());
    }
    // The key must be public: PublicJwk refuses `d` and every other private member.
    let jwk = jws.header().get("jwk").ok_or("the proof has no jwk header")?;
    let jwk = PublicJwk::from_json(jwk).map_err(|error| format!("the proof's jwk: {error}"))?;
    let key = VerifyingKey::from_jwk(&jwk).map_err(|error| error.to_string())?;
    if key.algorithm() != jws.algorithm() {
        return Err("the proof's alg does not fit its key".into());
    }
    let claims = jws
        .verify(std::slice::from_ref(&key))
        .map_err(|_| "the proof's signature does not verify")?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("htm") != Some(method) {
        return Err("the proof's htm does not match the request method".into());
    }
    let htu = text("htu").ok_or("the proof has no htu")?;
    let htu = htu.split(['?', '#']).next().unwrap_or(htu);
    if htu != url {
        return Err("the proof's htu does not match the request URL".into());
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("the proof has no iat")?;
    if iat < now - PROOF_MAX_AGE || iat > now + PROOF_MAX_SKEW {
        return Err("the proof's iat is too old or in the future".into());
    }
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or("the proof needs a jti")?;
    if let Some(access_token) = access_token {
        let ath = base64url::encode(digest::digest(&digest::SHA256, access_token.as_bytes()));
        if text("ath") != Some(ath.as_str()) {
            return Err("the proof's ath does not match the access token".into());
        }
    }
    Ok(VerifiedProof {
        jkt: thumbprint(&jwk),
        jti: jti.to_owned(),
        iat,
        nonce: text("nonce").map(str::to_owned),
    })
}

/// Makes a DPoP proof (RFC 9449 §4.2) with `key` for a request with `method` to `url` (without
/// query or fragment) at `now`: the client's side of [`verify_proof`]. `nonce` is the server's
/// latest `DPoP-Nonce`; `access_token` the token the request carries, for `ath`.
pub fn make_proof(
    key: &PrivateKey,
    method: &str,
    url: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
    now: i64,
    random: &dyn SecureRandom,
) -> Result<String, crate::Error> {
    let mut header = Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("jwk".into(), key.public_jwk(None).to_json());
    let mut jti = [0u8; 16];
    random.fill(&mut jti).map_err(|_| crate::Error::Random)?;
    let mut claims = Map::new();
    claims.insert("htm".into(), method.into());
    claims.insert("htu".into(), url.into());
    claims.insert("iat".into(), now.into());
    claims.insert("jti".into(), base64url::encode(jti).into());
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some(access_token) = access_token {
        let ath = base64url::encode(digest::digest(&digest::SHA256, access_token.as_bytes()));
        claims.insert("ath".into(), ath.into());
    }
    crate::jws::sign_with_header(key, header, &claims, random)
}

/// The width of [`SeenOnce`]'s expiry buckets, in seconds: entries are forgotten at most this
/// long after they expire.
const BUCKET_SECONDS: i64 = 16;

/// One-time values remembered in this process until they expire: proof `jti`s and client
/// assertion `jti`s on a single node.
///
/// Expiry costs each entry one look, not the whole cache per insert: keys are also filed by
/// the [`BUCKET_SECONDS`] slice their expiry falls in, and an insert first drops the slices that
/// have wholly passed. A flood of fresh proofs thus makes the cache bigger (bounded by the
/// request rate times the proof lifetime) but never makes an insert slower.
#[derive(Debug, Default)]
pub struct SeenOnce {
    entries: Mutex<Entries>,
    examined: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    /// Each key and when it expires.
    expiry: HashMap<String, i64>,
    /// The keys by expiry slice. A key inserted again after it expired sits in two slices; the
    /// older one finds it live and leaves it.
    slices: BTreeMap<i64, Vec<String>>,
}

impl SeenOnce {
    /// Remembers `key` until `expires_at`; false if it was seen before and has not expired.
    pub fn first_use(&self, key: &str, expires_at: i64, now: i64) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Entries { expiry, slices } = &mut *entries;
        let mut examined = 0_u64;
        while let Some(slice) = slices.first_entry() {
            // A slice holds expiries before its end; once `now` reaches the end, all are past.
            if slice.key().saturating_add(1).saturating_mul(BUCKET_SECONDS) > now {
                break;
            }
            for stale in slice.remove() {
                examined += 1;
                if expiry.get(&stale).is_some_and(|expires| *expires <= now) {
                    expiry.remove(&stale);
                }
            }
        }
        self.examined.fetch_add(examined, Ordering::Relaxed);
        match expiry.get(key) {
            Some(expires) if *expires > now => false,
            _ => {
                expiry.insert(key.to_owned(), expires_at);
                slices
                    .entry(expires_at.div_euclid(BUCKET_SECONDS))
                    .or_default()
                    .push(key.to_owned());
                true
            }
        }
    }

    /// How many entries expiry has looked at so far: the work the cache spends on forgetting.
    pub fn examined(&self) -> u64 {
        self.examined.load(Ordering::Relaxed)
    }

    /// How many values are remembered (some may have expired and wait for their slice).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.expiry.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use serde_json::json;

    use super::*;
    use crate::{Algorithm, PrivateKey};

    const NOW: i64 = 1_800_000_000;
    const URL: &str = "https://dav.example.com/fay/calendar/";

    fn proof(key: &PrivateKey, header: Value, claims: Value) -> String {
        let mut full_header = json!({"typ": "dpop+jwt", "jwk": key.public_jwk(None).to_json()});
        for (name, value) in header.as_object().unwrap() {
            full_header[name] = value.clone();
        }
        let mut full_claims = json!({"htm": "PROPFIND", "htu": URL, "iat": NOW, "jti": "j1",
                                     "ath": base64url::encode(digest::digest(&digest::SHA256, b"token"))});
        for (name, value) in claims.as_object().unwrap() {
            full_claims[name] = value.clone();
        }
        let header = full_header.as_object().unwrap().clone();
        let claims = full_claims.as_object().unwrap();
        crate::jws::sign_with_header(key, header, claims, &SystemRandom::new()).unwrap()
    }

    #[test]
    fn made_proofs_verify() {
        let random = SystemRandom::new();
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let made = make_proof(&key, "POST", URL, Some("n1"), Some("token"), NOW, &random).unwrap();
        let verified = verify_proof(&made, "POST", URL, Some("token"), NOW).unwrap();
        assert_eq!(verified.jkt, thumbprint(&key.public_jwk(None)));
        assert_eq!(verified.nonce.as_deref(), Some("n1"));
        let again = make_proof(&key, "POST", URL, None, None, NOW, &random).unwrap();
        let again = verify_proof(&again, "POST", URL, None, NOW).unwrap();
        assert_ne!(again.jti, verified.jti, "every proof has a new jti");
        assert_eq!(again.nonce, None);
    }

    #[test]
    fn every_check_refuses_its_own_fault() {
        let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let good = proof(&key, json!({}), json!({}));
        let verified = verify_proof(&good, "PROPFIND", URL, Some("token"), NOW).unwrap();
        assert_eq!(verified.jkt, thumbprint(&key.public_jwk(None)));
        assert_eq!(verified.jti, "j1");
        let with_query = proof(&key, json!({}), json!({"htu": format!("{URL}?x=1")}));
        assert!(verify_proof(&with_query, "PROPFIND", URL, Some("token"), NOW).is_ok());

        let refused = |proof: &str, method: &str, url: &str, token: &str, now: i64| {
            verify_proof(proof, method, url, Some(token), now).unwrap_err()
        };
        assert!(refused(&good, "GET", URL, "token", NOW).contains("htm"));
        assert!(
            refused(&good, "PROPFIND", "https://dav.example.com/", "token", NOW).contains("htu")
        );
        assert!(refused(&good, "PROPFIND", URL, "another token", NOW).contains("ath"));
        assert!(refused(&good, "PROPFIND", URL, "token", NOW + 301).contains("iat"));
        assert!(refused(&good, "PROPFIND", URL, "token", NOW - 61).contains("iat"));
        let typ = proof(&key, json!({"typ": "JWT"}), json!({}));
        assert!(refused(&typ, "PROPFIND", URL, "token", NOW).contains("typ"));
        let no_jti = proof(&key, json!({}), json!({"jti": ""}));
        assert!(refused(&no_jti, "PROPFIND", URL, "token", NOW).contains("jti"));
        let other = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let swapped = proof(&key, json!({"jwk": other.public_jwk(None).to_json()}), json!({}));
        assert!(refused(&swapped, "PROPFIND", URL, "token", NOW).contains("signature"));
        assert!(refused("a.b.c", "PROPFIND", URL, "token", NOW).len() > 3);
    }

    #[test]
    fn seen_once_forgets_after_expiry() {
        let seen = SeenOnce::default();
        assert!(seen.first_use("a", 100, 10));
        assert!(!seen.first_use("a", 100, 50));
        assert!(seen.first_use("a", 200, 100), "expired, so new again");
    }

    /// Issue 14, review finding 6: once the cache held 100,000 live entries, every insert
    /// scanned all of them under the lock. Work is counted, not timed: over any run of inserts,
    /// expiry may look at each entry about once, never at the whole cache per insert.
    #[test]
    fn inserts_into_a_full_cache_do_not_scan_it() {
        let seen = SeenOnce::default();
        let mut inserts = 0_u64;
        let mut insert = |key: String, expires_at: i64, now: i64| {
            assert!(seen.first_use(&key, expires_at, now), "{key} is new");
            inserts += 1;
            let examined = seen.examined();
            assert!(examined <= 2 * inserts, "{inserts} inserts examined {examined} entries");
        };
        for index in 0..200_000 {
            insert(format!("live:{index}"), NOW + 360, NOW);
        }
        for index in 0..10_000 {
            insert(format!("new:{index}"), NOW + 360, NOW + 1);
        }
        // All 210,000 expire: the next inserts look at each of them once.
        for index in 0..10_000 {
            insert(format!("later:{index}"), NOW + 1000, NOW + 400);
        }
        assert!(!seen.first_use("later:1", NOW + 1000, NOW + 401), "still remembered");
        assert!(seen.first_use("live:1", NOW + 1000, NOW + 401), "expired, so new again");
    }
}
