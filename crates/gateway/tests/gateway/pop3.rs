use letterlock_gateway::door::Protocol;

use crate::support::{
    Door, Lines, NOW, StubIssuer, backend, challenge, master_plain, oauthbearer,
    unreachable_backend,
};

/// A Dovecot-like POP3 back end: greeting, XCLIENT and the PLAIN login, then one STAT relayed.
async fn dovecot(mut door: Lines<tokio::net::TcpStream>) -> Vec<String> {
    let mut seen = Vec::new();
    door.send("+OK Dovecot ready.\r\n").await;
    loop {
        let line = door.line().await;
        if line.is_empty() {
            return seen;
        }
        seen.push(line.clone());
        if line.starts_with("XCLIENT ") {
            door.send("+OK\r\n").await;
        } else if line.starts_with("AUTH PLAIN ") {
            door.send("+OK Logged in.\r\n").await;
        } else if line == "STAT\r\n" {
            door.send("+OK 0 0\r\n").await;
        }
    }
}

#[tokio::test]
async fn the_greeting_and_capabilities() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Pop3, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    assert_eq!(client.line().await, "+OK Letterlock POP3 ready; log in with an OAuth token\r\n");
    client.send("CAPA\r\n").await;
    assert_eq!(client.line().await, "+OK Capability list follows\r\n");
    assert_eq!(client.line().await, "SASL OAUTHBEARER XOAUTH2\r\n");
    while client.line().await != ".\r\n" {}
    client.send("USER ann\r\n").await;
    assert!(client.line().await.starts_with("-ERR [AUTH] Passwords are not accepted here"));
    client.send("QUIT\r\n").await;
    assert_eq!(client.line().await, "+OK Bye\r\n");
    assert!(client.closed().await);
}

#[tokio::test]
async fn a_good_token_logs_in_and_relays_until_the_grant_is_revoked() {
    let issuer = StubIssuer::start().await;
    let (address, script) = backend(dovecot).await;
    let door = Door::start(&issuer, Protocol::Pop3, address, "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let token = issuer.token(&door.resource, "grant-1");
    client.send(&format!("AUTH OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(client.line().await, "+OK Logged in.\r\n");
    client.send("STAT\r\n").await;
    assert_eq!(client.line().await, "+OK 0 0\r\n");
    issuer.revoke("grant-1");
    // POP3 has no unsolicited responses: the session is just closed.
    assert!(client.closed().await);
    let seen = script.await.unwrap();
    assert!(seen[0].starts_with("XCLIENT ADDR=127.0.0.1 PORT="), "{seen:?}");
    assert_eq!(seen[1], format!("AUTH PLAIN {}\r\n", master_plain()));
    assert_eq!(seen[2], "STAT\r\n");
}

#[tokio::test]
async fn an_expired_token_gets_the_challenge_and_err() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Pop3, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let token = issuer.token_with(&door.resource, "grant-1", NOW - 600);
    client.send("AUTH XOAUTH2\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    let xoauth2 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        letterlock_sasl::xoauth2::encode(crate::support::USER, &token),
    );
    client.send(&format!("{xoauth2}\r\n")).await;
    // XOAUTH2's challenge is Google's shape: the status as an HTTP code.
    assert_eq!(challenge(&client.line().await, "+ ")["status"], "401");
    client.send("\r\n").await;
    assert_eq!(
        client.line().await,
        format!("-ERR [AUTH] Authentication failed; get a token from {}\r\n", issuer.url)
    );
}
