//! The token endpoint's defences at the HTTP level: client assertions and secrets, DPoP binding and
//! nonces, revocation, introspection, malformed requests, per-resource token types. (Moved out of
//! flow.rs, assertions unchanged.)

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey, jws};
use letterlock_protocol::base64url;
use serde_json::{Value, json};

use crate::flow::*;
use crate::support::NOW;

fn assertion(key: &PrivateKey, client_id: &str, audience: &str, exp: i64, jti: &str) -> String {
    let claims = json!({"iss": client_id, "sub": client_id, "aud": audience, "exp": exp, "iat": NOW, "jti": jti});
    jws::sign(key, None, "JWT", claims.as_object().unwrap(), &SystemRandom::new()).unwrap()
}

#[tokio::test]
async fn private_key_jwt_client_assertions() {
    let server = with_user(CONFIG).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let client_id = register(&server, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_jwk(None).to_json()]}})).await;
    let other_key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    // Good assertion.
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap().to_owned();
    let good = assertion(&key, &client_id, "http://127.0.0.1:8080", NOW + 60, "jti-1");
    let reply = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", bearer),
            ("client_assertion", &good),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    // Each bad assertion is invalid_client (401), checked on a refresh.
    for (name, bad) in [
        ("replayed", good.clone()),
        ("wrong aud", assertion(&key, &client_id, "https://other.example", NOW + 60, "jti-2")),
        ("expired", assertion(&key, &client_id, "http://127.0.0.1:8080", NOW - 120, "jti-3")),
        (
            "lives too long",
            assertion(&key, &client_id, "http://127.0.0.1:8080", NOW + 3600, "jti-4"),
        ),
        (
            "another installation's key",
            assertion(&other_key, &client_id, "http://127.0.0.1:8080", NOW + 60, "jti-5"),
        ),
    ] {
        let reply = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_assertion_type", bearer),
                ("client_assertion", &bad),
            ],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.body);
        assert_eq!(reply.body["error"], "invalid_client", "{name}");
    }
    // The token endpoint URL is an accepted audience too; and `none` is refused for this client.
    let by_endpoint = assertion(&key, &client_id, "http://127.0.0.1:8080/token", NOW + 60, "jti-6");
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_assertion_type", bearer),
            ("client_assertion", &by_endpoint),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_client");
}

#[tokio::test]
async fn dpop_binds_refresh_tokens_and_refuses_bad_proofs() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let jkt = letterlock_jose::key::thumbprint(&key.public_jwk(None));
    let token_url = "http://127.0.0.1:8080/token";
    let (_, redirect) = approve(&server, &client_id, &[("dpop_jkt", &jkt)]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    // The code is bound to the key named at /authorize: another key is refused.
    let stranger = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&stranger, "POST", token_url, NOW, "p0", None, None)),
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_dpop_proof", "{}", reply.body);
    let (_, redirect) = approve(&server, &client_id, &[("dpop_jkt", &jkt)]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", token_url, NOW, "p1", None, None)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["token_type"], "Bearer",
        "access tokens stay Bearer for SASL unless the client asked otherwise"
    );
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let stored = server
        .state
        .store()
        .refresh_token(&letterlock_server::secrets::hash_secret(&refresh))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.jkt.as_deref(), Some(jkt.as_str()), "the refresh token is bound to the key");

    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let private_header = {
        let mut jwk = key.public_jwk(None).to_json();
        jwk["d"] = "AAAA".into();
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})
    };
    let none_header =
        json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk(None).to_json()});
    let hmac_header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk(None).to_json()});
    for (name, proof) in [
        ("no proof", None),
        ("replayed", Some(dpop_proof(&key, "POST", token_url, NOW, "p1", None, None))),
        (
            "another URL",
            Some(dpop_proof(&key, "POST", "http://127.0.0.1:8080/other", NOW, "p2", None, None)),
        ),
        ("another method", Some(dpop_proof(&key, "GET", token_url, NOW, "p3", None, None))),
        ("stale iat", Some(dpop_proof(&key, "POST", token_url, NOW - 3600, "p4", None, None))),
        (
            "private key in the header",
            Some(dpop_proof(&key, "POST", token_url, NOW, "p5", None, Some(private_header))),
        ),
        ("alg none", Some(dpop_proof(&key, "POST", token_url, NOW, "p6", None, Some(none_header)))),
        ("HS256", Some(dpop_proof(&key, "POST", token_url, NOW, "p7", None, Some(hmac_header)))),
        ("another key", Some(dpop_proof(&stranger, "POST", token_url, NOW, "p8", None, None))),
    ] {
        let reply = token_request(&server, &refresh_form, proof.as_deref()).await;
        assert_eq!(reply.body["error"], "invalid_dpop_proof", "{name}: {}", reply.body);
    }
    let reply = token_request(
        &server,
        &refresh_form,
        Some(&dpop_proof(&key, "POST", token_url, NOW, "p9", None, None)),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the right key still works after the refused attempts: {}",
        reply.body
    );
}

