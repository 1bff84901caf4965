//! The compact JWS parsers: ours (software statements, client assertions, DPoP proofs) and the
//! upstream OpenID provider's ID tokens with its JWKS (issue 17).
#![no_main]

use letterlock_jose::upstream::{Expected, UpstreamKeys, verify_id_token};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = letterlock_jose::jws::UnverifiedJws::parse(text);
    let expected = Expected {
        issuer: "https://id.example.com",
        client_id: "letterlock",
        nonce: "n-0S6_WzA2Mj",
        now: 1_800_000_000,
    };
    let keys = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(jwks) => UpstreamKeys::from_jwks(&jwks),
        Err(_) => UpstreamKeys::default(),
    };
    let _ = verify_id_token(text, &keys, &expected);
});
