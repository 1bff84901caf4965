//! The issuer, redirect URI and resource parsers, redirect matching (a registered loopback
//! redirect against arbitrary presented text, issue 16's `http://localhost`), and the comparison
//! of resource identifiers (issue 16: a resource is itself, and its normalized form is the same
//! resource).
#![no_main]

use letterlock_protocol::{Issuer, RedirectUri, Resource};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = Issuer::parse(text);
    if let Ok(uri) = RedirectUri::parse(text) {
        let _ = uri.matches(text);
    }
    for registered in ["http://localhost/cb", "http://127.0.0.1/cb"] {
        if let Ok(registered) = RedirectUri::parse(registered) {
            let _ = registered.matches(text);
        }
    }
    if let Ok(resource) = Resource::parse(text) {
        assert!(resource.is(text));
        let normalized = Resource::parse(resource.normalized()).expect("a normalized form parses");
        assert_eq!(normalized.normalized(), resource.normalized());
    }
});
