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
    let client = server.state.open_client(reply.body["client_id"].as_str().unwrap()).await.unwrap();
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
    let client = server.state.open_client(reply.body["client_id"].as_str().unwrap()).await.unwrap();
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
    let client = prefer.state.open_client(reply.body["client_id"].as_str().unwrap()).await.unwrap();
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
    assert_error(
        &register(&server, Some(&statement)).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    );
}

#[tokio::test]
async fn a_vendor_removed_from_the_configuration_stops_vouching() {
    let vendor = vendor("prefer");
    let server = server(&vendor.config).await;
    let reply = register(&server, Some(&sign(&vendor.key, &claims(json!({}))))).await;
    let client_id = reply.body["client_id"].as_str().unwrap();
    assert!(server.state.open_client(client_id).await.unwrap().vendor.is_some());
    // The same database and keys, with the vendor no longer trusted.
    let config = letterlock_server::config::Config::parse("").unwrap();
    let clock = std::sync::Arc::new(letterlock_server::clock::ManualClock::new(NOW));
    let without = letterlock_server::AppState::new(&config, server.state.store().clone(), clock)
        .await
        .unwrap();
    let client = without.open_client(client_id).await.unwrap();
    assert!(client.vendor.is_none(), "no longer shown as verified");
}