#[tokio::test]
async fn dpop_nonces_are_required_when_configured() {
    let server = with_user(&CONFIG.replace("require_nonce = false", "require_nonce = true")).await;
    let client_id = register(&server, json!({})).await;
    let key = PrivateKey::generate(Algorithm::EdDsa, &SystemRandom::new()).unwrap();
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let url = "http://127.0.0.1:8080/token";
    let reply =
        token_request(&server, &form, Some(&dpop_proof(&key, "POST", url, NOW, "n1", None, None)))
            .await;
    assert_eq!(reply.body["error"], "use_dpop_nonce");
    let nonce = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let wrong = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", url, NOW, "n2", Some("made-up"), None)),
    )
    .await;
    assert_eq!(wrong.body["error"], "use_dpop_nonce");
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", url, NOW, "n3", Some(&nonce), None)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers.contains_key("dpop-nonce"));
}

#[tokio::test]
async fn dpop_bound_access_tokens_when_the_client_registered_them() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({"dpop_bound_access_tokens": true})).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(&server, &form, None).await;
    assert_eq!(reply.body["error"], "invalid_dpop_proof", "a proof is required");
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", "http://127.0.0.1:8080/token", NOW, "b1", None, None)),
    )
    .await;
    assert_eq!(reply.body["token_type"], "DPoP");
    let access = claims(&server, reply.body["access_token"].as_str().unwrap());
    assert_eq!(
        access["cnf"]["jkt"],
        letterlock_jose::key::thumbprint(&key.public_jwk(None)).as_str()
    );
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let access = reply.body["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let revoke = |token: String, client: String| {
        let server = &server;
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("token", token.as_str()), ("client_id", client.as_str())])
                .finish();
            let request = Request::post("/revoke")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            server.send(request).await
        }
    };
    // An access token: only its jti.
    assert_eq!(revoke(access.clone(), client_id.clone()).await.status, StatusCode::OK);
    assert_eq!(introspect(&server, IMAP, &access).await["active"], false);
    // Another client cannot revoke this client's refresh token; unknown tokens get 200.
    let other = register(&server, json!({})).await;
    assert_eq!(revoke(refresh.clone(), other).await.status, StatusCode::OK);
    assert_eq!(revoke("not-a-token".into(), client_id.clone()).await.status, StatusCode::OK);
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "still alive: {}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let fresh_access = reply.body["access_token"].as_str().unwrap().to_owned();
    // A refresh token: the whole grant.
    assert_eq!(revoke(refresh.clone(), client_id.clone()).await.status, StatusCode::OK);
    assert_eq!(introspect(&server, IMAP, &fresh_access).await["active"], false);
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant");
}

