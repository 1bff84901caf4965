//! Unit tests of RFC 7591 registration metadata: each check, each inference, the round trip.

use serde_json::json;

use super::*;

fn check(value: Value) -> Result<ClientMetadata, RegistrationError> {
    ClientMetadata::from_json(value.as_object().unwrap())
}

#[test]
fn native_public_client_gets_native_defaults() {
    let metadata = check(json!({
        "redirect_uris": ["http://127.0.0.1/callback", "com.example.mail:/oauth"],
        "client_name": "Example Mail",
        "client_name#fr": "Courrier Exemple",
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
        "unknown_member": {"ignored": true},
    }))
    .unwrap();
    assert_eq!(metadata.application_type, ApplicationType::Native);
    assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
    assert_eq!(metadata.grant_types, vec![GrantType::AuthorizationCode]);
    assert_eq!(metadata.client_name.for_language("fr"), Some("Courrier Exemple"));
    assert_eq!(metadata.client_name.for_language("de"), Some("Example Mail"));
    assert!(metadata.is_native_installation());
    let written = metadata.to_json();
    assert_eq!(written["response_types"], json!(["code"]));
    assert_eq!(written["client_name#fr"], json!("Courrier Exemple"));
    assert!(!written.contains_key("unknown_member"));
    assert_eq!(
        ClientMetadata::from_json(&written).unwrap(),
        metadata,
        "to_json and from_json are inverse"
    );
}

#[test]
fn web_client_defaults_to_a_secret_and_refuses_native_redirects() {
    let metadata = check(json!({"redirect_uris": ["https://app.example.com/cb"]})).unwrap();
    assert_eq!(metadata.application_type, ApplicationType::Web);
    assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    let error = check(json!({"application_type": "web", "redirect_uris": ["http://127.0.0.1/"]}))
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidRedirectUri);
}

#[test]
fn refuses_inconsistent_or_malformed_members() {
    let cases = [
        (json!({"redirect_uris": "http://127.0.0.1/"}), ErrorCode::InvalidRedirectUri),
        (json!({"redirect_uris": []}), ErrorCode::InvalidRedirectUri),
        (json!({"redirect_uris": [1]}), ErrorCode::InvalidRedirectUri),
        (json!({"redirect_uris": ["http://example.com/"]}), ErrorCode::InvalidRedirectUri),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "grant_types": ["implicit"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "grant_types": ["refresh_token"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "response_types": ["token"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "token_endpoint_auth_method": "client_secret_jwt"}),
            ErrorCode::InvalidClientMetadata,
        ),
        // Issue 16: client_secret_post is for the operator's configured web clients only.
        (
            json!({"redirect_uris": ["https://app.example.com/cb"], "application_type": "web", "token_endpoint_auth_method": "client_secret_post"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "token_endpoint_auth_method": "private_key_jwt"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "jwks_uri": "https://example.com/jwks"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "client_name": "a\u{0}b"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "client_name": "x".repeat(201)}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "client_name#": "x"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "logo_uri": "http://example.com/logo.png"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "scope": "admin"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/"], "application_type": "desktop"}),
            ErrorCode::InvalidClientMetadata,
        ),
    ];
    for (request, code) in cases {
        let error = check(request.clone()).expect_err(&request.to_string());
        assert_eq!(error.code(), code, "{request}: {error}");
    }
    let many: Vec<String> = (0..11).map(|port| format!("http://127.0.0.1:{port}/")).collect();
    assert_eq!(
        check(json!({"redirect_uris": many})).unwrap_err(),
        RegistrationError::RedirectUriList
    );
}

#[test]
fn a_device_without_a_browser_registers_without_redirects() {
    let metadata = check(
        json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]}),
    )
    .unwrap();
    assert_eq!(metadata.application_type, ApplicationType::Native);
    assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
    assert!(metadata.redirect_uris.is_empty());
    assert_eq!(metadata.to_json()["response_types"], json!([]));
    assert_eq!(ClientMetadata::from_json(&metadata.to_json()).unwrap(), metadata);
    let error = check(json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "response_types": ["code"]})).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidClientMetadata);
}

#[test]
fn body_must_be_a_json_object() {
    assert!(parse_request_body(b"[]").is_err());
    assert!(parse_request_body(b"{").is_err());
    assert!(parse_request_body(b"{\"a\":\"\xff\"}").is_err());
    assert!(parse_request_body(b"{}").is_ok());
}

/// RFC 7591 §2: the server may register fewer scopes than asked; unknown ones are dropped (as
/// in RFC 6749 §3.3), the autoconfig draft's protocol names mapped, and the registration says
/// what it holds. A scope of which nothing is known, or a malformed one, is still refused.
#[test]
fn registration_drops_unknown_scopes() {
    let metadata = check(json!({
        "redirect_uris": ["http://127.0.0.1/"],
        "scope": "openid email IMAP SMTP https://mail.google.com/ offline_access",
    }))
    .unwrap();
    assert_eq!(
        metadata.to_json()["scope"],
        json!("urn:ietf:params:oauth:scope:mail offline_access openid email")
    );
    for refused in ["admin other", "a\\b"] {
        let error = check(json!({"redirect_uris": ["http://127.0.0.1/"], "scope": refused}))
            .expect_err(refused);
        assert_eq!(error.code(), ErrorCode::InvalidClientMetadata, "{refused}");
    }
}
