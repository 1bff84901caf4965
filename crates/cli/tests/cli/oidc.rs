//! Issue 16, point 5: OpenID Connect as a webmail signs people in, with Authlib's OpenID Connect
//! client (`authlib.oidc.core`, Python), which we did not write: discovery, a confidential
//! client's code flow with PKCE and a nonce, the ID token validated by Authlib against the JWKS,
//! and UserInfo. Point 4 rides along: the scope asked for names the autoconfig draft's `IMAP`
//! and a scope Letterlock does not know, and the answer says what was granted.

use super::support::{PASSWORD, USER};
use super::{Server, loopback_config, oracles, python_json, user_command};

#[test]
fn authlib_signs_a_person_in_with_openid_connect() {
    if !oracles(&["python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, port) =
        loopback_config(dir.path(), "[[resources]]\nuri = \"imaps://mail.example.com\"\n");
    let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    let base = format!("http://127.0.0.1:{port}");
    // What a webmail asks for: who the person is, and their mail (by the autoconfig draft's
    // protocol name), plus a scope of another provider that is dropped (RFC 6749 §3.3).
    let scope = "openid email profile IMAP https://mail.google.com/";
    let seen = python_json("authlib_oidc.py", &[&base, USER, PASSWORD, scope], &[]);
    let client_id = seen["client_id"].as_str().unwrap();
    assert_eq!(
        seen["scope"], "urn:ietf:params:oauth:scope:mail openid profile email",
        "the granted scope: {seen}"
    );
    let claims = &seen["id_token_claims"];
    assert_eq!(claims["iss"], base.as_str(), "{seen}");
    assert_eq!(claims["sub"], USER, "{seen}");
    assert_eq!(claims["aud"], client_id, "{seen}");
    assert_eq!(claims["azp"], client_id, "{seen}");
    assert!(claims["auth_time"].as_i64().is_some(), "{seen}");
    assert_eq!(seen["refusals"], serde_json::json!(["nonce", "aud", "iss"]), "{seen}");
    let userinfo = serde_json::json!({"sub": USER, "email": USER, "email_verified": true});
    assert_eq!(seen["userinfo"], userinfo, "{seen}");
    assert_eq!(seen["userinfo_post"], userinfo, "{seen}");
    assert_eq!(seen["anonymous_status"], 401, "{seen}");
    assert_eq!(seen["anonymous_challenge"], "Bearer", "{seen}");
    // The access token is the mail service's, and carries `openid` for UserInfo.
    let access = super::jwt_claims(seen["access_token"].as_str().unwrap());
    assert_eq!(access["scope"], "urn:ietf:params:oauth:scope:mail openid profile email");
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
