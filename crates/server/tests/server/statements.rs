//! Software statements: trusted, unknown vendor, tampered, expired, forbidden algorithms, and
//! the require / prefer / ignore policies.

use aws_lc_rs::rand::SystemRandom;
use axum::http::StatusCode;
use letterlock_jose::{Algorithm, PrivateKey, statement};
use letterlock_protocol::base64url;
use serde_json::{Map, Value, json};

use crate::support::{NOW, TestServer, assert_error, server};

const VENDOR: &str = "https://vendor.example";

struct Vendor {
    key: PrivateKey,
    _dir: tempfile::TempDir,
    config: String,
}

/// A vendor key pair, and a configuration trusting it (through a JWKS file) under `policy`.
fn vendor(policy: &str) -> Vendor {
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let public = key.public_jwk(None);
    let jwk = key.public_jwk(Some(statement::key_id(&public))).to_json();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vendor.jwks.json");
    std::fs::write(&path, json!({ "keys": [jwk] }).to_string()).unwrap();
    let config = format!(
        "[registration]\nsoftware_statements = \"{policy}\"\n\n[[vendors]]\nissuer = \"{VENDOR}\"\nname = \"Example Vendor Ltd\"\njwks_file = \"{}\"\n",
        path.display()
    );
    Vendor { key, _dir: dir, config }
}

fn claims(extra: Value) -> Map<String, Value> {
    let mut claims = json!({
        "iss": VENDOR,
        "iat": NOW - 60,
        "exp": NOW + 86_400,
        "software_id": "example-mail",
        "client_name": "Example Mail (verified)",
        "client_uri": "https://mail.vendor.example/",
        "redirect_uris": ["http://127.0.0.1/cb"],
    })
    .as_object()
    .cloned()
    .unwrap();
    claims.extend(extra.as_object().cloned().unwrap());
    claims
}

fn sign(key: &PrivateKey, claims: &Map<String, Value>) -> String {
    statement::sign(key, claims, &SystemRandom::new()).unwrap()
}

fn request(statement: Option<&str>) -> Value {
    let mut request = json!({
        "redirect_uris": ["http://127.0.0.1/cb"],
        "client_name": "Whatever The Client Says",
        "software_id": "self-asserted",
    });
    if let Some(statement) = statement {
        request["software_statement"] = statement.into();
    }
    request
}

async fn register(server: &TestServer, statement: Option<&str>) -> crate::support::Reply {
    server.register(request(statement)).await
}

#[tokio::test]
async fn trusted_statement_overrides_metadata_and_is_echoed_unchanged() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let statement = sign(&vendor.key, &claims(json!({})));
    let reply = register(&server, Some(&statement)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["software_statement"], statement.as_str());
    assert_eq!(reply.body["client_name"], "Example Mail (verified)");
    assert_eq!(reply.body["software_id"], "example-mail");
    assert_eq!(reply.body["client_uri"], "https://mail.vendor.example/");
    let client =
        server.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
    let vendor_seen = client.vendor.expect("verified");
    assert_eq!(vendor_seen.name, "Example Vendor Ltd");
    assert_eq!(vendor_seen.issuer, VENDOR);
}

