//! The issuer, redirect URI and resource parsers, and the comparison of resource identifiers
//! (issue 16: a resource is itself, and its normalized form is the same resource).
#![no_main]

use letterlock_protocol::{Issuer, RedirectUri, Resource};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = Issuer::parse(text);
    let _ = RedirectUri::parse(text);
    if let Ok(resource) = Resource::parse(text) {
        assert!(resource.is(text));
        let normalized = Resource::parse(resource.normalized()).expect("a normalized form parses");
        assert_eq!(normalized.normalized(), resource.normalized());
    }
});
