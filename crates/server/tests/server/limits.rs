//! Limits on what strangers can make the server store or compute: per-address rate limits on
//! registration, sign-in, authorization requests, device authorizations and token requests, and
//! the address blocks they count by.

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_server::listen::PeerAddr;
use serde_json::json;
use tower::ServiceExt as _;

use crate::flow::{
    ADDRESS, Browser, CONFIG, PASSWORD, approve, authorize_uri, dpop_proof, redeem, register,
    with_user,
};
use crate::support::{NOW, TestServer, assert_error, json_request, server};

#[tokio::test]
async fn registration_is_rate_limited_per_address_with_retry_after() {
    let server = server("[registration]\nrate_limit_per_minute = 1\nrate_limit_burst = 2").await;
    let body = json!({"redirect_uris": ["http://127.0.0.1/cb"]}).to_string();
    let from = |address: &str| {
        let mut request = json_request("POST", "/register", &body, None);
        request.extensions_mut().insert(PeerAddr(address.parse::<SocketAddr>().unwrap()));
        request
    };
    assert_eq!(server.send(from("192.0.2.1:1000")).await.status, StatusCode::CREATED);
    assert_eq!(server.send(from("192.0.2.1:1001")).await.status, StatusCode::CREATED);
    let limited = server.send(from("192.0.2.1:1002")).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    let retry_after: u64 = limited.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    // Another address has its own budget.
    assert_eq!(server.send(from("[2001:db8::1]:1000")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_limits_are_configuration_errors() {
    let config =
        letterlock_server::config::Config::parse("[registration]\nrate_limit_per_minute = 0")
            .unwrap();
    let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = std::sync::Arc::new(letterlock_server::clock::SystemClock);
    let error =
        letterlock_server::AppState::new(&config, store, clock).await.err().expect("refused");
    assert!(error.to_string().contains("rate_limit_per_minute"), "{error}");
}

/// A request as if it came from `address` (what the listener puts in every request).
fn from(mut request: Request<Body>, address: &str) -> Request<Body> {
    let ip: IpAddr = address.parse().unwrap();
    request.extensions_mut().insert(PeerAddr(SocketAddr::new(ip, 40_000)));
    request
}

fn form_post(path: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

async fn rows(server: &TestServer, table: &str) -> i64 {
    let counts = server.state.store().row_counts().await.unwrap();
    counts.into_iter().find(|(name, _)| *name == table).unwrap().1
}

fn retry_after(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::RETRY_AFTER)
        .expect("a 429 says when to come back")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A refresh token of a signed-in installation, and its client id.
async fn installation(server: &TestServer) -> (String, String) {
    let client_id = register(server, json!({})).await;
    let (_, redirect) = approve(server, &client_id, &[]).await;
    let tokens = redeem(server, &client_id, redirect["code"].as_str().unwrap()).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    (client_id, tokens.body["refresh_token"].as_str().unwrap().to_owned())
}

/// Refreshes from `address`; the new refresh token.
async fn refresh_from(server: &TestServer, address: &str, client_id: &str, token: &str) -> String {
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client_id)];
    let reply = server.send(from(form_post("/token", &form), address)).await;
    assert_eq!(reply.status, StatusCode::OK, "a refresh from {address}: {}", reply.body);
    reply.body["refresh_token"].as_str().unwrap().to_owned()
}

/// Issue 14, review finding 6: every `GET /authorize` stored a pending request, without limit.
/// A flood from one address now gets 429 with `Retry-After` and stores nothing more, while an
/// installation elsewhere still refreshes.
#[tokio::test]
async fn a_flood_of_authorization_requests_from_one_address_stops_at_429() {
    let server = with_user(CONFIG).await;
    let (client_id, refresh) = installation(&server).await;
    let flood = || from(get(&authorize_uri(&client_id, &[])), "198.51.100.7");
    let mut answered = 0;
    let first_refusal = loop {
        let response = server.router.clone().oneshot(flood()).await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert_eq!(response.status(), StatusCode::OK);
        answered += 1;
        assert!(answered < 2_000, "2,000 authorization requests from one address were stored");
    };
    let wait = retry_after(first_refusal.headers());
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let stored = rows(&server, "authorization_requests").await;
    for _ in 0..200 {
        let response = server.router.clone().oneshot(flood()).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(rows(&server, "authorization_requests").await, stored, "the table stops growing");
    refresh_from(&server, "203.0.113.9", &client_id, &refresh).await;
}

/// Issue 14, review finding 6: every `POST /device_authorization` stored a device code.
#[tokio::test]
async fn a_flood_of_device_authorizations_from_one_address_stops_at_429() {
    let server = with_user(CONFIG).await;
    let (client_id, refresh) = installation(&server).await;
    let device_client = register(
        &server,
        json!({"redirect_uris": [], "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
    )
    .await;
    let flood = || {
        from(form_post("/device_authorization", &[("client_id", &device_client)]), "198.51.100.7")
    };
    let mut answered = 0;
    let first_refusal = loop {
        let reply = server.send(flood()).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break reply;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        answered += 1;
        assert!(answered < 2_000, "2,000 device codes from one address were stored");
    };
    assert_error(&first_refusal, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert!((1..=60).contains(&retry_after(&first_refusal.headers)));
    let stored = rows(&server, "device_codes").await;
    for _ in 0..200 {
        assert_eq!(server.send(flood()).await.status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(rows(&server, "device_codes").await, stored, "the table stops growing");
    let other = server
        .send(from(
            form_post("/device_authorization", &[("client_id", &device_client)]),
            "203.0.113.9",
        ))
        .await;
    assert_eq!(other.status, StatusCode::OK, "another address: {}", other.body);
    refresh_from(&server, "203.0.113.9", &client_id, &refresh).await;
}

/// Issue 14, review finding 6: every `/token` call with a self-made DPoP proof was remembered
/// in the replay cache, without limit.
#[tokio::test]
async fn a_flood_of_token_requests_with_fresh_proofs_from_one_address_stops_at_429() {
    let server = with_user(CONFIG).await;
    let (client_id, refresh) = installation(&server).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let mut answered = 0;
    let first_refusal = loop {
        let proof = dpop_proof(
            &key,
            "POST",
            "http://127.0.0.1:8080/token",
            NOW,
            &format!("j{answered}"),
            None,
            None,
        );
        let mut request = form_post(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "junk"),
                ("client_id", &client_id),
            ],
        );
        request.headers_mut().insert("dpop", proof.parse().unwrap());
        let reply = server.send(from(request, "198.51.100.7")).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break reply;
        }
        assert_eq!(reply.body["error"], "invalid_grant", "{}", reply.body);
        answered += 1;
        assert!(answered < 2_000, "2,000 fresh proofs from one address were remembered");
    };
    assert_error(&first_refusal, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert!((1..=60).contains(&retry_after(&first_refusal.headers)));
    refresh_from(&server, "203.0.113.9", &client_id, &refresh).await;
}

/// Issue 14, review finding 13: per-address limits counted each IPv6 address alone, so one
/// /64 (which every subscriber gets) had a fresh budget per address. Now a /64 shares one, an
/// IPv4-mapped address counts as its IPv4 address, and another /64 has its own.
#[tokio::test]
async fn addresses_in_one_ipv6_64_share_a_budget() {
    let server = server("[registration]\nrate_limit_per_minute = 1\nrate_limit_burst = 2").await;
    let body = json!({"redirect_uris": ["http://127.0.0.1/cb"]}).to_string();
    let register_from =
        |address: &str| from(json_request("POST", "/register", &body, None), address);
    assert_eq!(server.send(register_from("2001:db8:1:2::1")).await.status, StatusCode::CREATED);
    assert_eq!(
        server.send(register_from("2001:db8:1:2:aaaa::2")).await.status,
        StatusCode::CREATED
    );
    let limited = server.send(register_from("2001:db8:1:2:ffff:ffff:ffff:3")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "a third address of the same /64");
    assert_eq!(server.send(register_from("2001:db8:1:3::1")).await.status, StatusCode::CREATED);
    assert_eq!(server.send(register_from("192.0.2.1")).await.status, StatusCode::CREATED);
    assert_eq!(server.send(register_from("192.0.2.1")).await.status, StatusCode::CREATED);
    assert_eq!(
        server.send(register_from("::ffff:192.0.2.1")).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "an IPv4-mapped address is its IPv4 address"
    );

    // Sign-in attempts, for any account, from addresses of one /64.
    let server = with_user(
        &CONFIG.replace("[dpop]", "[sign_in]\nattempts_per_minute_per_address = 3\n\n[dpop]"),
    )
    .await;
    let mut statuses = Vec::new();
    for attempt in 1..=5 {
        let peer = Some(format!("2001:db8:7:8:{attempt}::{attempt}").parse().unwrap());
        let mut browser = Browser { peer, ..Browser::default() };
        let address = format!("user{attempt}@example.com");
        statuses.push(browser.sign_in_at_account(&server, &address, "whatever it is").await.status);
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "one /64, one budget");

    // Authorization requests from a whole /64, each from a new address.
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let mut statuses = Vec::new();
    for index in 0..2_000u32 {
        let address = format!("2001:db8:9:a:{:x}:{:x}::1", index >> 16, index & 0xffff);
        let request = from(get(&authorize_uri(&client_id, &[])), &address);
        let status = server.router.clone().oneshot(request).await.unwrap().status();
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{} requests",
        statuses.len()
    );
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Issue 14, review finding 6 (note): finding a repeated parameter compared every pair, so a
/// 16 KiB form of one-letter parameters cost millions of comparisons. Forms and queries now
/// have at most 100 parameters.
#[tokio::test]
async fn forms_with_too_many_parameters_are_refused() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let names: Vec<String> = (0..150).map(|index| format!("p{index}")).collect();
    let mut form: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "")).collect();
    form.extend([
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", &client_id),
    ]);
    let reply = server.send(form_post("/token", &form)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        reply.body["error_description"].as_str().unwrap().contains("too many parameters"),
        "{}",
        reply.body
    );
    let page = server.router.clone().oneshot(get(&authorize_uri(&client_id, &form))).await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST, "an authorization request");
}

/// Issue 14 (a sibling of review finding 6): the devices page checked the current password
/// with Argon2id outside the sign-in guard, so a session (or a stolen cookie) could guess it
/// without a throttle and run any number of 19 MiB checks at once.
#[tokio::test]
async fn current_password_checks_are_throttled_like_sign_in() {
    let server = with_user(CONFIG).await;
    let mut browser = Browser::default();
    browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let csrf = browser.get(&server, "/account").await.field("csrf").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let form = [
            ("csrf", csrf.as_str()),
            ("current", "not the password at all"),
            ("new", "another long password"),
        ];
        statuses.push(browser.post(&server, "/account/password", &form).await.status);
    }
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

/// Issue 14's class (limits keyed by what a stranger types): failing again and again in the
/// person's name from one address block spends that block's budget for the account, not the
/// account's own; the person signs in from another address, while guesses spread over many
/// blocks still meet the account's budget from everywhere.
#[tokio::test]
async fn failures_in_someone_elses_name_do_not_lock_them_out_of_signing_in() {
    let server = with_user(CONFIG).await;
    let mut stranger =
        Browser { peer: Some("198.51.100.7".parse().unwrap()), ..Browser::default() };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(stranger.sign_in_at_account(&server, ADDRESS, "a guess").await.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let mut person = Browser { peer: Some("203.0.113.9".parse().unwrap()), ..Browser::default() };
    let page = person.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the person signs in: {}", page.html);

    // Guesses from many blocks together meet the account's budget from everywhere (ten a minute
    // here, on a fresh server).
    let server =
        with_user(&CONFIG.replace(
            "[dpop]",
            "[sign_in]\nattempts_per_minute_per_account_everywhere = 10\n\n[dpop]",
        ))
        .await;
    let mut statuses = Vec::new();
    for block in 0..40u8 {
        let peer = Some(format!("192.0.2.{block}").parse().unwrap());
        let mut guesser = Browser { peer, ..Browser::default() };
        statuses.push(guesser.sign_in_at_account(&server, ADDRESS, "a guess").await.status);
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    let throttled = statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.count() >= 20, "one budget for the account from everywhere: {statuses:?}");
}
