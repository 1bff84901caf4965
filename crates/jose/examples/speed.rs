//! Times ES256 and EdDSA signing and verification: `cargo run --release -p letterlock-jose
//! --example speed`.
#![allow(clippy::unwrap_used, reason = "a measurement")]
use aws_lc_rs::rand::SystemRandom;
use letterlock_jose::{Algorithm, PrivateKey, VerifyingKey};
fn main() {
    let random = SystemRandom::new();
    for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
        let key = PrivateKey::generate(algorithm, &random).unwrap();
        let verifying = VerifyingKey::from_jwk(&key.public_jwk(None)).unwrap();
        let started = std::time::Instant::now();
        let mut signature = Vec::new();
        for _ in 0..2000 {
            signature = key.sign(b"message to sign", &random).unwrap();
        }
        let sign = started.elapsed() / 2000;
        let started = std::time::Instant::now();
        for _ in 0..2000 {
            assert!(verifying.verify(algorithm, b"message to sign", &signature));
        }
        println!("{algorithm}: sign {:?}, verify {:?}", sign, started.elapsed() / 2000);
    }
}
