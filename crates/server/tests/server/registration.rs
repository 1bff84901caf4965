//! Open registration (RFC 7591) with stateless client ids, and hostile requests.

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_server::clients::{ClientIdError, ClientOrigin};
use serde_json::{Value, json};

use crate::support::{NOW, assert_error, json_request, server};

fn native_client() -> Value {
    json!({
        "redirect_uris": ["http://127.0.0.1/callback", "com.example.mail:/oauth2redirect"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "Example Mail",
        "client_name#de": "Beispiel-Mail",
        "client_uri": "https://mail.example.org/",
        "software_id": "b3a1c9d0-mail",
        "software_version": "4.2",
        "scope": "urn:ietf:params:oauth:scope:mail offline_access",
        "x-unknown-member": [1, 2, 3]
    })
}

#[tokio::test]
async fn native_public_client_registers_and_its_id_opens() {
    let server = server("").await;
    let reply = server.register(native_client()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let body = &reply.body;
    let client_id = body["client_id"].as_str().unwrap();
    assert!(client_id.starts_with("ll1."));
    assert_eq!(body["client_id_issued_at"], NOW);
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["application_type"], "native");
    assert_eq!(body["redirect_uris"], native_client()["redirect_uris"]);
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["client_name#de"], "Beispiel-Mail");
    assert_eq!(body["software_id"], "b3a1c9d0-mail");
    assert_eq!(body["scope"], "urn:ietf:params:oauth:scope:mail offline_access");
    assert!(body.get("client_secret").is_none(), "a public client gets no secret");
    assert!(body.get("x-unknown-member").is_none(), "unknown members are ignored");
    assert!(body.get("registration_access_token").is_none(), "stateless ids have no management");

    let client = server.state.clients().open(client_id).await.unwrap();
    assert_eq!(client.origin, ClientOrigin::Stateless);
    assert_eq!(client.metadata.client_name.default_value(), Some("Example Mail"));
    assert_eq!(client.issued_at, Some(NOW));
    assert!(client.vendor.is_none());
}

#[tokio::test]
async fn same_metadata_gives_each_installation_its_own_id() {
    let server = server("").await;
    let first = server.register(native_client()).await.body["client_id"].clone();
    let second = server.register(native_client()).await.body["client_id"].clone();
    assert_ne!(first, second);
}

#[tokio::test]
async fn stateless_registration_writes_nothing() {
    let server = server("").await;
    let before = server.state.store().row_counts().await.unwrap();
    for _ in 0..5 {
        assert_eq!(server.register(native_client()).await.status, StatusCode::CREATED);
    }
    assert_eq!(server.state.store().row_counts().await.unwrap(), before);
}

#[tokio::test]
async fn private_key_jwt_client_with_inline_keys() {
    let server = server("").await;
    let random = SystemRandom::new();
    for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
        let key = PrivateKey::generate(algorithm, &random).unwrap();
        let jwk = key.public_jwk(Some("installation-1".into())).to_json();
        let mut request = native_client();
        request["token_endpoint_auth_method"] = "private_key_jwt".into();
        request["jwks"] = json!({ "keys": [jwk] });
        let reply = server.register(request).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(reply.body["jwks"]["keys"][0]["x"], jwk["x"]);
        let client =
            server.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
        assert_eq!(client.metadata.jwks, vec![key.public_jwk(Some("installation-1".into()))]);
    }
}

#[tokio::test]
async fn confidential_client_gets_a_derived_secret() {
    let server = server("").await;
    let reply = server.register(json!({"redirect_uris": ["https://webmail.example.com/cb"]})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["application_type"], "web");
    assert_eq!(reply.body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reply.body["client_secret_expires_at"], 0);
    let client_id = reply.body["client_id"].as_str().unwrap();
    let secret = reply.body["client_secret"].as_str().unwrap();
    assert!(server.state.sealer().verify_client_secret(client_id, secret));
}

