//! Issue 16, points 4 and 5: scopes read liberally (RFC 6749 §3.3: unknown ones dropped, the
//! autoconfig draft's protocol names mapped, a refresh still never widens) and OpenID Connect
//! Core basics: the ID token with `nonce` (§3.1.3.3, §3.1.3.6), the UserInfo endpoint (§5.3)
//! with its RFC 6750 §3 refusals, and the discovery members (OpenID Connect Discovery §3).

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_protocol::base64url;
use serde_json::{Map, Value, json};

use crate::flow::{
    ADDRESS, Browser, CONFIG, VERIFIER, approve, authorize_uri, redeem, redirect_parameters,
    register, token_request, with_user,
};
use crate::support::{NOW, Reply, TestServer};

const ISSUER: &str = "http://127.0.0.1:8080";
const MAIL: &str = "urn:ietf:params:oauth:scope:mail";
const CALENDARS: &str = "urn:ietf:params:oauth:scope:calendars";

/// The verified claims of an ID token, with its header's `typ` checked (OpenID Connect Core
/// §2: a JWT, not an access token).
fn id_token_claims(server: &TestServer, id_token: &str) -> Map<String, Value> {
    server
        .state
        .signing_keys()
        .verify(id_token, &["JWT"], server.state.now())
        .expect("an ID token signed by the server's key")
}

async fn userinfo(server: &TestServer, method: &str, authorization: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri("/userinfo");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    server.send(request.body(Body::empty()).unwrap()).await
}

fn challenge(reply: &Reply) -> &str {
    reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap()
}

