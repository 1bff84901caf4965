//! What the client reads from servers it does not yet trust: autoconfig XML, `WWW-Authenticate`
//! parameters, SASL failure challenges, the browser's request at the loopback listener, and
//! metadata documents. Each must refuse or parse, never panic.
#![no_main]

use letterlock_client::discover::{Autoconfig, Metadata, auth_param};
use letterlock_client::loopback::parse_request_line;
use letterlock_client::probe::SaslChallenge;
use letterlock_protocol::Issuer;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = parse_request_line(bytes);
    let text = String::from_utf8_lossy(bytes);
    let _ = Autoconfig::parse(&text);
    let _ = auth_param(&text, "resource_metadata");
    let _ = SaslChallenge::from_base64(&text);
    if let (Ok(serde_json::Value::Object(document)), Ok(issuer)) =
        (serde_json::from_slice(bytes), Issuer::parse("https://auth.example.com"))
    {
        let _ = Metadata::from_json(&issuer, &document);
    }
});