#[tokio::test]
async fn inline_vendor_keys_work_like_a_file() {
    let key = PrivateKey::generate(Algorithm::EdDsa, &SystemRandom::new()).unwrap();
    let jwk = key.public_jwk(None);
    let config = format!(
        "[[vendors]]\nissuer = \"{VENDOR}\"\nname = \"Inline\"\njwks = {{ keys = [ {{ kty = \"OKP\", crv = \"Ed25519\", x = \"{}\" }} ] }}\n",
        jwk.x
    );
    let server = server(&config).await;
    let reply = register(&server, Some(&sign(&key, &claims(json!({}))))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let client =
        server.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
    assert_eq!(client.vendor.unwrap().name, "Inline");
}

#[tokio::test]
async fn unknown_vendor_is_unverified_under_prefer_and_unapproved_under_require() {
    let stranger = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let statement = sign(&stranger, &claims(json!({"iss": "https://stranger.example"})));

    let prefer = server(&vendor("prefer").config).await;
    let reply = register(&prefer, Some(&statement)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.body["client_name"], "Whatever The Client Says",
        "an untrusted statement is not applied"
    );
    assert!(reply.body.get("software_statement").is_none(), "an unused statement is not echoed");
    let client =
        prefer.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
    assert!(client.vendor.is_none());

    let require = server(&vendor("require").config).await;
    assert_error(
        &register(&require, Some(&statement)).await,
        StatusCode::BAD_REQUEST,
        "unapproved_software_statement",
    );
    assert_error(
        &register(&require, None).await,
        StatusCode::BAD_REQUEST,
        "unapproved_software_statement",
    );
}

#[tokio::test]
async fn tampered_expired_and_forbidden_statements_are_invalid() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let genuine = sign(&vendor.key, &claims(json!({})));
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = base64url::encode(
        serde_json::to_vec(&claims(json!({"client_name": "Your Bank"}))).unwrap(),
    );
    let tampered = parts.join(".");
    let expired = sign(&vendor.key, &claims(json!({"exp": NOW - 3600})));
    let future = sign(&vendor.key, &claims(json!({"iat": NOW + 3600})));
    let payload = base64url::encode(serde_json::to_vec(&claims(json!({}))).unwrap());
    let none = format!("{}.{payload}.", base64url::encode(br#"{"alg":"none"}"#));
    let hmac =
        format!("{}.{payload}.c2lnbmF0dXJl", base64url::encode(br#"{"alg":"HS256","typ":"JWT"}"#));
    for (name, statement) in [
        ("tampered", tampered.as_str()),
        ("expired", &expired),
        ("from the future", &future),
        ("alg none", &none),
        ("HS256", &hmac),
        ("garbage", "not.a.jws"),
        ("empty", ""),
    ] {
        let reply = register(&server, Some(statement)).await;
        assert_eq!(reply.body["error"], "invalid_software_statement", "{name}: {}", reply.body);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
    }
}

#[tokio::test]
async fn ignore_policy_does_not_look_at_statements() {
    let vendor = vendor("ignore");
    let server = server(&vendor.config).await;
    let reply = register(&server, Some("not even a JWS")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.body.get("software_statement").is_none());
    let genuine = sign(&vendor.key, &claims(json!({})));
    let reply = register(&server, Some(&genuine)).await;
    assert_eq!(reply.body["client_name"], "Whatever The Client Says");
}

#[tokio::test]
async fn a_statement_cannot_smuggle_in_bad_metadata() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let statement =
        sign(&vendor.key, &claims(json!({"redirect_uris": ["http://evil.example.com/"]})));
    // The request leaves the redirect URIs to the statement, which names a bad one.
    let request =
        json!({"client_name": "Whatever The Client Says", "software_statement": statement});
    assert_error(&server.register(request).await, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
}

#[tokio::test]
async fn a_vendor_removed_from_the_configuration_stops_vouching() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let reply = register(&server, Some(&sign(&vendor.key, &claims(json!({}))))).await;
    let client_id = reply.body["client_id"].as_str().unwrap();
    assert!(server.state.clients().open(client_id).await.unwrap().vendor.is_some());
    // The same database and keys, with the vendor no longer trusted.
    let config = letterlock_server::config::Config::parse("").unwrap();
    let clock = std::sync::Arc::new(letterlock_server::clock::ManualClock::new(NOW));
    let without = letterlock_server::AppState::new(&config, server.state.store().clone(), clock)
        .await
        .unwrap();
    let client = without.clients().open(client_id).await.unwrap();
    assert!(client.vendor.is_none(), "no longer shown as verified");
}

/// Issue 14, review finding 11: a statement copied out of a vendor's public app vouches only
/// for the redirect URIs (and keys) it names, so it lends "Verified" to nothing else.
#[tokio::test]
async fn a_copied_statement_vouches_only_for_its_own_redirects_and_keys() {
    let vendor_prefer = vendor("prefer");
    let prefer = server(&vendor_prefer.config).await;
    let vendor_require = vendor("require");
    let require = server(&vendor_require.config).await;
    let app_key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let other_key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let jwks = |key: &PrivateKey| json!({"keys": [key.public_jwk(None).to_json()]});
    let mut without_redirects = claims(json!({}));
    without_redirects.remove("redirect_uris");
    let with_jwks =
        claims(json!({"jwks": jwks(&app_key), "token_endpoint_auth_method": "private_key_jwt"}));
    let cases: [(&str, Map<String, Value>, Value); 4] = [
        ("a statement naming no redirect", without_redirects, request(None)),
        (
            "a request with another redirect",
            claims(json!({})),
            json!({"redirect_uris": ["com.attacker.app:/cb"], "client_name": "Mine"}),
        ),
        (
            "a request with one redirect more",
            claims(json!({})),
            json!({"redirect_uris": ["http://127.0.0.1/cb", "com.attacker.app:/cb"]}),
        ),
        (
            "a request with another key",
            with_jwks,
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "jwks": jwks(&other_key), "token_endpoint_auth_method": "private_key_jwt"}),
        ),
    ];
    for (name, statement_claims, request) in cases {
        let mut request = request;
        request["software_statement"] = sign(&vendor_prefer.key, &statement_claims).into();
        let reply = prefer.register(request.clone()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.body);
        assert!(reply.body.get("software_statement").is_none(), "{name}: not used, not echoed");
        assert_ne!(reply.body["client_name"], "Example Mail (verified)", "{name}: not applied");
        let client =
            prefer.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
        assert!(client.vendor.is_none(), "{name}: not verified");

        request["software_statement"] = sign(&vendor_require.key, &statement_claims).into();
        assert_error(
            &require.register(request).await,
            StatusCode::BAD_REQUEST,
            "unapproved_software_statement",
        );
    }

    // The vendor's own app: the statement's redirects (and keys) are the registration's.
    for request in [request(None), json!({"client_name": "Left out: the statement names them"})] {
        let mut request = request;
        request["software_statement"] = sign(&vendor_require.key, &claims(json!({}))).into();
        let reply = require.register(request).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["redirect_uris"], json!(["http://127.0.0.1/cb"]));
        let client =
            require.state.clients().open(reply.body["client_id"].as_str().unwrap()).await.unwrap();
        assert!(client.vendor.is_some());
    }
    let mut request = json!({"redirect_uris": ["http://127.0.0.1/cb"], "jwks": jwks(&app_key), "token_endpoint_auth_method": "private_key_jwt"});
    request["software_statement"] = sign(
        &vendor_require.key,
        &claims(json!({"jwks": jwks(&app_key), "token_endpoint_auth_method": "private_key_jwt"})),
    )
    .into();
    let reply = require.register(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

/// Issue 14, review finding 11: client ids sealed before statements had to name their redirect
/// URIs may carry a copied statement's vendor; they no longer show as verified.
#[tokio::test]
async fn ids_vouched_for_before_the_redirect_check_are_not_verified() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let sealed = json!({
        "m": {"redirect_uris": ["com.attacker.app:/cb"], "client_name": "Example Mail (verified)", "token_endpoint_auth_method": "none", "application_type": "native"},
        "t": NOW,
        "v": VENDOR,
    });
    let client_id = server
        .state
        .sealer()
        .seal(sealed.to_string().as_bytes(), server.state.issuer().as_str(), &SystemRandom::new())
        .unwrap();
    let client = server.state.clients().open(&client_id).await.unwrap();
    assert!(client.vendor.is_none(), "an old id's vendor is not shown");

    // Stored registrations keep their statement: it is checked again when the client opens.
    let stored = crate::support::server(
        &vendor.config.replace("[registration]\n", "[registration]\nmode = \"stored\"\n"),
    )
    .await;
    let mut without_redirects = claims(json!({}));
    without_redirects.remove("redirect_uris");
    stored
        .state
        .store()
        .insert_client(&letterlock_store::ClientRecord {
            client_id: "old-stored".into(),
            metadata: json!({"redirect_uris": ["com.attacker.app:/cb"], "token_endpoint_auth_method": "none", "application_type": "native"}).to_string(),
            software_statement: Some(sign(&vendor.key, &without_redirects)),
            vendor: Some(VENDOR.into()),
            registration_token_hash: "x".into(),
            client_secret_hash: None,
            issued_at: NOW,
            updated_at: NOW,
        })
        .await
        .unwrap();
    let client = stored.state.clients().open("old-stored").await.unwrap();
    assert!(client.vendor.is_none(), "a stored statement naming no redirect does not vouch");
}