/// Signs in, approves `scope` with `nonce` and redeems the code.
async fn tokens(server: &TestServer, client_id: &str, scope: &str, nonce: Option<&str>) -> Reply {
    let mut extra = vec![("scope", scope)];
    if let Some(nonce) = nonce {
        extra.push(("nonce", nonce));
    }
    let (_, redirect) = approve(server, client_id, &extra).await;
    let reply = redeem(server, client_id, redirect["code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
}

#[tokio::test]
async fn the_code_exchange_of_an_openid_grant_returns_an_id_token_with_the_nonce() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let scope = format!("openid email {MAIL} offline_access");
    let reply = tokens(&server, &client_id, &scope, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(reply.body["scope"], format!("{MAIL} offline_access openid email"));
    let id_token = reply.body["id_token"].as_str().expect("an id_token with openid");
    let claims = id_token_claims(&server, id_token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], ADDRESS);
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["azp"], client_id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["auth_time"], NOW, "the session began when the person signed in");
    assert!(claims["exp"].as_i64().unwrap() > NOW);
    assert_eq!(claims["email"], ADDRESS, "with the email scope");
    assert_eq!(claims["email_verified"], true);
    // The ID token is not an access token: no verifier takes it as one.
    assert!(server.state.signing_keys().verify(id_token, &["at+jwt"], NOW).is_err());
    let reply = userinfo(&server, "GET", Some(&format!("Bearer {id_token}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Without a nonce in the request, none in the token (§3.1.3.6).
    let reply = tokens(&server, &client_id, &scope, None).await;
    let claims = id_token_claims(&server, reply.body["id_token"].as_str().unwrap());
    assert!(!claims.contains_key("nonce"));
    let reply = tokens(&server, &client_id, "openid", None).await;
    let claims = id_token_claims(&server, reply.body["id_token"].as_str().unwrap());
    assert!(!claims.contains_key("email"), "no email without the email scope");
}

#[tokio::test]
async fn no_id_token_without_openid() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let reply = tokens(&server, &client_id, &format!("{MAIL} offline_access"), Some("n")).await;
    assert!(reply.body.get("id_token").is_none(), "{}", reply.body);
    // And the access token of such a grant does not open UserInfo (§5.3: `openid` is needed).
    let access = reply.body["access_token"].as_str().unwrap();
    let reply = userinfo(&server, "GET", Some(&format!("Bearer {access}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(challenge(&reply).starts_with("Bearer error=\"insufficient_scope\", scope=\"openid\""));
}

#[tokio::test]
async fn userinfo_answers_get_and_post_with_what_the_scope_covers() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let reply = tokens(&server, &client_id, &format!("openid email {MAIL}"), None).await;
    let bearer = format!("Bearer {}", reply.body["access_token"].as_str().unwrap());
    for method in ["GET", "POST"] {
        let reply = userinfo(&server, method, Some(&bearer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.body);
        assert_eq!(
            reply.body,
            json!({"sub": ADDRESS, "email": ADDRESS, "email_verified": true}),
            "{method}"
        );
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let lower = bearer.replacen("Bearer", "bearer", 1);
    assert_eq!(userinfo(&server, "GET", Some(&lower)).await.status, StatusCode::OK);
    // Without `email`, only `sub`.
    let reply = tokens(&server, &client_id, "openid", None).await;
    let bearer = format!("Bearer {}", reply.body["access_token"].as_str().unwrap());
    assert_eq!(userinfo(&server, "GET", Some(&bearer)).await.body, json!({"sub": ADDRESS}));
}

#[tokio::test]
async fn userinfo_refuses_missing_garbage_expired_and_revoked_tokens_with_a_challenge() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let reply =
        tokens(&server, &client_id, &format!("openid email {MAIL} offline_access"), None).await;
    let access = reply.body["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    // RFC 6750 §3.1: no credentials, a bare challenge.
    let reply = userinfo(&server, "GET", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&reply), "Bearer");
    for (name, authorization) in [
        ("garbage", "Bearer not-a-token".to_owned()),
        ("a tampered token", format!("Bearer {access}x")),
        ("a token sent as DPoP though not bound", format!("DPoP {access}")),
    ] {
        let reply = userinfo(&server, "GET", Some(&authorization)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.body);
        assert_eq!(reply.body["error"], "invalid_token", "{name}");
        assert!(challenge(&reply).contains("error=\"invalid_token\""), "{name}");
    }
    let reply = userinfo(&server, "GET", Some("Basic YTpi")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(challenge(&reply).starts_with("Bearer error=\"invalid_request\""));
    // The person revokes the device: its live access token stops at once.
    let bearer = format!("Bearer {access}");
    assert_eq!(userinfo(&server, "GET", Some(&bearer)).await.status, StatusCode::OK);
    let grant_id =
        server.state.signing_keys().verify(&access, &["at+jwt"], NOW).unwrap()["grant_id"]
            .as_str()
            .unwrap()
            .to_owned();
    server.state.store().revoke_grant(&grant_id, None, NOW).await.unwrap();
    let reply = userinfo(&server, "GET", Some(&bearer)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(challenge(&reply).starts_with("Bearer error=\"invalid_token\""));
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant");
    // An expired token.
    let reply = tokens(&server, &client_id, "openid", None).await;
    let bearer = format!("Bearer {}", reply.body["access_token"].as_str().unwrap());
    server.clock.advance(3600);
    let reply = userinfo(&server, "GET", Some(&bearer)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
}

/// RFC 9449 §7.1: a DPoP-bound token opens UserInfo only as `DPoP` with a proof by its key for
/// this request and this token (`ath`).
#[tokio::test]
async fn userinfo_takes_dpop_bound_tokens_with_their_proof() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({"dpop_bound_access_tokens": true})).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let (_, redirect) = approve(&server, &client_id, &[("scope", "openid email")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", redirect["code"].as_str().unwrap()),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let proof = proof(&key, "POST", &format!("{ISSUER}/token"), "t1", None);
    let reply = token_request(&server, &form, Some(&proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "DPoP");
    assert!(reply.body["id_token"].is_string());
    let access = reply.body["access_token"].as_str().unwrap();
    let url = format!("{ISSUER}/userinfo");
    let reply = dpop_userinfo(&server, "Bearer", access, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a bound token sent as Bearer");
    let reply = dpop_userinfo(&server, "DPoP", access, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "no proof");
    assert!(challenge(&reply).starts_with("DPoP error=\"invalid_token\""));
    let other = proof_for(&key, "GET", &url, "u1", "another token");
    let reply = dpop_userinfo(&server, "DPoP", access, Some(other)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a proof for another token");
    let stranger = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let theirs = proof_for(&stranger, "GET", &url, "u2", access);
    let reply = dpop_userinfo(&server, "DPoP", access, Some(theirs)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "another key");
    let good = proof_for(&key, "GET", &url, "u3", access);
    let reply = dpop_userinfo(&server, "DPoP", access, Some(good.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["email"], ADDRESS);
    let reply = dpop_userinfo(&server, "DPoP", access, Some(good)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a replayed proof");
}

async fn dpop_userinfo(
    server: &TestServer,
    scheme: &str,
    access: &str,
    proof: Option<String>,
) -> Reply {
    let mut request =
        Request::get("/userinfo").header(header::AUTHORIZATION, format!("{scheme} {access}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    server.send(request.body(Body::empty()).unwrap()).await
}

fn proof(key: &PrivateKey, method: &str, url: &str, jti: &str, ath: Option<&str>) -> String {
    let mut claims = json!({"htm": method, "htu": url, "iat": NOW, "jti": jti});
    if let Some(ath) = ath {
        claims["ath"] = ath.into();
    }
    let header = json!({"typ": "dpop+jwt", "alg": key.algorithm().as_str(),
        "jwk": key.public_jwk(None).to_json()});
    let signing_input = format!(
        "{}.{}",
        base64url::encode(serde_json::to_vec(&header).unwrap()),
        base64url::encode(serde_json::to_vec(&claims).unwrap())
    );
    let signature = key.sign(signing_input.as_bytes(), &SystemRandom::new()).unwrap();
    format!("{signing_input}.{}", base64url::encode(signature))
}

/// A proof for a resource request: `ath` is the token's SHA-256 (RFC 9449 §4.2).
fn proof_for(key: &PrivateKey, method: &str, url: &str, jti: &str, token: &str) -> String {
    let ath = base64url::encode(letterlock_jose::sha256(token.as_bytes()));
    proof(key, method, url, jti, Some(&ath))
}

#[tokio::test]
async fn unknown_scopes_are_dropped_and_autoconfig_names_mapped() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    // What Thunderbird sends from an autoconfig file, with OpenID Connect and a stranger's scope.
    let asked = "IMAP SMTP CalDAV openid profile email https://mail.google.com/ offline_access";
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[("scope", asked)])).await;
    let page = browser.sign_in(&server, &page, ADDRESS, crate::flow::PASSWORD).await;
    let page = browser.get(&server, page.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(page.html.matches("Know your name and email address").count(), 1, "{}", page.html);
    assert!(page.html.contains("Read and send your mail"));
    assert!(page.html.contains("Your calendars"));
    let redirect = crate::flow::approve_page(&server, &mut browser, &page, "Laptop").await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // RFC 6749 §5.1: the response says what was granted.
    assert_eq!(
        reply.body["scope"],
        format!("{MAIL} {CALENDARS} offline_access openid profile email")
    );
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    // A refresh too drops what it does not know and maps protocol names...
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("scope", "IMAP x-unknown"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["scope"], MAIL);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    // ...but still never widens (RFC 6749 §6): CardDAV was not granted.
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("scope", "CardDAV x-unknown"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_scope", "{}", reply.body);
    // Registration drops unknown scopes too (RFC 7591 §2) and says what it registered.
    let reply = server
        .register(
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "IMAP openid x-unknown"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["scope"], format!("{MAIL} openid"));
}

/// A scope of which nothing is known is `invalid_scope` everywhere: a grant of nothing serves
/// no one, and granting something else than asked would surprise. Malformed ones too.
#[tokio::test]
async fn a_scope_of_only_unknown_tokens_is_refused() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    for scope in ["x-unknown https://mail.google.com/", "a\\b openid"] {
        let page = browser.get(&server, &authorize_uri(&client_id, &[("scope", scope)])).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{scope}: {}", page.html);
        assert_eq!(redirect_parameters(page.location())["error"], "invalid_scope", "{scope}");
    }
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("scope", "x-unknown"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_scope", "{}", reply.body);
    let reply = server
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "x-unknown"}))
        .await;
    assert_eq!(reply.body["error"], "invalid_client_metadata", "{}", reply.body);
}

/// OpenID Connect Discovery §3: the members an OpenID Provider publishes, read back by the
/// protocol crate's metadata type.
#[tokio::test]
async fn openid_configuration_has_the_members_oidc_discovery_requires() {
    let server = with_user(CONFIG).await;
    let reply = server.get("/.well-known/openid-configuration").await;
    assert_eq!(reply.status, StatusCode::OK);
    let document = reply.body.as_object().unwrap();
    let issuer = letterlock_protocol::Issuer::parse(ISSUER).unwrap();
    let read = letterlock_protocol::AuthorizationServerMetadata::checked(&issuer, document, |_| {
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(read.userinfo_endpoint.as_deref(), Some("http://127.0.0.1:8080/userinfo"));
    assert_eq!(read.subject_types_supported, ["public"]);
    assert!(read.id_token_signing_alg_values_supported.iter().any(|alg| alg == "ES256"));
    assert_eq!(read.response_types_supported, ["code"]);
    for scope in ["openid", "profile", "email"] {
        assert!(read.scopes_supported.iter().any(|known| known == scope), "{scope}");
    }
    for claim in ["sub", "iss", "aud", "nonce", "email", "email_verified", "auth_time"] {
        assert!(read.claims_supported.iter().any(|known| known == claim), "{claim}");
    }
    assert!(document.contains_key("jwks_uri"));
}
