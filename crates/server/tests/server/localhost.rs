//! Issue 16: `http://localhost` loopback redirects as clients send them (RFC 8252 §7.3,
//! RFC 9700 §4.1.3), at registration (RFC 7591) and under a well-known public client id, and
//! the names that only look like it, refused. Also the HTTP half of the refresh retry window and
//! `refresh_token_expires_in` in the token response.

use axum::http::StatusCode;
use serde_json::json;

use crate::flow::{
    ADDRESS, CONFIG, VERIFIER, approve, authorize_uri, register, token_request, with_user,
};
use crate::support::assert_error;

const LOCALHOST_CALLBACK: &str = "http://localhost/callback";

/// The code flow to the end with `redirect_uri`, for `client_id`: the redirect goes where the
/// client listens, and the code redeems; returns the token response.
async fn flow_with(
    server: &crate::support::TestServer,
    client_id: &str,
    redirect_uri: &str,
) -> crate::support::Reply {
    let (_, redirect) = approve(server, client_id, &[("redirect_uri", redirect_uri)]).await;
    let code = redirect["code"].as_str().expect("a code at the redirect");
    let reply = token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
}

/// The page an authorization request with `redirect_uri` gets before anyone signs in: a
/// redirect URI that is not proven is answered on a page, never followed (RFC 6749 §4.1.2.1).
async fn refused_on_a_page(server: &crate::support::TestServer, client_id: &str, redirect: &str) {
    let mut browser = crate::flow::Browser::default();
    let page = browser.get(server, &authorize_uri(client_id, &[("redirect_uri", redirect)])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{redirect}: {}", page.html);
    assert!(page.headers.get("location").is_none(), "{redirect}: never redirected");
}

#[tokio::test]
async fn a_registered_localhost_redirect_works_on_any_port_and_its_look_alikes_do_not() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({"redirect_uris": [LOCALHOST_CALLBACK]})).await;
    let client = server.state.clients().open(&client_id).await.unwrap();
    assert_eq!(client.metadata.redirect_uris[0].as_str(), LOCALHOST_CALLBACK);
    assert!(client.metadata.redirect_uris[0].is_native(), "a native app's redirect");
    // The port is the client's, chosen when it listens; the host's case is not significant.
    for redirect in ["http://localhost:49152/callback", "http://LOCALHOST:8080/callback"] {
        let reply = flow_with(&server, &client_id, redirect).await;
        assert!(reply.body["refresh_token"].is_string());
    }
    for redirect in [
        "http://localhost:49152/other",
        "http://127.0.0.1:49152/callback",
        "https://localhost:49152/callback",
        "http://localhost.evil.example:49152/callback",
        "http://localhost@evil.example/callback",
        "http://evil.example/localhost/callback",
        "http://localhost:99999/callback",
    ] {
        refused_on_a_page(&server, &client_id, redirect).await;
    }
}

#[tokio::test]
async fn registration_refuses_what_only_looks_like_localhost() {
    let server = with_user(CONFIG).await;
    for redirect in [
        "http://localhost.evil.example/cb",
        "http://localhost@evil.example/cb",
        "http://evil.example/localhost",
        "http://localhost:99999/cb",
        "http://local%68ost/cb",
    ] {
        let reply = server.register(json!({"redirect_uris": [redirect]})).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    }
    // `https://localhost` is an https redirect: a web client's, matched exactly.
    let reply = server
        .register(
            json!({"redirect_uris": ["https://localhost:8443/cb"], "application_type": "web"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let client_id = reply.body["client_id"].as_str().unwrap();
    refused_on_a_page(&server, client_id, "https://localhost:9443/cb").await;
}

/// Thunderbird's built-in providers name a public client id and `http://localhost` with the
/// port they listen on; the id needs no registration.
#[tokio::test]
async fn a_public_client_id_takes_localhost_on_any_port() {
    let server = with_user(&format!(
        "[[public_clients]]\nclient_id = \"open\"\nname = \"Any mail program\"\n{CONFIG}"
    ))
    .await;
    let reply = flow_with(&server, "open", "http://localhost:41999/").await;
    assert!(reply.body["refresh_token"].is_string());
    for redirect in [
        "https://localhost:41999/",
        "http://localhost.evil.example:41999/",
        "http://localhost@evil.example/",
        "http://evil.example/localhost",
    ] {
        refused_on_a_page(&server, "open", redirect).await;
    }
}

/// Issue 16 over HTTP: the token response says when the refresh token expires, and a refresh
/// whose response was lost is answered again, the same, without revoking the device; after the
/// window the old token is reuse.
#[tokio::test]
async fn a_lost_refresh_response_is_answered_again_over_http() {
    let server = with_user(&format!(
        "[[public_clients]]\nclient_id = \"open\"\nname = \"Any mail program\"\n{CONFIG}"
    ))
    .await;
    let first = flow_with(&server, "open", "http://localhost:41999/").await;
    assert_eq!(first.body["refresh_token_expires_in"], 90 * 86_400, "{}", first.body);
    let refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", "open")];
    let answer = token_request(&server, &form, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["refresh_token_expires_in"], 90 * 86_400);
    server.clock.advance(5);
    let again = token_request(&server, &form, None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    for member in ["access_token", "refresh_token", "token_type", "scope"] {
        assert_eq!(again.body[member], answer.body[member], "{member}");
    }
    assert_eq!(again.body["expires_in"], 595, "the time left");
    assert_eq!(again.body["refresh_token_expires_in"], 90 * 86_400 - 5);
    server.clock.advance(60);
    let late = token_request(&server, &form, None).await;
    assert_error(&late, StatusCode::BAD_REQUEST, "invalid_grant");
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    let grants = server.state.store().grants_of_user(&user.id).await.unwrap();
    assert!(grants[0].revoked_at.is_some(), "after the window it is reuse");
}
