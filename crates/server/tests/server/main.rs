//! The authorization server's integration tests: one binary, modules by capability.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failed test"
)]

mod support {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode, header};
    use http_body_util::BodyExt as _;
    use letterlock_server::clock::ManualClock;
    use letterlock_server::config::Config;
    use letterlock_server::{AppState, router};
    use serde_json::Value;
    use tower::ServiceExt as _;

    pub const NOW: i64 = 1_800_000_000;

    pub struct TestServer {
        pub state: AppState,
        pub router: Router,
        pub clock: Arc<ManualClock>,
    }

    /// A server on an in-memory SQLite database with the given configuration file text.
    pub async fn server(config: &str) -> TestServer {
        let config = Config::parse(config).expect("test configuration");
        let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let state = AppState::new(&config, store, clock.clone()).await.expect("state");
        TestServer { router: router(state.clone()), state, clock }
    }

    pub struct Reply {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: Value,
    }

    impl TestServer {
        pub async fn send(&self, request: Request<Body>) -> Reply {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
            };
            Reply { status, headers, body }
        }

        pub async fn get(&self, path: &str) -> Reply {
            self.send(Request::get(path).body(Body::empty()).unwrap()).await
        }

        pub async fn register(&self, body: Value) -> Reply {
            self.send(json_request("POST", "/register", &body.to_string(), None)).await
        }
    }

    pub fn json_request(
        method: &str,
        path: &str,
        body: &str,
        bearer: Option<&str>,
    ) -> Request<Body> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    /// Asserts an OAuth error reply.
    pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.body["error"], code, "{}", reply.body);
        assert!(reply.body["error_description"].as_str().is_some_and(|text| !text.is_empty()));
        assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    }
}

mod account;
mod admin;
mod consent;
mod device;
mod discovery;
/// Dovecot's auth service as an identity source (issue 17).
mod dovecot_auth;
mod flow;
mod grants;
mod keys;
mod ldap;
mod limits;
mod listener;
mod localhost;
mod oidc;
mod passkey;
mod randomness;
mod registration;
mod statements;
mod stored;
mod tokens;
mod totp;
mod upstream;
mod web_clients;
