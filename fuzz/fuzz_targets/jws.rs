//! The compact JWS parser (software statements, later client assertions and DPoP proofs).
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = letterlock_jose::jws::UnverifiedJws::parse(text);
});
