//! The answer a refresh gave, kept for a retry after a lost response (issue 16).
//!
//! RFC 9700 §4.14.2 revokes a grant when a rotated-out refresh token comes back, because two
//! parties then hold it. A client whose response was lost on the way (a dropped connection, a
//! program killed mid-request), or that sends the same refresh twice at once (Thunderbird
//! refreshes for IMAP and SMTP with one token), presents the rotated-out token too, and would lose
//! the device. RFC 9700 §4.14.2 allows a grace period for this; within it, the same installation
//! gets the same answer again ([`super::Grants::refresh`] decides who that is).
//!
//! The server keeps only hashes of refresh tokens, so that a database reader learns nothing
//! usable; the answer, which holds a new refresh token, must not undo that. It is sealed
//! (AES-256-GCM) under a key derived with HKDF-SHA-256 from the old refresh token itself, so only
//! a holder of that token can open it, and the database holds it only until the window ends or the
//! successor is used. The old token's hash and the grant are the associated data, so a sealed
//! answer moved to another row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use letterlock_protocol::{ScopeSet, base64url};
use serde::{Deserialize, Serialize};

use super::{GrantError, Issued};
use crate::random::Randomness;

/// HKDF salt and info: the purpose and version of the key, so that no other use of a refresh
/// token's bytes (its SHA-256 hash in the store) yields this key.
const SALT: &[u8] = b"letterlock refresh retry";
const INFO: &[u8] = b"v1 answer key";

/// What is sealed: the answer with absolute expiry times, so that a retry is told the time
/// left rather than the first answer's full lifetimes.
#[derive(Serialize, Deserialize)]
struct Kept {
    access_token: String,
    token_type: String,
    access_expires_at: i64,
    scope: String,
    refresh_token: Option<String>,
    refresh_expires_at: Option<i64>,
}

/// The AEAD key of the answer to a refresh with `presented`.
fn key(presented: &str) -> Result<LessSafeKey, GrantError> {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(presented.as_bytes());
    let okm = prk
        .expand(&[INFO], &AES_256_GCM)
        .map_err(|_| GrantError::internal("the retry key could not be derived"))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn associated_data(hash: &str, grant_id: &str) -> String {
    format!("{hash}\n{grant_id}")
}

/// Seals `issued`, the answer to a refresh with `presented` (stored under `hash`, of grant
/// `grant_id`), at `now`.
pub(super) fn seal(
    presented: &str,
    hash: &str,
    grant_id: &str,
    issued: &Issued,
    now: i64,
    random: &Randomness,
) -> Result<String, GrantError> {
    let kept = Kept {
        access_token: issued.access_token.clone(),
        token_type: issued.token_type.to_owned(),
        access_expires_at: now.saturating_add(issued.expires_in),
        scope: issued.scope.to_string(),
        refresh_token: issued.refresh_token.clone(),
        refresh_expires_at: issued.refresh_token_expires_in.map(|left| now.saturating_add(left)),
    };
    let mut data = vec![0u8; NONCE_LEN];
    random.fill(&mut data)?;
    let nonce = Nonce::try_assume_unique_for_key(&data)
        .map_err(|_| GrantError::internal("a nonce of the wrong length"))?;
    let mut plaintext = serde_json::to_vec(&kept).map_err(GrantError::internal)?;
    key(presented)?
        .seal_in_place_append_tag(
            nonce,
            Aad::from(associated_data(hash, grant_id).as_bytes()),
            &mut plaintext,
        )
        .map_err(|_| GrantError::internal("the retry answer could not be sealed"))?;
    data.extend_from_slice(&plaintext);
    Ok(base64url::encode(data))
}

/// Opens the answer kept for a retry with `presented`, with the time left at `now`.
pub(super) fn open(
    presented: &str,
    hash: &str,
    grant_id: &str,
    sealed: &str,
    now: i64,
) -> Result<Issued, GrantError> {
    let corrupt = || GrantError::internal("the answer kept for a refresh retry does not open");
    let mut data = base64url::decode(sealed).ok_or_else(corrupt)?;
    if data.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, ciphertext) = data.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
    let plaintext = key(presented)?
        .open_in_place(nonce, Aad::from(associated_data(hash, grant_id).as_bytes()), ciphertext)
        .map_err(|_| corrupt())?;
    let kept: Kept = serde_json::from_slice(plaintext).map_err(|_| corrupt())?;
    Ok(Issued {
        access_token: kept.access_token,
        token_type: if kept.token_type == "DPoP" { "DPoP" } else { "Bearer" },
        expires_in: kept.access_expires_at.saturating_sub(now).max(0),
        scope: ScopeSet::parse(&kept.scope).map_err(|_| corrupt())?,
        refresh_token: kept.refresh_token,
        refresh_token_expires_in: kept.refresh_expires_at.map(|at| at.saturating_sub(now).max(0)),
        // Only refreshes are kept, and a refresh carries no ID token (OpenID Connect Core
        // §12.2 makes it optional).
        id_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued() -> Issued {
        Issued {
            access_token: "eyJ.access.token".into(),
            token_type: "Bearer",
            expires_in: 600,
            scope: ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap(),
            refresh_token: Some("next".into()),
            refresh_token_expires_in: Some(7_776_000),
            id_token: None,
        }
    }

    #[test]
    fn only_the_old_token_opens_the_answer_and_only_in_its_row() {
        let random = Randomness::system();
        let sealed = seal("old-token", "hash", "grant", &issued(), 1000, &random).unwrap();
        let bytes = base64url::decode(&sealed).unwrap();
        assert!(
            !bytes.windows(b"eyJ.access.token".len()).any(|window| window == b"eyJ.access.token"),
            "sealed, not merely encoded"
        );
        let opened = open("old-token", "hash", "grant", &sealed, 1010).unwrap();
        assert_eq!(opened.access_token, "eyJ.access.token");
        assert_eq!(opened.refresh_token.as_deref(), Some("next"));
        assert_eq!(opened.expires_in, 590, "the time left, not the first lifetime");
        assert_eq!(opened.refresh_token_expires_in, Some(7_775_990));
        assert_eq!(opened.scope, issued().scope);
        for (token, hash, grant) in [
            ("other-token", "hash", "grant"),
            ("old-token", "other-hash", "grant"),
            ("old-token", "hash", "other-grant"),
        ] {
            assert!(open(token, hash, grant, &sealed, 1010).is_err(), "{token} {hash} {grant}");
        }
        let mut altered = base64url::decode(&sealed).unwrap();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(open("old-token", "hash", "grant", &base64url::encode(altered), 1010).is_err());
        assert!(open("old-token", "hash", "grant", "!!", 1010).is_err());
        assert!(open("old-token", "hash", "grant", "", 1010).is_err());
    }
}
