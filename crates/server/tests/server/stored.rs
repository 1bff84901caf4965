//! Stored mode: clients in storage, RFC 7592 read, update and delete.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_server::clients::{ClientIdError, ClientOrigin};
use serde_json::{Value, json};

use crate::account::feed;
use crate::flow::{ADDRESS, CALLBACK, CONFIG, IMAP, approve, introspect, redeem, with_user};
use crate::support::{Reply, TestServer, assert_error, json_request, server};

const STORED: &str = "[registration]\nmode = \"stored\"";

fn path_of(reply: &Reply) -> String {
    let uri = reply.body["registration_client_uri"].as_str().unwrap();
    uri.strip_prefix("http://127.0.0.1:8080").unwrap().to_owned()
}

async fn read(server: &TestServer, path: &str, token: &str) -> Reply {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    server.send(request).await
}

#[tokio::test]
async fn register_read_update_delete() {
    let server = server(STORED).await;
    let before = server.state.store().row_counts().await.unwrap();
    let reply = server
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "Stored Mail"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
    assert!(!client_id.starts_with("ll1."));
    let token = reply.body["registration_access_token"].as_str().unwrap().to_owned();
    let path = path_of(&reply);
    assert_eq!(path, format!("/register/{client_id}"));
    let after = server.state.store().row_counts().await.unwrap();
    assert_eq!(after[2].1, before[2].1 + 1, "stored mode stores the client");
    // Only a hash of the token is kept.
    let record = server.state.store().client(&client_id).await.unwrap().unwrap();
    assert_ne!(record.registration_token_hash, token);
    assert_eq!(server.state.clients().open(&client_id).await.unwrap().origin, ClientOrigin::Stored);

    // Read: 200 with the metadata and a fresh token; the old one stops working.
    let read_reply = read(&server, &path, &token).await;
    assert_eq!(read_reply.status, StatusCode::OK, "{}", read_reply.body);
    assert_eq!(read_reply.body["client_name"], "Stored Mail");
    assert_eq!(read_reply.body["client_id"], client_id.as_str());
    let token = {
        let fresh = read_reply.body["registration_access_token"].as_str().unwrap().to_owned();
        assert_ne!(fresh, token);
        assert_error(
            &read(&server, &path, &token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        fresh
    };

    // Update: the full metadata replaces the old; omitted members are gone.
    let update = json!({"client_id": client_id, "redirect_uris": ["com.example.mail:/cb"], "client_name": "Renamed"}).to_string();
    let reply = server.send(json_request("PUT", &path, &update, Some(&token))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["client_name"], "Renamed");
    assert_eq!(reply.body["redirect_uris"], json!(["com.example.mail:/cb"]));
    let token = reply.body["registration_access_token"].as_str().unwrap().to_owned();
    let client = server.state.clients().open(&client_id).await.unwrap();
    assert_eq!(client.metadata.client_name.default_value(), Some("Renamed"));

    // Updates are checked like registrations.
    let bad =
        json!({"client_id": client_id, "redirect_uris": ["http://evil.example.com/"]}).to_string();
    assert_error(
        &server.send(json_request("PUT", &path, &bad, Some(&token))).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    );
    let other_id =
        json!({"client_id": "someone-else", "redirect_uris": ["http://127.0.0.1/"]}).to_string();
    assert_error(
        &server.send(json_request("PUT", &path, &other_id, Some(&token))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let forbidden = json!({"client_id": client_id, "redirect_uris": ["http://127.0.0.1/"], "registration_access_token": "x"}).to_string();
    assert_error(
        &server.send(json_request("PUT", &path, &forbidden, Some(&token))).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );

    // Delete: 204, then the client, its id and its token are gone.
    let delete = Request::delete(&path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let reply = server.send(delete).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(matches!(server.state.clients().open(&client_id).await, Err(ClientIdError::Unknown)));
    assert_error(&read(&server, &path, &token).await, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(server.state.store().row_counts().await.unwrap(), before);
}

/// Issue 14 (review 2026-12-01, beside finding 17): deleting a stored client (RFC 7592 §2.3)
/// deletes its grants, but the access tokens already out name only their grant, and front doors
/// learn of ended grants from the revocation feed alone: the deletion must reach the feed.
#[tokio::test]
async fn deleting_a_stored_client_puts_its_grants_on_the_revocation_feed() {
    let server = with_user(&format!("{CONFIG}\n{STORED}")).await;
    let reply =
        server.register(json!({"redirect_uris": [CALLBACK], "client_name": "Stored Mail"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
    let token = reply.body["registration_access_token"].as_str().unwrap().to_owned();
    let (_, code) = approve(&server, &client_id, &[]).await;
    let tokens = redeem(&server, &client_id, code["code"].as_str().unwrap()).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    let grant_id = server.state.store().grants_of_user(&user.id).await.unwrap()[0].id.clone();
    let cursor = feed(&server, 0, 0).await["cursor"].as_i64().unwrap();

    let delete = Request::delete(path_of(&reply))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(delete).await.status, StatusCode::NO_CONTENT);
    let news = feed(&server, cursor, 0).await;
    let fed: Vec<&str> = news["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["grant_id"].as_str().unwrap())
        .collect();
    assert_eq!(fed, [grant_id.as_str()], "the deleted client's grant on the feed: {news}");
    assert_eq!(
        introspect(&server, IMAP, tokens.body["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

#[tokio::test]
async fn management_needs_the_right_token() {
    let server = server(STORED).await;
    let first = server.register(json!({"redirect_uris": ["http://127.0.0.1/cb"]})).await;
    let second = server.register(json!({"redirect_uris": ["http://127.0.0.1/cb"]})).await;
    let first_path = path_of(&first);
    let second_token = second.body["registration_access_token"].as_str().unwrap();
    assert_error(
        &read(&server, &first_path, second_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_error(
        &read(&server, "/register/unknown-client", second_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    let reply = server.send(Request::get(&first_path).body(Body::empty()).unwrap()).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn stored_confidential_clients_get_a_secret_kept_as_a_hash() {
    let server = server(STORED).await;
    let reply = server.register(json!({"redirect_uris": ["https://webmail.example.com/cb"]})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let secret = reply.body["client_secret"].as_str().unwrap();
    let record = server
        .state
        .store()
        .client(reply.body["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(record.client_secret_hash.is_some_and(|hash| hash != secret));
}

#[tokio::test]
async fn stateless_mode_has_no_management_endpoint() {
    let server = server("").await;
    let reply = server.get("/register/anything").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let _: Value = reply.body;
}