#[tokio::test]
async fn initial_access_token_is_required_for_web_clients_only_when_configured() {
    let server =
        server("[registration]\ninitial_access_token = \"operator-token-0123456789\"").await;
    let web = json!({"redirect_uris": ["https://webmail.example.com/cb"]}).to_string();
    let reply = server.send(json_request("POST", "/register", &web, None)).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(
        reply.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    let reply =
        server.send(json_request("POST", "/register", &web, Some("wrong-token-0123456789"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = server
        .send(json_request("POST", "/register", &web, Some("operator-token-0123456789")))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    // Native public clients never need it.
    assert_eq!(server.register(native_client()).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_flipped_byte_anywhere_in_a_client_id_is_refused() {
    let server = server("").await;
    let client_id =
        server.register(native_client()).await.body["client_id"].as_str().unwrap().to_owned();
    let bytes = client_id.as_bytes();
    for index in 0..bytes.len() {
        for flip in [0x01u8, 0x20] {
            let mut altered = bytes.to_vec();
            altered[index] ^= flip;
            let Ok(altered) = String::from_utf8(altered) else { continue };
            if altered == client_id {
                continue;
            }
            assert!(
                server.state.clients().open(&altered).await.is_err(),
                "byte {index} ^ {flip:#x} was not noticed"
            );
        }
    }
    for length in [0, 3, 4, 10, client_id.len() / 2, client_id.len() - 1] {
        assert!(
            server.state.clients().open(&client_id[..length]).await.is_err(),
            "truncated to {length}"
        );
    }
}

#[tokio::test]
async fn ids_past_the_maximum_age_are_refused() {
    let server = server("[registration]\nclient_id_max_age_seconds = 3600").await;
    let client_id =
        server.register(native_client()).await.body["client_id"].as_str().unwrap().to_owned();
    server.clock.advance(3600);
    assert!(server.state.clients().open(&client_id).await.is_ok());
    server.clock.advance(1);
    assert!(matches!(server.state.clients().open(&client_id).await, Err(ClientIdError::Expired)));
}

#[tokio::test]
async fn well_known_public_client_ids_need_no_registration() {
    let server =
        server("[[public_clients]]\nclient_id = \"open\"\nname = \"Any mail program\"").await;
    let client = server.state.clients().open("open").await.unwrap();
    assert_eq!(client.origin, ClientOrigin::WellKnown);
    assert!(client.accepts_any_native_redirect());
    assert!(client.metadata.redirect_uris.is_empty());
    assert!(client.vendor.is_none(), "a well-known id is never verified");
    assert_eq!(client.metadata.client_name.default_value(), Some("Any mail program"));
    assert!(matches!(server.state.clients().open("closed").await, Err(ClientIdError::Unknown)));
}

/// Every malformed request gets RFC 7591 error JSON with a 4xx, never a 500.
#[tokio::test]
async fn hostile_requests_get_rfc7591_errors() {
    let server =
        server("[registration]\nrate_limit_per_minute = 1000\nrate_limit_burst = 1000").await;
    let base = || native_client();
    let with = |member: &str, value: Value| {
        let mut request = base();
        request[member] = value;
        request.to_string()
    };
    let private_key = json!({"keys": [{"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]});
    let small_rsa = json!({"keys": [{"kty": "RSA", "e": "AQAB", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"}]});
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{".into(), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        ("[]".into(), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        ("null".into(), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        (
            with("redirect_uris", json!("http://127.0.0.1/")),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (with("redirect_uris", json!({"a": 1})), StatusCode::BAD_REQUEST, "invalid_redirect_uri"),
        (
            with("redirect_uris", Value::from(vec!["http://127.0.0.1/"; 2000])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["http://evil.example.com/"])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://a.example.com/\u{0}"])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://*.example.com/"])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://a.example.com/#f"])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!([format!("https://a.example.com/{}", "a".repeat(5000))])),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            with("client_name", json!("Mail\u{1b}[31m")),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            with("client_name", json!("\u{202e}liaM")),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            with("client_name", json!("n".repeat(10_000))),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (with("client_name", json!(42)), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        (
            with("grant_types", json!(["implicit"])),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            with("response_types", json!(["token"])),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            with("token_endpoint_auth_method", json!("client_secret_jwt")),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (with("jwks", private_key), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        (with("jwks", small_rsa), StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        (
            with("jwks_uri", json!("https://127.0.0.1/jwks")),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            with("software_statement", json!(17)),
            StatusCode::BAD_REQUEST,
            "invalid_software_statement",
        ),
    ];
    for (body, status, code) in cases {
        let reply = server.send(json_request("POST", "/register", &body, None)).await;
        assert_error(&reply, status, code);
    }

    // A point that is not on the P-256 curve.
    let mut off_curve = base();
    off_curve["token_endpoint_auth_method"] = "private_key_jwt".into();
    off_curve["jwks"] = json!({"keys": [{"kty": "EC", "crv": "P-256",
        "x": letterlock_protocol::base64url::encode([1u8; 32]), "y": letterlock_protocol::base64url::encode([2u8; 32])}]});
    assert_error(
        &server.register(off_curve).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );

    // Invalid UTF-8.
    let request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(b"{\"client_name\": \"\xff\xfe\"}".to_vec()))
        .unwrap();
    assert_error(&server.send(request).await, StatusCode::BAD_REQUEST, "invalid_client_metadata");

    // Wrong or missing content type.
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut builder = Request::post("/register");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let reply =
            server.send(builder.body(Body::from(native_client().to_string())).unwrap()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    }
    // Parameters on the media type are fine.
    let request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(native_client().to_string()))
        .unwrap();
    assert_eq!(server.send(request).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_huge_body_is_refused_with_413() {
    let server = server("[limits]\nmax_body_bytes = 4096").await;
    let mut request = native_client();
    request["padding"] = "x".repeat(5000).into();
    let reply = server.register(request).await;
    assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_client_metadata");
}

#[tokio::test]
async fn a_client_id_that_does_not_open_is_invalid_client() {
    let server = server("").await;
    let error = server
        .state
        .clients()
        .open("ll1.nokey.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap_err();
    let error = letterlock_server::error::ApiError::from(error);
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    let response = axum::response::IntoResponse::into_response(error);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "the client id was sealed under an unknown key");
}

/// Issue 16 point 7: a provider that offers no dynamic registration publishes no
/// `registration_endpoint` (RFC 8414 §2), and `POST /register` is an OAuth error, not a client.
#[tokio::test]
async fn registration_can_be_turned_off() {
    let server = server("[registration]\nenabled = false").await;
    let metadata = server.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert!(metadata.body.get("registration_endpoint").is_none(), "{}", metadata.body);
    assert!(metadata.body["token_endpoint"].is_string());
    let reply = server.register(native_client()).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "invalid_request");
    assert!(reply.body.get("client_id").is_none());
}

/// Issue 16 point 7: a provider may take only private-use redirects from installed programs
/// (RFC 8252 §7.1), as Fastmail does; a loopback one is `invalid_redirect_uri`.
#[tokio::test]
async fn loopback_redirects_can_be_refused_at_registration() {
    let server = server("[registration]\nloopback_redirects = false").await;
    let reply = server.register(native_client()).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    let mut request = native_client();
    request["redirect_uris"] = json!(["http://[::1]/callback"]);
    assert_error(&server.register(request).await, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    let mut request = native_client();
    request["redirect_uris"] = json!(["com.example.mail:/oauth2redirect"]);
    let reply = server.register(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}
