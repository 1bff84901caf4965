//! Stateless client ids: the verified registration sealed by the server (AES-256-GCM), so that
//! a registration costs no storage.
//!
//! A sealed value reads `ll1.<kid>.<base64url(nonce || ciphertext || tag)>`. The version prefix
//! lets the format change; the key id lets sealing keys rotate; the issuer and the prefix are
//! authenticated as associated data, so a value sealed for one issuer does not open at another
//! that happens to share a key.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::base64url;

use crate::Error;

/// The version prefix of sealed client ids.
pub const PREFIX: &str = "ll1";
/// The longest sealed value accepted before any decoding, in bytes. A registration with ten
/// redirect URIs of 2,000 bytes would not fit, but the ids real clients get are under 1 KiB;
/// 8 KiB bounds the work an attacker can cause.
pub const MAX_SEALED_BYTES: usize = 8 * 1024;
/// AES-256-GCM's tag length.
const TAG_LEN: usize = 16;

/// Why a sealed value does not open. Each of these is `invalid_client` at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not of the form `ll1.<kid>.<data>`, not base64url, or too short or too long.
    #[error("the client id is malformed")]
    Malformed,
    /// A version prefix this server does not know.
    #[error("the client id has an unknown version")]
    UnknownVersion,
    /// Sealed under a key this server never had (or has deleted).
    #[error("the client id was sealed under an unknown key")]
    UnknownKey,
    /// Sealed under a key the operator retired.
    #[error("the client id was sealed under a retired key")]
    RetiredKey,
    /// Authentication failed: the value was altered, or sealed for another issuer.
    #[error("the client id failed authentication")]
    Tampered,
}

/// One sealing key.
pub struct SealingKey {
    kid: String,
    aead: LessSafeKey,
    secret_key: hmac::Key,
    retired: bool,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SealingKey")
            .field("kid", &self.kid)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// The length of the key material.
    pub const LEN: usize = 32;

    /// Builds a key from 32 bytes of material. `kid` must be non-empty, without dots.
    pub fn new(kid: &str, material: &[u8], retired: bool) -> Result<Self, Error> {
        if kid.is_empty() || kid.contains('.') || material.len() != Self::LEN {
            return Err(Error::KeyEncoding);
        }
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, material).map_err(|_| Error::KeyEncoding)?,
        );
        // Client secrets are derived with HMAC under a key derived from the material, never
        // under the AES key itself.
        let derivation = hmac::Key::new(hmac::HMAC_SHA256, material);
        let secret_material = hmac::sign(&derivation, b"letterlock client secret v1");
        let secret_key = hmac::Key::new(hmac::HMAC_SHA256, secret_material.as_ref());
        Ok(Self { kid: kid.to_owned(), aead, secret_key, retired })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The ring of sealing keys: the newest key that is not retired seals; every key that is not
/// retired opens.
#[derive(Debug, Default)]
pub struct Sealer {
    keys: Vec<SealingKey>,
}

impl Sealer {
    /// A ring from keys, oldest first.
    pub fn new(keys: Vec<SealingKey>) -> Self {
        Self { keys }
    }

    /// The key id that seals now, if any key is usable.
    pub fn current_kid(&self) -> Option<&str> {
        self.current().map(SealingKey::kid)
    }

    fn current(&self) -> Option<&SealingKey> {
        self.keys.iter().rev().find(|key| !key.retired)
    }

    /// Seals a plaintext for an issuer.
    pub fn seal(
        &self,
        plaintext: &[u8],
        issuer: &str,
        random: &dyn SecureRandom,
    ) -> Result<String, Error> {
        let key = self.current().ok_or(Error::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        random.fill(&mut nonce).map_err(|_| Error::Random)?;
        let mut data = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        data.extend_from_slice(&nonce);
        data.extend_from_slice(plaintext);
        let aad = associated_data(&key.kid, issuer);
        let (_, in_out) = data.split_at_mut(NONCE_LEN);
        let tag = key
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                in_out,
            )
            .map_err(|_| Error::Sealing)?;
        data.extend_from_slice(tag.as_ref());
        Ok(format!("{PREFIX}.{}.{}", key.kid, base64url::encode(data)))
    }

