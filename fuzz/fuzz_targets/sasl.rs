//! The SASL exchange (OAUTHBEARER, XOAUTH2, PLAIN) and the base64 line reader on arbitrary input.
#![no_main]

use letterlock_sasl::{Mechanism, ResponseLine, ServerExchange};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2, Mechanism::Plain] {
        let mut exchange = ServerExchange::new(mechanism);
        let _ = exchange.receive(data);
    }
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = ResponseLine::parse(line);
    }
});
