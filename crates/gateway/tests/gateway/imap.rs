use letterlock_gateway::door::Protocol;

use crate::support::{
    Door, Lines, NOW, StubIssuer, backend, challenge, master_plain, oauthbearer,
    unreachable_backend, upgrade,
};

const CAPABILITIES: &str =
    "IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+ AUTH=OAUTHBEARER AUTH=XOAUTH2 LOGINDISABLED";

/// A Dovecot-like back end: greeting, the ID and PLAIN login, then one NOOP relayed.
async fn dovecot(mut door: Lines<tokio::net::TcpStream>) -> Vec<String> {
    let mut seen = Vec::new();
    door.send("* OK [CAPABILITY IMAP4rev1 SASL-IR ID] Dovecot ready.\r\n").await;
    loop {
        let line = door.line().await;
        if line.is_empty() {
            return seen;
        }
        seen.push(line.clone());
        if line.starts_with("L0 ID ") {
            door.send("* ID NIL\r\nL0 OK ID completed.\r\n").await;
        } else if line.starts_with("L1 AUTHENTICATE PLAIN ") {
            door.send("L1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n").await;
        } else if let Some(tag) = line.strip_suffix(" NOOP\r\n") {
            door.send(&format!("{tag} OK NOOP completed.\r\n")).await;
        }
    }
}

#[tokio::test]
async fn the_greeting_and_capabilities_offer_only_the_bearer_mechanisms() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Imap, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    assert_eq!(
        client.line().await,
        format!(
            "* OK [CAPABILITY {CAPABILITIES}] Letterlock IMAP ready; log in with an OAuth token\r\n"
        )
    );
    client.send("a CAPABILITY\r\n").await;
    assert_eq!(client.line().await, format!("* CAPABILITY {CAPABILITIES}\r\n"));
    assert_eq!(client.line().await, "a OK Capability completed\r\n");
    client.send("b LOGIN ann secret\r\n").await;
    assert!(client.line().await.starts_with("b NO [PRIVACYREQUIRED] "));
    client.send("c STARTTLS\r\n").await;
    assert_eq!(client.line().await, "c BAD TLS is already active or not offered\r\n");
    client.send("d LOGOUT\r\n").await;
    assert_eq!(client.line().await, "* BYE Logging out\r\n");
    assert_eq!(client.line().await, "d OK Logout completed\r\n");
    assert!(client.closed().await);
}

#[tokio::test]
async fn starttls_comes_first_and_then_the_mechanisms_are_offered() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Imap, unreachable_backend(), "starttls").await;
    let mut client = door.connect().await;
    let greeting = client.line().await;
    assert!(greeting.contains(" STARTTLS LOGINDISABLED]"), "{greeting}");
    client.send("a AUTHENTICATE OAUTHBEARER\r\n").await;
    assert_eq!(client.line().await, "a NO [PRIVACYREQUIRED] Run STARTTLS first\r\n");
    client.send("b STARTTLS\r\n").await;
    assert_eq!(client.line().await, "b OK Begin TLS negotiation now\r\n");
    let mut client = Lines::new(upgrade(&door, client.into_inner()).await);
    client.send("c CAPABILITY\r\n").await;
    assert_eq!(client.line().await, format!("* CAPABILITY {CAPABILITIES}\r\n"));
    assert_eq!(client.line().await, "c OK Capability completed\r\n");
}

#[tokio::test]
async fn a_good_token_logs_in_relays_and_a_revocation_ends_the_session() {
    let issuer = StubIssuer::start().await;
    let (address, script) = backend(dovecot).await;
    let door = Door::start(&issuer, Protocol::Imap, address, "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let token = issuer.token(&door.resource, "grant-1");
    client.send(&format!("a1 AUTHENTICATE OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(client.line().await, "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
    client.send("a2 NOOP\r\n").await;
    assert_eq!(client.line().await, "a2 OK NOOP completed.\r\n");
    issuer.revoke("grant-1");
    assert_eq!(client.line().await, "* BYE Access for this device was revoked; sign in again\r\n");
    assert!(client.closed().await);
    let seen = script.await.unwrap();
    assert!(seen[0].starts_with("L0 ID (\"x-originating-ip\" \"127.0.0.1\""), "{seen:?}");
    assert_eq!(seen[1], format!("L1 AUTHENTICATE PLAIN {}\r\n", master_plain()));
    assert_eq!(seen[2], "a2 NOOP\r\n");
}

#[tokio::test]
async fn an_expired_token_gets_the_rfc_7628_challenge_and_authenticationfailed() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Imap, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let token = issuer.token_with(&door.resource, "grant-1", NOW - 600);
    client.send("a1 AUTHENTICATE OAUTHBEARER\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    client.send(&format!("{}\r\n", oauthbearer(&token))).await;
    let challenge = challenge(&client.line().await, "+ ");
    assert_eq!(challenge["status"], "invalid_token");
    assert_eq!(challenge["scope"], letterlock_gateway::config::MAIL_SCOPE);
    assert_eq!(
        challenge["openid-configuration"],
        format!("{}/.well-known/openid-configuration", issuer.url)
    );
    // RFC 7628 §3.2.3: the client acknowledges with a single 0x01.
    client.send("AQ==\r\n").await;
    assert_eq!(
        client.line().await,
        format!("a1 NO [AUTHENTICATIONFAILED] Get a token from {}\r\n", issuer.url)
    );
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Imap, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let token = issuer.token("smtp://127.0.0.1", "grant-1");
    client.send(&format!("a1 AUTHENTICATE OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(challenge(&client.line().await, "+ ")["status"], "invalid_token");
    // Thunderbird's way: the command again instead of the acknowledgement.
    client.send(&format!("a2 AUTHENTICATE OAUTHBEARER {}\r\n", oauthbearer(&token))).await;
    assert_eq!(
        client.line().await,
        format!("a1 NO [AUTHENTICATIONFAILED] Get a token from {}\r\n", issuer.url)
    );
    assert!(client.line().await.starts_with("+ "));
}

#[tokio::test]
async fn failures_past_the_limit_are_refused_without_a_check() {
    let issuer = StubIssuer::start().await;
    let door = Door::start(&issuer, Protocol::Imap, unreachable_backend(), "none").await;
    let mut client = door.connect().await;
    client.line().await;
    let bad = issuer.token_with(&door.resource, "grant-1", NOW - 600);
    // `failures_per_minute_per_address = 2` in these tests.
    for tag in ["a1", "a2"] {
        client.send(&format!("{tag} AUTHENTICATE OAUTHBEARER {}\r\n", oauthbearer(&bad))).await;
        assert!(client.line().await.starts_with("+ "));
        client.send("AQ==\r\n").await;
        assert!(client.line().await.starts_with(&format!("{tag} NO [AUTHENTICATIONFAILED] Get")));
    }
    // Even a good token now waits for the next minute.
    let good = issuer.token(&door.resource, "grant-1");
    client.send(&format!("a3 AUTHENTICATE OAUTHBEARER {}\r\n", oauthbearer(&good))).await;
    assert_eq!(
        client.line().await,
        "a3 NO [AUTHENTICATIONFAILED] too many failed authentications; try again later\r\n"
    );
}
