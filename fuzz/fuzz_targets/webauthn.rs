//! What a WebAuthn relying party parses from the browser (issue 17): CTAP2 CBOR (whatever
//! decodes encodes back to the same bytes), COSE keys, authenticator data (whatever parses
//! encodes back to the same bytes), `none` attestation objects, `clientDataJSON`, and the
//! ceremonies' JSON responses.
#![no_main]

use letterlock_protocol::webauthn::{
    AttestationObject, AuthenticationResponse, AuthenticatorData, CollectedClientData,
    RegistrationResponse, cbor::Value, cose::CoseKey,
};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok((value, used)) = Value::decode_prefix(bytes) {
        assert!(used <= bytes.len());
        assert_eq!(value.encode(), &bytes[..used]);
        let _ = CoseKey::from_cbor(&value);
    }
    if let Ok(data) = AuthenticatorData::parse(bytes) {
        assert_eq!(data.encode(), bytes);
    }
    let _ = AttestationObject::parse(bytes);
    if let Ok(client_data) = CollectedClientData::parse(bytes) {
        assert_eq!(CollectedClientData::parse(&client_data.to_json()), Ok(client_data));
    }
    let _ = serde_json::from_slice::<RegistrationResponse>(bytes);
    let _ = serde_json::from_slice::<AuthenticationResponse>(bytes);
});
