//! Key rotation as running servers see it.

use letterlock_jose::Algorithm;
use letterlock_server::keys;

use crate::account::feed;
use crate::flow::{ADDRESS, CONFIG, approve, redeem, register, with_user};
use crate::support::{NOW, server};

fn kids(reply: &serde_json::Value) -> Vec<String> {
    reply["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rotated_signing_key_is_published_before_it_signs_and_kept_after() {
    let server = server("[lifetimes]\naccess_token_seconds = 600").await;
    let first = kids(&server.get("/jwks.json").await.body);
    assert_eq!(first.len(), 1);
    let next = keys::add_signing_key(server.state.store(), Algorithm::EdDsa, NOW, NOW + 3600)
        .await
        .unwrap();
    server.state.reload_keys().await.unwrap();
    assert_eq!(kids(&server.get("/jwks.json").await.body), [first[0].clone(), next.clone()]);
    assert_eq!(server.state.signing_keys().active(server.state.now()).unwrap().kid, first[0]);
    server.clock.advance(3600);
    assert_eq!(server.state.signing_keys().active(server.state.now()).unwrap().kid, next);
    assert_eq!(
        kids(&server.get("/jwks.json").await.body).len(),
        2,
        "the old key stays while its tokens live"
    );
    server.clock.advance(600);
    assert_eq!(kids(&server.get("/jwks.json").await.body), [next]);
}

#[tokio::test]
async fn retiring_a_sealing_key_refuses_its_client_ids_and_a_new_key_seals() {
    let server = server("").await;
    let body = serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"]});
    let old_id = server.register(body.clone()).await.body["client_id"].as_str().unwrap().to_owned();
    let old_kid = old_id.split('.').nth(1).unwrap().to_owned();
    let new_kid = keys::add_sealing_key(server.state.store(), NOW).await.unwrap();
    server.state.reload_keys().await.unwrap();
    let new_id = server.register(body).await.body["client_id"].as_str().unwrap().to_owned();
    assert!(new_id.starts_with(&format!("ll1.{new_kid}.")));
    assert!(
        server.state.clients().open(&old_id).await.is_ok(),
        "older ids open until their key is retired"
    );
    assert!(server.state.store().retire_sealing_key(&old_kid, NOW).await.unwrap());
    server.state.reload_keys().await.unwrap();
    let error = server.state.clients().open(&old_id).await.unwrap_err();
    assert_eq!(error.to_string(), "the client id was sealed under a retired key");
    assert!(server.state.clients().open(&new_id).await.is_ok());
}

/// A retired sealing key ends the grants of the client ids it sealed at once, and tells the
/// front doors: otherwise their access tokens would keep opening sessions until they expire.
#[tokio::test]
async fn retiring_a_sealing_key_revokes_the_grants_of_its_client_ids() {
    let server = with_user(CONFIG).await;
    let grant_of = async |client_id: &str| {
        let (_, code) = approve(&server, client_id, &[]).await;
        let reply = redeem(&server, client_id, code["code"].as_str().unwrap()).await;
        assert_eq!(reply.status, axum::http::StatusCode::OK, "{}", reply.body);
    };
    let old_id = register(&server, serde_json::json!({})).await;
    let old_kid = old_id.split('.').nth(1).unwrap().to_owned();
    grant_of(&old_id).await;
    keys::add_sealing_key(server.state.store(), NOW).await.unwrap();
    server.state.reload_keys().await.unwrap();
    let new_id = register(&server, serde_json::json!({"client_name": "Newer Mail"})).await;
    grant_of(&new_id).await;
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    let grants = server.state.store().grants_of_user(&user.id).await.unwrap();
    let old_grant = grants.iter().find(|grant| grant.client_id == old_id).unwrap().id.clone();

    let revoked = keys::retire_sealing_key(server.state.store(), &old_kid, NOW).await.unwrap();
    let news = feed(&server, 0, 0).await;
    assert_eq!(news["revocations"].as_array().unwrap().len(), 1, "{news}");
    assert_eq!(news["revocations"][0]["grant_id"], old_grant.as_str());
    assert_eq!(revoked, Some(1));
    assert_eq!(keys::retire_sealing_key(server.state.store(), &old_kid, NOW).await.unwrap(), None);
}
