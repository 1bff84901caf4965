//! The issuer, redirect URI and resource parsers, and redirect matching (a registered loopback
//! redirect against arbitrary presented text, issue 16's `http://localhost`).
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
    let _ = Resource::parse(text);
});
