//! The devices page and its JSON API, and the revocation feed.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::flow::{ADDRESS, Browser, CONFIG, PASSWORD, approve, redeem, register, with_user};
use crate::support::TestServer;

async fn signed_in(server: &TestServer) -> Browser {
    let mut browser = Browser::default();
    let page = browser.sign_in_at_account(server, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/account");
    browser
}

async fn refresh(server: &TestServer, tokens: &Value, client: &str) -> crate::support::Reply {
    let refresh = tokens["refresh_token"].as_str().unwrap();
    crate::flow::token_request(
        server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client)],
        None,
    )
    .await
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// The revocation feed after `after`, as the IMAP gateway reads it.
pub async fn feed(server: &TestServer, after: i64, wait: u64) -> Value {
    let request = Request::get(format!("/revocations?after={after}&wait={wait}"))
        .header(header::AUTHORIZATION, basic("imap-gateway", "imap-gateway-secret-0123"))
        .body(Body::empty())
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn revoking_one_device_leaves_the_others_and_reaches_the_feed() {
    let server = with_user(CONFIG).await;
    let laptop = register(&server, json!({"client_name": "Laptop Mail"})).await;
    let phone = register(&server, json!({"client_name": "Phone Mail"})).await;
    let (_, laptop_code) = approve(&server, &laptop, &[]).await;
    let (_, phone_code) = approve(&server, &phone, &[]).await;
    let laptop_tokens = redeem(&server, &laptop, laptop_code["code"].as_str().unwrap()).await.body;
    let phone_tokens = redeem(&server, &phone, phone_code["code"].as_str().unwrap()).await.body;
    assert_eq!(feed(&server, 0, 0).await, json!({"revocations": [], "cursor": 0}));

    let mut browser = signed_in(&server).await;
    let page = browser.get(&server, "/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Laptop Mail") && page.html.contains("Phone Mail"), "{}", page.html);
    assert!(page.html.contains("Not verified"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csrf = page.field("csrf").unwrap();

    // The JSON API lists the same devices.
    let reply = browser.get(&server, "/account/api/devices").await;
    let devices: Value = serde_json::from_str(&reply.html).unwrap();
    assert_eq!(devices["user"], ADDRESS);
    let laptop_grant = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|device| device["application"] == "Laptop Mail")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Revoke the laptop on the page, with the CSRF token; without it, nothing happens.
    let forged = browser.post(&server, "/account/revoke", &[("grant", &laptop_grant)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let page = browser
        .post(&server, "/account/revoke", &[("csrf", &csrf), ("grant", &laptop_grant)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    assert_eq!(
        refresh(&server, &laptop_tokens, &laptop).await.body["error"],
        "invalid_grant",
        "the lost laptop is cut off"
    );
    assert_eq!(
        refresh(&server, &phone_tokens, &phone).await.status,
        StatusCode::OK,
        "the phone keeps working"
    );

    // The feed tells the front doors.
    let news = feed(&server, 0, 0).await;
    assert_eq!(news["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(news["revocations"][0]["grant_id"], laptop_grant.as_str());
    let cursor = news["cursor"].as_i64().unwrap();
    assert_eq!(feed(&server, cursor, 0).await["revocations"], json!([]));

    // Revoke all through the API, with X-CSRF-Token.
    let request = Request::post("/account/api/devices/revoke-all")
        .header(header::COOKIE, browser.cookie_header().unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(request).await.status, StatusCode::FORBIDDEN, "no CSRF header");
    let request = Request::post("/account/api/devices/revoke-all")
        .header(header::COOKIE, browser.cookie_header().unwrap())
        .header("X-CSRF-Token", devices["csrf"].as_str().unwrap())
        .body(Body::empty())
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.body, json!({"revoked": 1}));
    assert_eq!(feed(&server, cursor, 0).await["revocations"].as_array().unwrap().len(), 1);
}

/// Review 2026-12-01, finding 17: an access token revoked by RFC 7009 reaches the feed, named
/// by its `jti` beside its grant, so that front doors refuse it; its grant lives on.
#[tokio::test]
async fn revoking_an_access_token_reaches_the_feed_with_its_jti() {
    use base64::Engine as _;
    let server = with_user(CONFIG).await;
    let client = register(&server, json!({})).await;
    let (_, code) = approve(&server, &client, &[]).await;
    let tokens = redeem(&server, &client, code["code"].as_str().unwrap()).await.body;
    let access = tokens["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    let revoke = async || {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("token", access), ("client_id", client.as_str())])
            .finish();
        let request = Request::post("/revoke")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        assert_eq!(server.send(request).await.status, StatusCode::OK);
    };
    revoke().await;
    let expected = json!([{
        "cursor": 1,
        "grant_id": claims["grant_id"],
        "jti": claims["jti"],
        "revoked_at": crate::support::NOW,
    }]);
    assert_eq!(feed(&server, 0, 0).await["revocations"], expected);
    revoke().await;
    assert_eq!(feed(&server, 0, 0).await["revocations"], expected, "fed once");
    assert_eq!(refresh(&server, &tokens, &client).await.status, StatusCode::OK, "the grant lives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_long_polls_until_a_revocation() {
    let server = with_user(CONFIG).await;
    let client = register(&server, json!({})).await;
    let (_, code) = approve(&server, &client, &[]).await;
    let tokens = redeem(&server, &client, code["code"].as_str().unwrap()).await.body;
    let grant_id = server
        .state
        .signing_keys()
        .verify(tokens["access_token"].as_str().unwrap(), &["at+jwt"], server.state.now())
        .unwrap()["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = {
        let request = Request::get("/revocations?after=0&wait=20")
            .header(header::AUTHORIZATION, basic("imap-gateway", "imap-gateway-secret-0123"))
            .body(Body::empty())
            .unwrap();
        let router = server.router.clone();
        tokio::spawn(async move { tower::ServiceExt::oneshot(router, request).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing revoked yet: the request waits");
    server.state.store().revoke_grant(&grant_id, None, server.state.now()).await.unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("answered")
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["revocations"][0]["grant_id"], grant_id.as_str());
}

#[tokio::test]
async fn the_feed_and_the_api_need_credentials() {
    let server = with_user(CONFIG).await;
    let reply = server.get("/revocations").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let request = Request::get("/revocations")
        .header(header::AUTHORIZATION, basic("imap-gateway", "wrong-secret-0123456"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(request).await.status, StatusCode::UNAUTHORIZED);
    let request = Request::get("/revocations?after=x")
        .header(header::AUTHORIZATION, basic("imap-gateway", "imap-gateway-secret-0123"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(request).await.body["error"], "invalid_request");
    assert_eq!(server.get("/account/api/devices").await.status, StatusCode::UNAUTHORIZED);
    let page = Browser::default().get(&server, "/account").await;
    assert!(page.html.contains("Sign in"), "the page asks for sign-in");
}

#[tokio::test]
async fn changing_the_password_can_revoke_every_device() {
    let server = with_user(CONFIG).await;
    let client = register(&server, json!({})).await;
    let (_, code) = approve(&server, &client, &[]).await;
    let tokens = redeem(&server, &client, code["code"].as_str().unwrap()).await.body;
    let mut browser = signed_in(&server).await;
    let csrf = browser.get(&server, "/account").await.field("csrf").unwrap();
    let wrong = browser
        .post(
            &server,
            "/account/password",
            &[("csrf", &csrf), ("current", "not it at all"), ("new", "a brand new password")],
        )
        .await;
    assert!(wrong.html.contains("The current password is wrong."));
    let page = browser
        .post(
            &server,
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "a brand new password"),
                ("revoke_all", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(
        browser.get(&server, "/account").await.status,
        StatusCode::OK,
        "this browser stays signed in"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let reply = crate::flow::token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant");
    // Sign out.
    let csrf = browser.get(&server, "/account").await.field("csrf").unwrap();
    let page = browser.post(&server, "/account/logout", &[("csrf", &csrf)]).await;
    assert!(page.html.contains("You are signed out."));
    assert!(browser.get(&server, "/account").await.html.contains("Sign in"));
}
