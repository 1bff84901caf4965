//! Dovecot's auth service as an identity source (issue 17, point 1): the real Dovecot with a
//! passwd-file of hashed passwords proves or refuses, over its auth-client UNIX socket and its
//! TCP listener; names and passwords that could split a line are refused or carried intact; a
//! silent, slow or failing Dovecot makes sign-in unavailable (503) and never falls through to a
//! local account; throttling is spent before Dovecot is asked; the client's address reaches
//! Dovecot; the refresh re-check asks its auth-master socket.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use letterlock_server::identity::dovecot::{DovecotConfig, DovecotSource};
use letterlock_server::identity::{Attempt, Standing, Verdict};
use letterlock_test_support::dovecot::Dovecot;
use letterlock_test_support::{oracle, wait_for};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::flow::Browser;
use crate::support::{NOW, TestServer, server};

const ALICE: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// A password with what means something elsewhere (a space, `=`, `%`, quotes, a backslash,
/// non-ASCII, DEL, ESC) but not in Dovecot's protocol: it must arrive intact.
const AWKWARD: &str = "pa ss=word %u \"quoted\" \\ ünïcødé \u{7f}\u{1b}";

/// A Dovecot whose passwd-file holds alice, carol (reached with `domain`) and dave (whose
/// password is [`AWKWARD`]), or None when Dovecot is not installed.
fn dovecot() -> Option<Dovecot> {
    if !oracle::available("dovecot") {
        return None;
    }
    Some(Dovecot::with_passwd_file(
        &[(ALICE, PASSWORD), ("carol@example.com", PASSWORD), ("dave@example.com", AWKWARD)],
        "",
    ))
}

fn source(toml_text: &str) -> DovecotSource {
    let config: DovecotConfig = toml::from_str(&format!("name = \"mail\"\n{toml_text}")).unwrap();
    DovecotSource::new(&config).unwrap()
}

fn at_socket(dovecot: &Dovecot) -> DovecotSource {
    // Dovecot's penalty for an address with failures (2, 4, 8, then 15 s) and its 2 s failure
    // delay add up over a test's wrong passwords: a timeout above them all.
    source(&format!(
        "socket = {:?}\nmaster_socket = {:?}\ntimeout_seconds = 30",
        dovecot.auth_client_socket(),
        dovecot.auth_master_socket()
    ))
}

fn attempt<'a>(typed: &'a str, password: &'a str, peer: &str) -> Attempt<'a> {
    Attempt { typed, password, peer: peer.parse::<IpAddr>().unwrap() }
}

fn proven(address: &str) -> Verdict {
    Verdict::Proven { address: address.to_owned() }
}

/// How many authentication requests Dovecot has received (its `auth_debug` log line).
fn requests(dovecot: &Dovecot) -> usize {
    dovecot.log().matches("client in: AUTH").count()
}