#[tokio::test]
async fn introspection_needs_a_resource_server_and_refuses_foreign_tokens() {
    let server = with_user(CONFIG).await;
    let body = "token=x";
    let request = Request::post("/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"], "invalid_client");
    // A token signed by another server, with the same claims shape.
    let other = crate::support::server(CONFIG).await;
    let claims = json!({"iss": "http://127.0.0.1:8080", "aud": "imaps://mail.example.com", "exp": NOW + 600, "jti": "x", "grant_id": "g"});
    let foreign = other
        .state
        .signing_keys()
        .sign("at+jwt", claims.as_object().unwrap(), NOW, &SystemRandom::new())
        .unwrap();
    assert_eq!(introspect(&server, IMAP, &foreign).await, json!({"active": false}));
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_errors() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    for (form, code) in [
        (
            vec![("grant_type", "password"), ("client_id", client_id.as_str())],
            "unsupported_grant_type",
        ),
        (vec![("client_id", client_id.as_str())], "invalid_request"),
        (
            vec![("grant_type", "authorization_code"), ("client_id", client_id.as_str())],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code", "y"),
                ("client_id", client_id.as_str()),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                ("client_id", client_id.as_str()),
            ],
            "invalid_grant",
        ),
        (vec![("grant_type", "refresh_token"), ("refresh_token", "nope")], "invalid_client"),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                (
                    "client_id",
                    "ll1.sealed-by-another-server.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                ),
            ],
            "invalid_client",
        ),
    ] {
        let reply = token_request(&server, &form, None).await;
        assert_eq!(reply.body["error"], code, "{form:?}: {}", reply.body);
        assert!(reply.status.is_client_error());
    }
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(server.send(request).await.body["error"], "invalid_request");
    // A client id sealed by another server (same key id by chance or not) is invalid_client.
    let other = crate::support::server("").await;
    let foreign = register(&other, json!({})).await;
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &foreign)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_client");
}

#[tokio::test]
async fn confidential_clients_authenticate_with_client_secret_basic() {
    use base64::Engine as _;
    for mode in ["stateless", "stored"] {
        let server = with_user(&format!("[registration]\nmode = \"{mode}\"\n{CONFIG}")).await;
        let reply = server.register(json!({"redirect_uris": ["https://webmail.example.com/cb"], "client_name": "Webmail"})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
        let secret = reply.body["client_secret"].as_str().unwrap().to_owned();
        let uri = authorize_uri(&client_id, &[("redirect_uri", "https://webmail.example.com/cb")]);
        let mut browser = Browser::default();
        let page = browser.get(&server, &uri).await;
        let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
        let page = browser.get(&server, page.location()).await;
        let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
        let page = browser
            .post(
                &server,
                "/consent",
                &[("request", &request), ("csrf", &csrf), ("decision", "approve")],
            )
            .await;
        let code = redirect_parameters(page.location())["code"].as_str().unwrap().to_owned();
        let send = |secret: String, code: String| {
            let client_id = client_id.clone();
            let server = &server;
            async move {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{client_id}:{secret}"));
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("code_verifier", VERIFIER),
                    ])
                    .finish();
                let request = Request::post("/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, format!("Basic {credentials}"))
                    .body(Body::from(body))
                    .unwrap();
                server.send(request).await
            }
        };
        let wrong = send("not-the-secret".into(), code.clone()).await;
        assert_eq!(
            (wrong.status, wrong.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{mode}"
        );
        let right = send(secret, code).await;
        assert_eq!(right.status, StatusCode::OK, "{mode}: {}", right.body);
        // And `none` is refused for a confidential client.
        let none = token_request(
            &server,
            &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client_id)],
            None,
        )
        .await;
        assert_eq!(none.body["error"], "invalid_client", "{mode}");
    }
}

#[tokio::test]
async fn a_resource_can_ask_for_dovecot_compatible_jwt_tokens() {
    let config = CONFIG.replace(
        "uri = \"imaps://mail.example.com\"",
        "uri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"",
    );
    let server = with_user(&config).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let token = reply.body["access_token"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&base64url::decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["typ"], "JWT", "the IMAP resource's tokens");
    assert_eq!(
        introspect(&server, IMAP, token).await["active"],
        true,
        "our own checks accept both typs"
    );
    let refresh = reply.body["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("resource", "https://dav.example.com/caldav/"),
        ],
        None,
    )
    .await;
    let header: Value = serde_json::from_slice(
        &base64url::decode(reply.body["access_token"].as_str().unwrap().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt", "other resources keep RFC 9068's typ");
}
