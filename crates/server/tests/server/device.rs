//! The device authorization grant (RFC 8628) and its verification page.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::flow::{ADDRESS, Browser, CONFIG, PASSWORD, register, token_request, with_user};
use crate::support::{Reply, TestServer};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start(server: &TestServer, client_id: &str) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("scope", "urn:ietf:params:oauth:scope:mail offline_access"),
        ])
        .finish();
    let request = Request::post("/device_authorization")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    server.send(request).await
}

async fn poll(server: &TestServer, client_id: &str, device_code: &str) -> Reply {
    token_request(
        server,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)],
        None,
    )
    .await
}

/// Signs in on the verification page with the code and decides.
async fn decide(server: &TestServer, user_code: &str, decision: &str) -> String {
    let mut browser = Browser::default();
    let encoded: String = url::form_urlencoded::byte_serialize(user_code.as_bytes()).collect();
    let page = browser.get(server, &format!("/device?user_code={encoded}")).await;
    assert!(page.html.contains("Sign in"), "{}", page.html);
    assert_eq!(page.field("user_code").as_deref(), Some(user_code));
    let page = browser.sign_in(server, &page, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get(server, page.location()).await;
    assert!(page.html.contains("Allow access"), "{}", page.html);
    assert!(page.html.contains("action=\"/device/consent\""));
    let csrf = page.field("csrf").unwrap();
    let request = page.field("request").unwrap();
    let page = browser
        .post(
            server,
            "/device/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("device_name", "Kitchen terminal"),
                ("decision", decision),
            ],
        )
        .await;
    page.html
}

#[tokio::test]
async fn a_device_without_a_browser_gets_tokens_after_the_person_approves() {
    let server = with_user(CONFIG).await;
    let client_id = register(
        &server,
        json!({"redirect_uris": [], "grant_types": [DEVICE_GRANT, "refresh_token"]}),
    )
    .await;
    let reply = start(&server, &client_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let device_code = reply.body["device_code"].as_str().unwrap().to_owned();
    let user_code = reply.body["user_code"].as_str().unwrap().to_owned();
    assert_eq!(reply.body["verification_uri"], "http://127.0.0.1:8080/device");
    assert_eq!(
        reply.body["verification_uri_complete"],
        format!("http://127.0.0.1:8080/device?user_code={user_code}")
    );
    assert_eq!(reply.body["interval"], 5);
    assert_eq!(reply.body["expires_in"], 600);

    assert_eq!(
        poll(&server, &client_id, &device_code).await.body["error"],
        "authorization_pending"
    );
    assert_eq!(
        poll(&server, &client_id, &device_code).await.body["error"],
        "slow_down",
        "polled at once"
    );
    let other =
        register(&server, json!({"redirect_uris": [], "grant_types": [DEVICE_GRANT]})).await;
    assert_eq!(
        poll(&server, &other, &device_code).await.body["error"],
        "invalid_grant",
        "another client's device code"
    );

    let page = decide(&server, &user_code.to_lowercase().replace('-', " "), "approve").await;
    assert!(page.contains("Device connected"), "{page}");
    server.clock.advance(5);
    let tokens = poll(&server, &client_id, &device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert!(tokens.body["refresh_token"].is_string());
    let access = server
        .state
        .signing_keys()
        .verify(tokens.body["access_token"].as_str().unwrap(), &["at+jwt"], server.state.now())
        .unwrap();
    assert_eq!(access["sub"], ADDRESS);
    let grant =
        server.state.store().grant(access["grant_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(grant.device_name, "Kitchen terminal");
    server.clock.advance(5);
    assert_eq!(
        poll(&server, &client_id, &device_code).await.body["error"],
        "invalid_grant",
        "a device code is used once"
    );
}

#[tokio::test]
async fn denied_expired_and_unregistered_device_requests() {
    let server = with_user(CONFIG).await;
    let client_id =
        register(&server, json!({"redirect_uris": [], "grant_types": [DEVICE_GRANT]})).await;
    let reply = start(&server, &client_id).await;
    let device_code = reply.body["device_code"].as_str().unwrap().to_owned();
    let page = decide(&server, reply.body["user_code"].as_str().unwrap(), "deny").await;
    assert!(page.contains("Access denied"));
    assert_eq!(poll(&server, &client_id, &device_code).await.body["error"], "access_denied");

    let reply = start(&server, &client_id).await;
    server.clock.advance(601);
    assert_eq!(
        poll(&server, &client_id, reply.body["device_code"].as_str().unwrap()).await.body["error"],
        "expired_token"
    );

    let code_client = register(&server, json!({})).await;
    let reply = start(&server, &code_client).await;
    assert_eq!(
        reply.body["error"], "unauthorized_client",
        "a client that did not register the device grant"
    );
    let _: Value = reply.body;
}

#[tokio::test]
async fn wrong_codes_are_refused_and_guessing_is_throttled() {
    let server = with_user(CONFIG).await;
    let mut browser = Browser::default();
    browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, "/device").await;
    assert!(page.html.contains("Type the code"), "{}", page.html);
    let csrf = page.field("csrf").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(
            browser
                .post(&server, "/device", &[("csrf", &csrf), ("user_code", "BCDF-GHJK")])
                .await
                .status,
        );
    }
    assert_eq!(statuses[0], StatusCode::BAD_REQUEST, "an unknown code");
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS);
    let forged = browser.post(&server, "/device", &[("user_code", "BCDF-GHJK")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token");
}

/// Issue 14, review finding 8: only `POST /device` counted guesses; the code was also looked up
/// by `GET /device?user_code=` and `POST /device/consent` without a throttle. Each path now
/// spends the same per-address budget as signing in.
#[tokio::test]
async fn guessing_codes_is_throttled_on_every_path_that_looks_one_up() {
    for path in ["GET /device?user_code=", "POST /device/consent"] {
        let server = with_user(CONFIG).await;
        let mut browser = Browser::default();
        browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
        let csrf = browser.get(&server, "/device").await.field("csrf").unwrap();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let page = if path.starts_with("GET") {
                browser.get(&server, "/device?user_code=BCDF-GHJK").await
            } else {
                browser
                    .post(
                        &server,
                        "/device/consent",
                        &[("csrf", &csrf), ("request", "BCDF-GHJK"), ("decision", "approve")],
                    )
                    .await
            };
            statuses.push(page.status);
        }
        assert_eq!(statuses[0], StatusCode::BAD_REQUEST, "{path}: an unknown code");
        assert_eq!(
            *statuses.last().unwrap(),
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {statuses:?}"
        );
    }
}
