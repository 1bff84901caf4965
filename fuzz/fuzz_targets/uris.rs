//! The issuer, redirect URI and resource parsers.
#![no_main]

use letterlock_protocol::{Issuer, RedirectUri, Resource};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = Issuer::parse(text);
    let _ = RedirectUri::parse(text);
    let _ = Resource::parse(text);
});
