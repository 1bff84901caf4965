//! The stateless client-id opener, on arbitrary text: it must refuse, never panic.
#![no_main]

use std::sync::LazyLock;

use letterlock_jose::sealing::{Sealer, SealingKey};

static SEALER: LazyLock<Sealer> = LazyLock::new(|| {
    let key = SealingKey::new("k1", &[7; SealingKey::LEN], false).expect("a 32-byte key");
    Sealer::new(vec![key])
});

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = SEALER.open(text, "https://auth.example.com");
});
