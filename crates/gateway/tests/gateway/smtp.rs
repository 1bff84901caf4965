use letterlock_gateway::door::Protocol;

use crate::support::{
    Door, Lines, NOW, StubIssuer, backend, challenge, master_plain, oauthbearer,
    unreachable_backend,
};

/// A Postfix-like submission back end: greeting, EHLO (no XCLIENT), AUTH PLAIN, then one NOOP
/// relayed.
async fn postfix(mut door: Lines<tokio::net::TcpStream>) -> Vec<String> {
    let mut seen = Vec::new();
    door.send("220 backend ESMTP Postfix\r\n").await;
    loop {
        let line = door.line().await;
        if line.is_empty() {
            return seen;
        }
        seen.push(line.clone());
        if line.starts_with("EHLO ") {
            door.send("250-backend\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n").await;
        } else if line.starts_with("AUTH PLAIN ") {
            door.send("235 2.7.0 Authentication successful\r\n").await;
        } else if line == "NOOP\r\n" {
            door.send("250 2.0.0 Ok\r\n").await;
        }
    }
}

#[tokio::test]
async fn the_greeting_and_ehlo_offer_the_bearer_mechanisms() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Smtp, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    assert_eq!(client.line().await, "220 letterlock ESMTP Letterlock ready\r\n");
    client.send("MAIL FROM:<ann@example.com>\r\n").await;
    assert_eq!(
        client.line().await,
        "530 5.7.0 Authentication required: AUTH OAUTHBEARER or XOAUTH2\r\n"
    );
    client.send("AUTH OAUTHBEARER\r\n").await;
    assert_eq!(client.line().await, "503 5.5.1 Send EHLO first\r\n");
    client.send("EHLO client.example\r\n").await;
    for line in ["250-letterlock Letterlock", "250-PIPELINING", "250-8BITMIME"] {
        assert_eq!(client.line().await, format!("{line}\r\n"));
    }
    assert_eq!(client.line().await, "250-ENHANCEDSTATUSCODES\r\n");
    assert_eq!(client.line().await, "250 AUTH OAUTHBEARER XOAUTH2\r\n");
    client.send("STARTTLS\r\n").await;
    assert_eq!(client.line().await, "454 4.7.0 TLS not available\r\n");
    client.send("QUIT\r\n").await;
    assert_eq!(client.line().await, "221 2.0.0 Bye\r\n");
    assert!(client.closed().await);
}

#[tokio::test]
async fn a_good_token_logs_in_and_relays() {
    let issuer = StubIssuer::start().await;
    let (address, script) = backend(postfix).await;
    let door = Door::start(&issuer, Protocol::Smtp, address, "none").await;
    let mut client = door.connect().await;
    client.line().await;
    client.send("EHLO client.example\r\n").await;
    while client.line().await.starts_with("250-") {}
    let token = issuer.token(&door.resource, "grant-1");
    client.send(&format!("AUTH OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(client.line().await, "235 2.7.0 Authentication successful\r\n");
    client.send("NOOP\r\n").await;
    assert_eq!(client.line().await, "250 2.0.0 Ok\r\n");
    issuer.revoke("grant-1");
    assert_eq!(
        client.line().await,
        "421 4.7.0 Access for this device was revoked; closing connection\r\n"
    );
    drop(client);
    let seen = script.await.unwrap();
    assert_eq!(seen[0], "EHLO letterlock\r\n");
    assert_eq!(seen[1], format!("AUTH PLAIN {}\r\n", master_plain()));
    assert_eq!(seen[2], "NOOP\r\n");
}

#[tokio::test]
async fn an_expired_token_gets_the_challenge_and_535() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Smtp, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    client.line().await;
    client.send("EHLO client.example\r\n").await;
    while client.line().await.starts_with("250-") {}
    let token = issuer.token_with(&door.resource, "grant-1", NOW - 600);
    client.send(&format!("AUTH OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(challenge(&client.line().await, "334 ")["status"], "invalid_token");
    client.send("AQ==\r\n").await;
    assert_eq!(
        client.line().await,
        format!(
            "535 5.7.8 Authentication credentials invalid; get a token from {}\r\n",
            issuer.url
        )
    );
}