#[tokio::test]
async fn the_right_password_proves_the_address_over_the_socket_and_tcp() {
    let Some(dovecot) = dovecot() else { return };
    let by_socket = at_socket(&dovecot);
    assert_eq!(by_socket.check(&attempt(ALICE, PASSWORD, "192.0.2.1")).await, proven(ALICE));
    // Dovecot's own normalization (auth_username_format = %Lu) names the address: user=.
    assert_eq!(
        by_socket.check(&attempt("Alice@Example.COM", PASSWORD, "192.0.2.1")).await,
        proven(ALICE)
    );
    let by_tcp = source(&format!("address = \"127.0.0.1:{}\"", dovecot.auth));
    assert_eq!(by_tcp.check(&attempt(ALICE, PASSWORD, "192.0.2.1")).await, proven(ALICE));
    // A bare name gets the configured domain before Dovecot sees it.
    let with_domain =
        source(&format!("socket = {:?}\ndomain = \"example.com\"", dovecot.auth_client_socket()));
    assert_eq!(
        with_domain.check(&attempt("carol", PASSWORD, "192.0.2.1")).await,
        proven("carol@example.com")
    );
    assert!(requests(&dovecot) >= 4, "{}", dovecot.log());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_are_refused() {
    let Some(dovecot) = dovecot() else { return };
    let source = at_socket(&dovecot);
    assert_eq!(
        source.check(&attempt(ALICE, "wrong password", "192.0.2.2")).await,
        Verdict::Refused
    );
    assert_eq!(
        source.check(&attempt("nobody@example.com", PASSWORD, "192.0.2.3")).await,
        Verdict::Refused
    );
    // Without the domain, a bare name is not in the passwd-file.
    assert_eq!(source.check(&attempt("carol", PASSWORD, "192.0.2.4")).await, Verdict::Refused);
    wait_for("Dovecot's log of the refusals", || {
        let log = dovecot.log();
        log.contains("Password mismatch") && log.contains("unknown user")
    });
}

#[tokio::test]
async fn tab_lf_and_nul_never_reach_dovecot_and_other_characters_arrive_intact() {
    let Some(dovecot) = dovecot() else { return };
    let source = at_socket(&dovecot);
    // Every character a password may hold travels inside the base64 of PLAIN, intact: Dovecot's
    // own hash of it matches.
    assert_eq!(
        source.check(&attempt("dave@example.com", AWKWARD, "192.0.2.5")).await,
        proven("dave@example.com"),
        "{}",
        dovecot.log()
    );
    // Cut at its space, it is another (wrong) password: nothing was lost on the way.
    assert_eq!(
        source.check(&attempt("dave@example.com", "pa", "192.0.2.6")).await,
        Verdict::Refused
    );
    wait_for("two requests in Dovecot's log", || requests(&dovecot) == 2);
    // A NUL would move PLAIN's separators; a control character in a name is no one's; Dovecot
    // refuses a password with 0x01, TAB, CR or LF itself ("password having illegal chars",
    // since they mean something in its internal protocols): all refused here, and Dovecot
    // never hears of them.
    for (typed, password) in [
        (ALICE, "correct\thorse"),
        (ALICE, "correct\nAUTH\t2\tPLAIN"),
        (ALICE, "correct\rhorse"),
        (ALICE, "correct\u{1}thorse"),
        ("alice@example.com\0x", PASSWORD),
        (ALICE, "correct\0horse"),
        ("alice@example.com\tresp=AAAA", PASSWORD),
        ("alice@example.com\nAUTH\t2\tPLAIN", PASSWORD),
        (ALICE, ""),
    ] {
        assert_eq!(
            source.check(&attempt(typed, password, "192.0.2.7")).await,
            Verdict::Refused,
            "{typed:?} {password:?}"
        );
    }
    // One last request, whose log line comes after any the refused ones could have made.
    assert_eq!(source.check(&attempt(ALICE, PASSWORD, "192.0.2.8")).await, proven(ALICE));
    wait_for("the last request in Dovecot's log", || requests(&dovecot) >= 3);
    assert_eq!(requests(&dovecot), 3, "{}", dovecot.log());
}

#[tokio::test]
async fn the_client_address_reaches_dovecot() {
    let Some(dovecot) = dovecot() else { return };
    let source = at_socket(&dovecot);
    assert_eq!(source.check(&attempt(ALICE, "wrong", "198.51.100.77")).await, Verdict::Refused);
    assert_eq!(source.check(&attempt(ALICE, PASSWORD, "2001:db8::77")).await, proven(ALICE));
    wait_for("the client addresses in Dovecot's log", || {
        let log = dovecot.log();
        // auth_verbose: "passwd-file(alice@example.com,198.51.100.77,...): Password mismatch".
        log.contains("passwd-file(alice@example.com,198.51.100.77") && log.contains("2001:db8::77")
    });
    assert!(dovecot.log().contains("service=letterlock"), "{}", dovecot.log());
}

/// How a fake Dovecot behaves on each connection.
#[derive(Clone, Copy)]
enum Fake {
    /// Accepts and never says anything.
    Silent,
    /// Sends the handshake, then answers the request with `answer` after `delay`.
    Answers { delay: Duration, answer: &'static str },
}

/// A fake auth-client socket in `dir`, serving until the test ends.
fn fake(dir: &Path, behaviour: Fake) -> std::path::PathBuf {
    let path = dir.join("auth-client");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                match behaviour {
                    Fake::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Fake::Answers { delay, answer } => {
                        let handshake = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n";
                        stream.get_mut().write_all(handshake.as_bytes()).await.unwrap();
                        let mut line = String::new();
                        while !line.starts_with("AUTH\t") {
                            line.clear();
                            if stream.read_line(&mut line).await.unwrap() == 0 {
                                return;
                            }
                        }
                        let id = line.split('\t').nth(1).unwrap().to_owned();
                        tokio::time::sleep(delay).await;
                        let answer = answer.replace("{id}", &id);
                        let _ = stream.get_mut().write_all(answer.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    path
}

fn unavailable(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Unavailable { .. })
}

#[tokio::test]
async fn a_silent_slow_or_failing_dovecot_is_unavailable_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    for (name, behaviour) in [
        ("silent", Fake::Silent),
        (
            "slow",
            Fake::Answers {
                delay: Duration::from_secs(5),
                answer: "OK\t{id}\tuser=alice@example.com\n",
            },
        ),
        // Dovecot's passdb is down: it says so with code=temp_fail.
        (
            "failing",
            Fake::Answers {
                delay: Duration::ZERO,
                answer: "FAIL\t{id}\tcode=temp_fail\treason=LDAP down\n",
            },
        ),
        (
            "confused",
            Fake::Answers { delay: Duration::ZERO, answer: "OK\t999\tuser=mallory@example.com\n" },
        ),
        ("long-winded", Fake::Answers { delay: Duration::ZERO, answer: "CONT\t{id}\tAAAA\n" }),
    ] {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        let socket = fake(&folder, behaviour);
        let source = source(&format!("socket = {socket:?}\ntimeout_seconds = 1"));
        // The bound of this wait is the test's own guard against a hang, not a timing claim.
        let verdict = tokio::time::timeout(
            Duration::from_secs(20),
            source.check(&attempt(ALICE, PASSWORD, "192.0.2.9")),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: the check hung"));
        assert!(unavailable(&verdict), "{name}: {verdict:?}");
    }
    // Nobody listening at all.
    let absent = source(&format!("socket = {:?}", dir.path().join("absent")));
    assert!(unavailable(&absent.check(&attempt(ALICE, PASSWORD, "192.0.2.9")).await));
}

/// A server whose sources are `sources` (TOML of `[[sign_in.sources]]`), with a local account
/// for alice with the same password as in Dovecot.
async fn server_with(sources: &str, extra: &str) -> TestServer {
    let server = server(&format!("[sign_in]\n{extra}\n{sources}")).await;
    letterlock_server::accounts::add_user(server.state.store(), ALICE, PASSWORD, NOW)
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn an_unavailable_dovecot_shows_the_page_and_never_falls_through_to_local() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fake(dir.path(), Fake::Silent);
    let server = server_with(
        &format!(
            "[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\nsocket = {socket:?}\n\
             timeout_seconds = 1\n[[sign_in.sources]]\nkind = \"local\"\n"
        ),
        "",
    )
    .await;
    let mut browser = Browser { peer: Some("192.0.2.10".parse().unwrap()), ..Browser::default() };
    // Alice's local password is right, but Dovecot comes first and cannot answer.
    let page = browser.sign_in_at_account(&server, ALICE, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.html);
    assert!(page.html.contains("Sign-in is unavailable"), "{}", page.html);
    assert!(page.headers.contains_key("retry-after"));
    assert!(!browser.cookies.keys().any(|name| name.contains("letterlock_session")));
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Sign in"), "not signed in: {}", page.html);
}

#[tokio::test]
async fn signing_in_through_dovecot_records_the_source() {
    let Some(dovecot) = dovecot() else { return };
    let server = server(&format!(
        "[sign_in]\n[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\nsocket = {:?}\n\
         timeout_seconds = 9\n",
        dovecot.auth_client_socket()
    ))
    .await;
    let mut browser = Browser { peer: Some("192.0.2.11".parse().unwrap()), ..Browser::default() };
    let page = browser.sign_in_at_account(&server, ALICE, "wrong password").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    let page = browser.sign_in_at_account(&server, ALICE, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains(ALICE), "{}", page.html);
    let user = server.state.store().user_by_address(ALICE).await.unwrap().unwrap();
    assert_eq!(user.source, "mail");
    assert!(!user.password_hash.starts_with("$argon2"), "no local password for this person");
}

#[tokio::test]
async fn throttling_is_spent_before_dovecot_is_asked() {
    let Some(dovecot) = dovecot() else { return };
    let server = server_with(
        &format!(
            "[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\nsocket = {:?}\n\
             timeout_seconds = 9\n",
            dovecot.auth_client_socket()
        ),
        "attempts_per_minute_per_account = 2",
    )
    .await;
    let mut browser = Browser { peer: Some("192.0.2.12".parse().unwrap()), ..Browser::default() };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(browser.sign_in_at_account(&server, ALICE, "wrong password").await.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Another account's sign-in: its request is logged after any the throttled ones made.
    let mut other = Browser { peer: Some("192.0.2.13".parse().unwrap()), ..Browser::default() };
    let page = other.sign_in_at_account(&server, "carol@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    wait_for("three requests in Dovecot's log", || requests(&dovecot) >= 3);
    assert_eq!(requests(&dovecot), 3, "{}", dovecot.log());
}

#[tokio::test]
async fn the_refresh_recheck_asks_the_master_socket() {
    let Some(dovecot) = dovecot() else { return };
    let checked = at_socket(&dovecot);
    assert_eq!(checked.standing(ALICE).await, Standing::Active);
    assert_eq!(checked.standing("nobody@example.com").await, Standing::Gone);
    dovecot.set_users(&[("carol@example.com", PASSWORD)]);
    // Dovecot reads the passwd-file again when it changes; a bounded wait for that.
    let mut standing = Standing::Active;
    for _ in 0..200 {
        standing = checked.standing(ALICE).await;
        if standing == Standing::Gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(standing, Standing::Gone);
    assert_eq!(checked.standing("carol@example.com").await, Standing::Active);
    // Without a master socket the source cannot tell.
    let without = source_without_master(&dovecot);
    assert_eq!(without.standing("carol@example.com").await, Standing::Unknown);
    // A master socket where nothing listens cannot tell either.
    let broken = source(&format!(
        "socket = {:?}\nmaster_socket = \"/nonexistent/auth-master\"",
        dovecot.auth_client_socket()
    ));
    assert_eq!(broken.standing("carol@example.com").await, Standing::Unknown);
}

fn source_without_master(dovecot: &Dovecot) -> DovecotSource {
    source(&format!("socket = {:?}", dovecot.auth_client_socket()))
}

#[tokio::test]
async fn a_person_removed_from_dovecot_loses_the_refresh_after_the_recheck_delay() {
    let Some(dovecot) = dovecot() else { return };
    let config = format!(
        "{}\n[sign_in]\nrecheck_seconds = 60\n[[sign_in.sources]]\nkind = \"dovecot\"\n\
         name = \"mail\"\nsocket = {:?}\nmaster_socket = {:?}\ntimeout_seconds = 9\n",
        crate::flow::CONFIG,
        dovecot.auth_client_socket(),
        dovecot.auth_master_socket()
    );
    let server = server(&config).await;
    let client_id = crate::flow::register(&server, serde_json::json!({})).await;
    // Signed in through Dovecot (flow::ADDRESS and PASSWORD are alice's here too).
    let (_, redirect) = crate::flow::approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let tokens = crate::flow::redeem(&server, &client_id, code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let refresh = |token: String| {
        let server = &server;
        let client_id = client_id.clone();
        async move {
            crate::flow::token_request(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                    ("resource", "imaps://mail.example.com"),
                ],
                None,
            )
            .await
        }
    };
    // Within the delay, and after it while Dovecot still has alice: refreshed.
    let reply = refresh(tokens.body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    server.clock.advance(61);
    let reply = refresh(reply.body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Alice leaves Dovecot's passdb; past the delay, the refresh asks Dovecot again.
    dovecot.set_users(&[("carol@example.com", PASSWORD)]);
    let checked = at_socket(&dovecot);
    for _ in 0..200 {
        if checked.standing(ALICE).await == Standing::Gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.clock.advance(61);
    let reply = refresh(reply.body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"], "invalid_grant", "{}", reply.body);
}
