//! Per-address rate limits on registration.

use std::net::SocketAddr;

use axum::http::{StatusCode, header};
use letterlock_server::listen::PeerAddr;
use serde_json::json;

use crate::support::{assert_error, json_request, server};

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