    /// Opens a sealed value for an issuer, or says exactly why it does not open.
    pub fn open(&self, sealed: &str, issuer: &str) -> Result<Vec<u8>, OpenError> {
        if sealed.len() > MAX_SEALED_BYTES {
            return Err(OpenError::Malformed);
        }
        let (version, kid, data) = split(sealed)?;
        if version != PREFIX {
            return Err(OpenError::UnknownVersion);
        }
        let key = self.key(kid)?;
        let mut data = base64url::decode(data).ok_or(OpenError::Malformed)?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&data[..NONCE_LEN])
            .map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(kid, issuer);
        let plaintext = key
            .aead
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data[NONCE_LEN..])
            .map_err(|_| OpenError::Tampered)?;
        Ok(plaintext.to_vec())
    }

    /// The client secret of a confidential stateless client: an HMAC of its client id, so that
    /// nothing is stored and the secret changes with the sealing key. Call it only for a client
    /// id that [`Sealer::open`] accepted.
    pub fn client_secret(&self, client_id: &str) -> Result<String, OpenError> {
        let (_, kid, _) = split(client_id)?;
        let key = self.key(kid)?;
        Ok(base64url::encode(hmac::sign(&key.secret_key, client_id.as_bytes())))
    }

    /// A MAC of `message` under the current key's derived secret key (base64url), for values
    /// the server hands out and checks later, such as DPoP nonces. Callers prefix the message
    /// with their purpose so that MACs of different kinds never coincide.
    pub fn current_mac(&self, message: &[u8]) -> Option<String> {
        self.current().map(|key| base64url::encode(hmac::sign(&key.secret_key, message)))
    }

    /// Compares a presented secret with the derived one in constant time.
    pub fn verify_client_secret(&self, client_id: &str, presented: &str) -> bool {
        let Ok(expected) = self.client_secret(client_id) else { return false };
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes())
            .is_ok()
    }

    fn key(&self, kid: &str) -> Result<&SealingKey, OpenError> {
        let key = self.keys.iter().find(|key| key.kid == kid).ok_or(OpenError::UnknownKey)?;
        if key.retired { Err(OpenError::RetiredKey) } else { Ok(key) }
    }
}

fn split(sealed: &str) -> Result<(&str, &str, &str), OpenError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(version), Some(kid), Some(data)) if !kid.is_empty() && !data.is_empty() => {
            Ok((version, kid, data))
        }
        _ => Err(OpenError::Malformed),
    }
}

fn associated_data(kid: &str, issuer: &str) -> String {
    format!("{PREFIX}.{kid}.{issuer}")
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use proptest::prelude::*;

    use super::*;

    const ISSUER: &str = "https://auth.example.com";

    fn sealer() -> Sealer {
        Sealer::new(vec![
            SealingKey::new("old", &[1; 32], true).unwrap(),
            SealingKey::new("k2", &[2; 32], false).unwrap(),
        ])
    }

    #[test]
    fn round_trip_and_fresh_ids_for_the_same_input() {
        let sealer = sealer();
        let random = SystemRandom::new();
        let first = sealer.seal(b"registration", ISSUER, &random).unwrap();
        let second = sealer.seal(b"registration", ISSUER, &random).unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with("ll1.k2."));
        assert_eq!(sealer.open(&first, ISSUER).unwrap(), b"registration");
        assert_eq!(sealer.open(&first, "https://other.example.com"), Err(OpenError::Tampered));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let sealer = sealer();
        let sealed = sealer
            .seal(b"{\"redirect_uris\":[\"http://127.0.0.1/\"]}", ISSUER, &SystemRandom::new())
            .unwrap();
        for index in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[index] ^= 0x01;
            let Ok(altered) = String::from_utf8(bytes) else { continue };
            assert!(sealer.open(&altered, ISSUER).is_err(), "flipping byte {index} went unnoticed");
        }
        for length in 0..sealed.len() {
            assert!(sealer.open(&sealed[..length], ISSUER).is_err(), "truncation to {length}");
        }
    }

    #[test]
    fn unknown_and_retired_keys_and_versions() {
        let sealer = sealer();
        let retired = Sealer::new(vec![SealingKey::new("old", &[1; 32], false).unwrap()]);
        let sealed_old = retired.seal(b"x", ISSUER, &SystemRandom::new()).unwrap();
        assert_eq!(sealer.open(&sealed_old, ISSUER), Err(OpenError::RetiredKey));
        let stranger = Sealer::new(vec![SealingKey::new("zz", &[3; 32], false).unwrap()]);
        let sealed_zz = stranger.seal(b"x", ISSUER, &SystemRandom::new()).unwrap();
        assert_eq!(sealer.open(&sealed_zz, ISSUER), Err(OpenError::UnknownKey));
        assert_eq!(sealer.open("ll2.k2.AAAA", ISSUER), Err(OpenError::UnknownVersion));
        assert_eq!(sealer.open("nonsense", ISSUER), Err(OpenError::Malformed));
    }

    #[test]
    fn derived_secrets_verify_only_for_their_client() {
        let sealer = sealer();
        let random = SystemRandom::new();
        let one = sealer.seal(b"a", ISSUER, &random).unwrap();
        let two = sealer.seal(b"a", ISSUER, &random).unwrap();
        let secret = sealer.client_secret(&one).unwrap();
        assert!(sealer.verify_client_secret(&one, &secret));
        assert!(!sealer.verify_client_secret(&two, &secret));
    }

    proptest! {
        #[test]
        fn opening_arbitrary_text_never_panics(text in ".{0,600}") {
            let _ = sealer().open(&text, ISSUER);
        }

        #[test]
        fn opening_arbitrary_data_under_a_known_key_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = format!("ll1.k2.{}", base64url::encode(data));
            prop_assert!(sealer().open(&text, ISSUER).is_err());
        }
    }
}
