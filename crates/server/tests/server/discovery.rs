//! RFC 8414 metadata (with the OpenID Connect Discovery §3 members) at both well-known
//! locations, field by field; the JWKS.

use serde_json::json;

use crate::support::server;

const RESOURCES: &str = r#"
[[resources]]
uri = "imaps://mail.example.com"
[[resources]]
uri = "smtps://mail.example.com"
[[resources]]
uri = "https://dav.example.com/carddav/"
[[resources]]
uri = "https://dav.example.com/caldav/"
"#;

fn expected(issuer: &str, base: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device_authorization"),
        "revocation_endpoint": format!("{base}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none", "private_key_jwt", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint": format!("{base}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        "jwks_uri": format!("{base}/jwks.json"),
        "registration_endpoint": format!("{base}/register"),
        "scopes_supported": [
            "urn:ietf:params:oauth:scope:mail",
            "urn:ietf:params:oauth:scope:contacts",
            "urn:ietf:params:oauth:scope:calendars",
            "offline_access",
            "openid",
            "profile",
            "email"
        ],
        "userinfo_endpoint": format!("{base}/userinfo"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "EdDSA"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "email", "email_verified"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt", "client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA"],
        "protected_resources": [
            "imaps://mail.example.com",
            "smtps://mail.example.com",
            "https://dav.example.com/carddav/",
            "https://dav.example.com/caldav/"
        ]
    })
}

#[tokio::test]
async fn both_documents_list_exactly_what_is_implemented() {
    let server = server(&format!("issuer = \"https://auth.example.com\"\n{RESOURCES}")).await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.body,
            expected("https://auth.example.com", "https://auth.example.com"),
            "{path}"
        );
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(reply.headers["cache-control"], "public, max-age=300");
    }
    // No endpoint that does not exist yet is advertised; UserInfo (issue 16) does exist.
    let reply = server.get("/.well-known/oauth-authorization-server").await;
    for absent in ["end_session_endpoint", "pushed_authorization_request_endpoint"] {
        assert!(reply.body.get(absent).is_none(), "{absent} is advertised but not implemented");
    }
    assert_eq!(server.get("/userinfo").await.status, 401, "UserInfo asks for a token");
}

#[tokio::test]
async fn issuer_with_a_path_uses_rfc8414_path_insertion() {
    let server = server(&format!("issuer = \"https://example.com/tenant\"\n{RESOURCES}")).await;
    let inserted = server.get("/.well-known/oauth-authorization-server/tenant").await;
    assert_eq!(inserted.status, 200);
    assert_eq!(inserted.body, expected("https://example.com/tenant", "https://example.com/tenant"));
    let appended = server.get("/tenant/.well-known/openid-configuration").await;
    assert_eq!(appended.body, inserted.body);
    assert_eq!(server.get("/.well-known/oauth-authorization-server").await.status, 404);
    assert_eq!(server.get("/tenant/jwks.json").await.status, 200);
    let registered = server
        .send(crate::support::json_request(
            "POST",
            "/tenant/register",
            r#"{"redirect_uris":["http://127.0.0.1/"]}"#,
            None,
        ))
        .await;
    assert_eq!(registered.status, 201);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_without_private_members() {
    let server = server("").await;
    let reply = server.get("/jwks.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "public, max-age=300");
    let keys = reply.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none());
    let jwk = letterlock_protocol::PublicJwk::from_json(&keys[0]).expect("a valid public key");
    assert_eq!(keys[0]["kid"], letterlock_jose::key::thumbprint(&jwk));
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let server = server("").await;
    let reply = server.get("/nope").await;
    crate::support::assert_error(&reply, axum::http::StatusCode::NOT_FOUND, "invalid_request");
    let reply = server.get("/register").await;
    crate::support::assert_error(
        &reply,
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
    );
}
