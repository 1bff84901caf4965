//! Where every secret the server hands out comes from: session ids, CSRF tokens, pending request
//! ids, codes, device and user codes, refresh tokens, registration secrets, record ids, password
//! salts and sealing keys.
//!
//! [`Randomness`] fails closed. When the operating system's generator fails, it returns
//! [`RandomFailed`] and the request ends in a 500 with an incident id; it never hands out an
//! all-zero token, which anyone could guess. The source can be replaced (tests use one that
//! fails on demand).
//!
//! Signing nonces (ECDSA) and AES-GCM nonces are drawn inside aws-lc-rs, whose `SecureRandom`
//! trait cannot be implemented outside it; they come from the system generator directly and
//! fail closed there ([`letterlock_jose::Error::Random`] and `Signing`).

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use letterlock_protocol::base64url;

/// The random generator failed; nothing that needed it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random generator failed")]
pub struct RandomFailed;

/// A source of random bytes.
pub trait RandomSource: Send + Sync {
    /// Fills `bytes` entirely, or fails.
    fn fill(&self, bytes: &mut [u8]) -> Result<(), RandomFailed>;
}

/// The operating system's generator (through aws-lc-rs).
impl RandomSource for SystemRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), RandomFailed> {
        aws_lc_rs::rand::SecureRandom::fill(self, bytes).map_err(|_| RandomFailed)
    }
}

/// The one place secrets come from. Cheap to clone.
#[derive(Clone)]
pub struct Randomness {
    source: Arc<dyn RandomSource>,
    /// For the aws-lc-rs operations that take their own generator (see the module docs).
    system: SystemRandom,
}

impl Randomness {
    /// The operating system's generator.
    pub fn system() -> Self {
        Self::from_source(Arc::new(SystemRandom::new()))
    }

    /// Another source (tests).
    pub fn from_source(source: Arc<dyn RandomSource>) -> Self {
        Self { source, system: SystemRandom::new() }
    }

    /// Fills `bytes` with random bytes, or fails; never leaves them as they were.
    pub fn fill(&self, bytes: &mut [u8]) -> Result<(), RandomFailed> {
        self.source.fill(bytes)
    }

    /// `bytes` random bytes, base64url: a secret to hand out (32 bytes for codes and tokens).
    pub fn token(&self, bytes: usize) -> Result<String, RandomFailed> {
        let mut buffer = vec![0_u8; bytes];
        self.fill(&mut buffer)?;
        Ok(base64url::encode(buffer))
    }

    /// A random 128-bit id, base64url.
    pub fn id(&self) -> Result<String, RandomFailed> {
        self.token(16)
    }

    /// `count` characters drawn uniformly from `alphabet` (at most 256 characters), by
    /// rejection sampling so that no character is likelier than another.
    pub fn characters(&self, alphabet: &[u8], count: usize) -> Result<String, RandomFailed> {
        let size = alphabet.len();
        if size == 0 || size > 256 {
            return Err(RandomFailed);
        }
        // The largest multiple of the alphabet's size that fits in a byte: bytes at or above it
        // would favour the first characters, so they are drawn again.
        let limit = 256 - 256 % size;
        let mut chosen = String::with_capacity(count);
        let mut buffer = [0_u8; 32];
        while chosen.len() < count {
            self.fill(&mut buffer)?;
            for byte in buffer.iter().map(|byte| usize::from(*byte)).filter(|byte| *byte < limit) {
                if chosen.len() == count {
                    break;
                }
                chosen.push(char::from(alphabet[byte % size]));
            }
        }
        Ok(chosen)
    }

    /// The system generator, for aws-lc-rs operations that need one (signing, sealing).
    pub fn for_crypto(&self) -> &dyn aws_lc_rs::rand::SecureRandom {
        &self.system
    }
}

impl std::fmt::Debug for Randomness {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Randomness")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A generator that fails.
    struct Broken(AtomicBool);

    impl RandomSource for Broken {
        fn fill(&self, _: &mut [u8]) -> Result<(), RandomFailed> {
            self.0.store(true, Ordering::Relaxed);
            Err(RandomFailed)
        }
    }

    #[test]
    fn a_failing_generator_gives_an_error_not_zeros() {
        let broken = Arc::new(Broken(AtomicBool::new(false)));
        let random = Randomness::from_source(broken.clone());
        assert_eq!(random.token(32), Err(RandomFailed));
        assert_eq!(random.id(), Err(RandomFailed));
        assert_eq!(random.characters(b"BCDF", 8), Err(RandomFailed));
        assert!(broken.0.load(Ordering::Relaxed));
    }

    #[test]
    fn tokens_are_long_and_differ_and_characters_are_from_the_alphabet() {
        let random = Randomness::system();
        let (first, second) = (random.token(32).unwrap(), random.token(32).unwrap());
        assert_eq!(first.len(), 43);
        assert_ne!(first, second);
        let letters = random.characters(b"BCDFGHJKLMNPQRSTVWXZ", 4000).unwrap();
        assert_eq!(letters.len(), 4000);
        for letter in "BCDFGHJKLMNPQRSTVWXZ".chars() {
            let count = letters.chars().filter(|c| *c == letter).count();
            // 200 expected; a fair draw lands far inside this.
            assert!((100..=300).contains(&count), "{letter}: {count}");
        }
        assert!(letters.chars().all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    }
}
