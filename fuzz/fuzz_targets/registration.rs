//! The registration body parser and metadata checks, on arbitrary bytes.
#![no_main]

use letterlock_protocol::{ClientMetadata, registration::parse_request_body};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request_body(data) {
        let _ = ClientMetadata::from_json(&request);
    }
});
