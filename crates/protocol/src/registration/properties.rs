//! Property tests: no input panics the metadata parser, and what it accepts round-trips.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("http://127.0.0.1/cb"),
            Just("com.example.app:/cb"),
            Just("https://example.com/"),
            Just("none"),
            Just("private_key_jwt"),
            Just("authorization_code"),
            Just("code"),
            Just("native"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("redirect_uris".to_owned()),
        Just("token_endpoint_auth_method".to_owned()),
        Just("grant_types".to_owned()),
        Just("response_types".to_owned()),
        Just("application_type".to_owned()),
        Just("client_name".to_owned()),
        Just("client_name#fr".to_owned()),
        Just("logo_uri".to_owned()),
        Just("scope".to_owned()),
        Just("jwks".to_owned()),
        Just("contacts".to_owned()),
        Just("software_id".to_owned()),
        ".{0,16}",
    ]
}

proptest! {
    /// Arbitrary bytes never panic the body parser.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(object) = parse_request_body(&bytes) {
            let _ = ClientMetadata::from_json(&object);
        }
    }

    /// Arbitrary objects with the real member names never panic the validator, and whatever
    /// it accepts survives the round trip through `to_json` unchanged.
    #[test]
    fn accepted_metadata_round_trips(members in proptest::collection::btree_map(member(), json_value(), 0..10)) {
        let object: Map<String, Value> = members.into_iter().collect();
        if let Ok(metadata) = ClientMetadata::from_json(&object) {
            let written = metadata.to_json();
            prop_assert_eq!(ClientMetadata::from_json(&written), Ok(metadata.clone()));
            let has_code_grant = metadata.grant_types.contains(&GrantType::AuthorizationCode);
            prop_assert!(!has_code_grant || !metadata.redirect_uris.is_empty(), "the code grant needs a redirect");
        }
    }

    /// Redirect URIs from a valid request with arbitrary extra text stay checked.
    #[test]
    fn redirect_uri_parser_never_panics(text in ".{0,300}") {
        let _ = ClientMetadata::from_json(json!({"redirect_uris": [text]}).as_object().unwrap());
    }
}
