//! Issue 14, item 8: when the random generator failed, the server handed out all-zero session
//! ids, CSRF tokens, codes and refresh tokens, which anyone can guess. Every secret now comes
//! from one place that fails closed: the request ends in a 500 with an incident id and nothing
//! is issued or stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_server::clock::ManualClock;
use letterlock_server::config::Config;
use letterlock_server::random::{RandomFailed, RandomSource, Randomness};
use letterlock_server::{AppState, router};
use serde_json::json;

use crate::flow::{
    ADDRESS, Browser, CONFIG, PASSWORD, approve, authorize_uri, redeem, register, token_request,
};
use crate::support::{NOW, TestServer};

/// The system generator, until it is told to fail.
#[derive(Default)]
struct Failing(AtomicBool);

impl RandomSource for Failing {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), RandomFailed> {
        if self.0.load(Ordering::Relaxed) {
            return Err(RandomFailed);
        }
        RandomSource::fill(&SystemRandom::new(), bytes)
    }
}

async fn server_with(source: Arc<Failing>) -> TestServer {
    let config = Config::parse(CONFIG).unwrap();
    let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let random = Randomness::from_source(source);
    let state = AppState::with_randomness(&config, store, clock.clone(), random).await.unwrap();
    letterlock_server::accounts::add_user(state.store(), ADDRESS, PASSWORD, NOW).await.unwrap();
    TestServer { router: router(state.clone()), state, clock }
}

async fn rows(server: &TestServer, table: &str) -> i64 {
    let counts = server.state.store().row_counts().await.unwrap();
    counts.into_iter().find(|(name, _)| *name == table).unwrap().1
}

#[tokio::test]
async fn a_failing_random_generator_issues_no_secret() {
    let source = Arc::new(Failing::default());
    let server = server_with(source.clone()).await;
    let client_id = register(&server, json!({})).await;
    let device_client = register(
        &server,
        json!({"redirect_uris": [], "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
    )
    .await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let tokens = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_owned();

    // The sign-in page (and its token against login CSRF) comes before the generator fails.
    let mut browser = Browser::default();
    let sign_in = browser.get(&server, "/account").await;
    source.0.store(true, Ordering::Relaxed);
    let sessions = rows(&server, "sessions").await;
    let page = browser.sign_in(&server, &sign_in, ADDRESS, PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "sign-in with a failed generator gave cookie {:?}",
        page.headers.get(header::SET_COOKIE)
    );
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(rows(&server, "sessions").await, sessions, "no session stored");

    let requests = rows(&server, "authorization_requests").await;
    let page = Browser::default().get(&server, &authorize_uri(&client_id, &[])).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", page.html);
    assert!(page.html.contains("incident"), "the page names the incident: {}", page.html);
    assert_eq!(rows(&server, "authorization_requests").await, requests, "no request stored");

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", &client_id),
    ];
    let reply = token_request(&server, &form, None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.body);
    assert_eq!(reply.body["error"], "server_error");
    assert!(reply.body["error_description"].as_str().unwrap().contains("incident"));
    assert!(reply.body.get("refresh_token").is_none() && reply.body.get("access_token").is_none());

    let codes = rows(&server, "device_codes").await;
    let body = format!("client_id={device_client}");
    let request = Request::post("/device_authorization")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.body);
    assert!(reply.body.get("device_code").is_none());
    assert_eq!(rows(&server, "device_codes").await, codes, "no device code stored");

    // Once the generator works again, the refresh token that was not spent still refreshes.
    source.0.store(false, Ordering::Relaxed);
    let reply = token_request(&server, &form, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
