//! The LDAP identity source against OpenLDAP's real `slapd` (issue 17, point 1 and its bad
//! input): a search by the service account, then a bind as the one entry found; filter
//! injection, an empty password, a foreign certificate, a directory that is down or silent,
//! and a person deleted at the directory losing their refresh.

use std::net::IpAddr;

use axum::http::StatusCode;
use letterlock_server::identity::ldap::{LdapConfig, LdapSource, filter_for};
use letterlock_server::identity::{Attempt, Standing, Verdict};
use letterlock_test_support::ldap::{
    ALICE, BASE, BOB, DISABLED, FILTER, Ldap, SERVICE_DN, SERVICE_PASSWORD,
};
use serde_json::json;

use crate::flow::{Browser, CONFIG, redeem, redirect_parameters, register, token_request};
use crate::support::{NOW, TestServer, server};

const PEER: &str = "192.0.2.7";

/// The `[[sign_in.sources]]` entry for `ldap` at `url`, with `extra` keys.
fn entry(ldap: &Ldap, url: &str, extra: &str) -> String {
    let starttls = if url.starts_with("ldap://") { "starttls = true\n" } else { "" };
    let filter =
        if extra.contains("filter =") { String::new() } else { format!("filter = \"{FILTER}\"\n") };
    format!(
        "kind = \"ldap\"\nname = \"directory\"\nurl = \"{url}\"\n{starttls}ca_file = \"{}\"\n\
         bind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{}\"\nbase = \"{BASE}\"\n\
         {filter}{extra}",
        ldap.ca_file().display(),
        ldap.service_password_file().display(),
    )
}

fn source_at(ldap: &Ldap, url: &str, extra: &str) -> LdapSource {
    let config: LdapConfig =
        toml::from_str(&entry(ldap, url, extra).replace("kind = \"ldap\"\n", ""))
            .expect("an LDAP source entry");
    LdapSource::new(&config).expect("the LDAP source starts")
}

fn source(ldap: &Ldap) -> LdapSource {
    source_at(ldap, &ldap.ldaps_url(), "")
}

async fn check(source: &LdapSource, typed: &str, password: &str) -> Verdict {
    let peer: IpAddr = PEER.parse().unwrap();
    source.check(&Attempt { typed, password, peer }).await
}

fn proven(address: &str) -> Verdict {
    Verdict::Proven { address: address.to_owned() }
}

/// A connection of our own to the directory (ldap3, over StartTLS with the harness's CA), for
/// showing what the server itself allows.
async fn raw_connection(ldap: &Ldap) -> ldap3::Ldap {
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ldap.certificate.der.clone())).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings =
        ldap3::LdapConnSettings::new().set_starttls(true).set_config(std::sync::Arc::new(tls));
    let (connection, ldap) =
        ldap3::LdapConnAsync::with_settings(settings, &ldap.ldap_url()).await.unwrap();
    tokio::spawn(async move { connection.drive().await });
    ldap
}

/// What a naive source would do with `typed`: the typed text pasted into the filter unescaped,
/// searched by the service account. The DNs found.
async fn naive_search(ldap: &Ldap, typed: &str) -> Vec<String> {
    let mut connection = raw_connection(ldap).await;
    connection.simple_bind(SERVICE_DN, SERVICE_PASSWORD).await.unwrap().success().unwrap();
    let filter = FILTER.replace("{user}", typed);
    let found = connection.search(BASE, ldap3::Scope::Subtree, &filter, vec!["mail"]).await;
    let (entries, _) = found.unwrap().success().unwrap();
    entries.into_iter().map(|entry| ldap3::SearchEntry::construct(entry).dn).collect()
}

#[tokio::test]
async fn the_right_password_proves_the_entrys_address_over_ldaps_and_starttls() {
    let Some(ldap) = Ldap::start() else { return };
    for source in [source(&ldap), source_at(&ldap, &ldap.ldap_url(), "")] {
        assert_eq!(check(&source, ALICE.mail, ALICE.password).await, proven(ALICE.mail));
        assert_eq!(check(&source, BOB.mail, BOB.password).await, proven(BOB.mail));
        // The address is the entry's, normalized, not the text as typed.
        assert_eq!(check(&source, "Alice@EXAMPLE.com", ALICE.password).await, proven(ALICE.mail));
    }
    // With a filter by uid, a person types their uid and the token still names their address.
    let by_uid = source_at(
        &ldap,
        &ldap.ldaps_url(),
        "filter = \"(&(objectClass=inetOrgPerson)(uid={user}))\"\n",
    );
    assert_eq!(check(&by_uid, "alice", ALICE.password).await, proven(ALICE.mail));
}

#[tokio::test]
async fn wrong_passwords_unknown_names_disabled_and_doubled_entries_are_refused() {
    let Some(ldap) = Ldap::start() else { return };
    let source = source(&ldap);
    assert_eq!(check(&source, ALICE.mail, "not alice's password").await, Verdict::Refused);
    assert_eq!(check(&source, ALICE.mail, BOB.password).await, Verdict::Refused);
    assert_eq!(check(&source, "nobody@example.com", ALICE.password).await, Verdict::Refused);

    // Carol's password is right (the directory lets her bind), but the filter excludes her.
    let mut connection = raw_connection(&ldap).await;
    let bound = connection.simple_bind(&Ldap::user_dn(DISABLED.uid), DISABLED.password).await;
    assert_eq!(bound.unwrap().rc, 0, "the directory itself accepts carol's password");
    assert_eq!(check(&source, DISABLED.mail, DISABLED.password).await, Verdict::Refused);
    ldap.enable(DISABLED.uid);
    assert_eq!(check(&source, DISABLED.mail, DISABLED.password).await, proven(DISABLED.mail));
    ldap.disable(DISABLED.uid);
    assert_eq!(check(&source, DISABLED.mail, DISABLED.password).await, Verdict::Refused);

    // Two entries with one address: neither is the person, whatever the password.
    ldap.add_user("alice-twin", ALICE.mail, ALICE.password);
    assert_eq!(check(&source, ALICE.mail, ALICE.password).await, Verdict::Refused);
    ldap.delete("alice-twin");
    assert_eq!(check(&source, ALICE.mail, ALICE.password).await, proven(ALICE.mail));
}

#[tokio::test]
async fn filter_injection_in_the_name_matches_no_one() {
    let Some(ldap) = Ldap::start() else { return };
    let source = source(&ldap);
    let alice_dn = Ldap::user_dn(ALICE.uid);
    // Pasted into the filter unescaped, each of these would find alice's entry (and `*` bob's
    // too), and alice's password would then bind: a naive source would sign the typer in as
    // alice without them ever typing her address.
    for attack in ["al*", "*)(uid=alice"] {
        let found = naive_search(&ldap, attack).await;
        assert_eq!(found, vec![alice_dn.clone()], "the naive filter for {attack:?}");
        assert_eq!(check(&source, attack, ALICE.password).await, Verdict::Refused, "{attack:?}");
    }
    let everyone = naive_search(&ldap, "*").await;
    assert!(everyone.contains(&alice_dn) && everyone.len() >= 2, "{everyone:?}");
    for attack in ["*", ")(", "*)(mail=*", "alice@example.com\0", "alice@example.com\0*", "\\2a"] {
        for password in [ALICE.password, BOB.password] {
            assert_eq!(check(&source, attack, password).await, Verdict::Refused, "{attack:?}");
        }
    }
    // A NUL, even escaped (`\00`, RFC 4515 §3), ends the value for slapd: searched as is, the
    // name `alice@example.com<NUL>anything` finds alice. So names with control characters are
    // refused before the directory is asked.
    let escaped_nul =
        letterlock_server::identity::ldap::escape_filter_value("alice@example.com\0anything");
    assert_eq!(escaped_nul, "alice@example.com\\00anything");
    assert_eq!(naive_search(&ldap, &escaped_nul).await, vec![alice_dn.clone()]);
    for attack in ["alice@example.com\0anything", "alice@example.com\u{1}", "alice@example.com\n"] {
        assert_eq!(check(&source, attack, ALICE.password).await, Verdict::Refused, "{attack:?}");
    }
    // The escaped filter as it goes on the wire: one equality match on the whole text.
    assert_eq!(
        filter_for(FILTER, "*)(uid=alice"),
        "(&(objectClass=inetOrgPerson)(mail=\\2a\\29\\28uid=alice)(!(employeeType=disabled)))"
    );
}

#[tokio::test]
async fn an_empty_password_is_refused_though_the_directory_would_take_it() {
    let Some(ldap) = Ldap::start() else { return };
    // RFC 4513 §5.1.2: this slapd (`allow bind_anon_dn`, as some deployed directories) answers
    // an unauthenticated bind, alice's DN with no password, with success, as anonymous.
    let mut connection = raw_connection(&ldap).await;
    let bound = connection.simple_bind(&Ldap::user_dn(ALICE.uid), "").await.unwrap();
    assert_eq!(bound.rc, 0, "slapd takes the unauthenticated bind: {bound:?}");
    let whoami = connection.extended(ldap3::exop::WhoAmI).await.unwrap().success().unwrap();
    // RFC 4532 §2: an empty authorization identity is the anonymous one.
    let identity = whoami.0.val.unwrap_or_default();
    assert!(identity.is_empty(), "bound as anonymous, not as alice: {identity:?}");

    let source = source(&ldap);
    assert_eq!(check(&source, ALICE.mail, "").await, Verdict::Refused);
    let by_uid = source_at(
        &ldap,
        &ldap.ldaps_url(),
        "filter = \"(&(objectClass=inetOrgPerson)(uid={user}))\"\n",
    );
    assert_eq!(check(&by_uid, ALICE.uid, "").await, Verdict::Refused);
}

#[tokio::test]
async fn a_directory_whose_certificate_another_ca_signed_is_unavailable() {
    let Some(ldap) = Ldap::start() else { return };
    let other = tempfile::tempdir().unwrap();
    let other = letterlock_test_support::certificate(other.path(), &["localhost", "127.0.0.1"]);
    for url in [ldap.ldaps_url(), ldap.ldap_url()] {
        let mut text = entry(&ldap, &url, "").replace("kind = \"ldap\"\n", "");
        text = text.replace(
            &format!("ca_file = \"{}\"", ldap.ca_file().display()),
            &format!("ca_file = \"{}\"", other.certificate.display()),
        );
        let source = LdapSource::new(&toml::from_str(&text).unwrap()).unwrap();
        match check(&source, ALICE.mail, ALICE.password).await {
            Verdict::Unavailable { reason } => {
                assert!(
                    reason.contains("certificate") || reason.contains("Certificate"),
                    "{reason}"
                );
            }
            other => panic!("{url} with a foreign CA: {other:?}"),
        }
        assert_eq!(source.standing(ALICE.mail).await, Standing::Unknown);
    }
}

#[tokio::test]
async fn a_directory_that_never_answers_is_unavailable_within_the_timeout() {
    let Some(ldap) = Ldap::start() else { return };
    // A listener that accepts connections and says nothing (a hung directory).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let source = source_at(&ldap, &format!("ldaps://127.0.0.1:{port}"), "timeout_seconds = 1\n");
    match check(&source, ALICE.mail, ALICE.password).await {
        Verdict::Unavailable { reason } => assert!(reason.contains("did not answer"), "{reason}"),
        other => panic!("a silent directory: {other:?}"),
    }
    assert_eq!(source.standing(ALICE.mail).await, Standing::Unknown);
    held.abort();
}

#[tokio::test]
async fn standing_is_gone_once_the_entry_is_disabled_or_deleted() {
    let Some(mut ldap) = Ldap::start() else { return };
    let source = source(&ldap);
    assert_eq!(source.standing(ALICE.mail).await, Standing::Active);
    assert_eq!(source.standing("ALICE@example.com").await, Standing::Active);
    assert_eq!(source.standing(BOB.mail).await, Standing::Active);
    assert_eq!(source.standing(DISABLED.mail).await, Standing::Gone);
    assert_eq!(source.standing("*").await, Standing::Gone);
    ldap.disable(BOB.uid);
    assert_eq!(source.standing(BOB.mail).await, Standing::Gone);
    ldap.delete(ALICE.uid);
    assert_eq!(source.standing(ALICE.mail).await, Standing::Gone);
    ldap.stop();
    assert_eq!(source.standing(BOB.mail).await, Standing::Unknown);
}

/// A server whose sign-in asks the directory first, then the local table (in which alice has
/// another password).
async fn server_with(ldap: &Ldap, sources_after: &str) -> TestServer {
    let config = format!(
        "{CONFIG}\n[sign_in]\n[[sign_in.sources]]\n{}\n{sources_after}",
        entry(ldap, &ldap.ldaps_url(), "timeout_seconds = 2\n")
    );
    server(&config).await
}

const LOCAL_PASSWORD: &str = "alice's old local password";

#[tokio::test]
async fn a_directory_that_is_down_makes_sign_in_unavailable_not_a_fall_through() {
    let Some(mut ldap) = Ldap::start() else { return };
    let server = server_with(&ldap, "[[sign_in.sources]]\nkind = \"local\"\n").await;
    letterlock_server::accounts::add_user(server.state.store(), ALICE.mail, LOCAL_PASSWORD, NOW)
        .await
        .unwrap();

    // While the directory answers, its password signs alice in.
    let mut browser = Browser::default();
    let page = browser.sign_in_at_account(&server, ALICE.mail, ALICE.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), "/account");

    ldap.stop();
    for password in [LOCAL_PASSWORD, ALICE.password] {
        let mut browser = Browser::default();
        let page = browser.sign_in_at_account(&server, ALICE.mail, password).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.html);
        assert!(page.html.contains("Sign-in is unavailable"), "{}", page.html);
        assert!(
            browser.cookies.keys().all(|name| !name.contains("session")),
            "{:?}",
            browser.cookies
        );
        let page = browser.get(&server, "/account").await;
        assert!(page.html.contains("Sign in"), "not signed in after an outage: {}", page.html);
    }
}

/// Signs in at an authorization request with `address` and `password`, approves, and returns
/// the token response.
async fn tokens_for(
    server: &TestServer,
    client_id: &str,
    address: &str,
    password: &str,
) -> serde_json::Value {
    let uri = crate::flow::authorize_uri(client_id, &[("login_hint", address)]);
    let mut browser = Browser::default();
    let page = browser.get(server, &uri).await;
    let page = browser.sign_in(server, &page, address, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(server, page.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
    let form = [
        ("request", request.as_str()),
        ("csrf", &csrf),
        ("device_name", "Laptop"),
        ("decision", "approve"),
    ];
    let page = browser.post(server, "/consent", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let code = redirect_parameters(page.location())["code"].as_str().unwrap().to_owned();
    let reply = redeem(server, client_id, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn refresh(server: &TestServer, client_id: &str, token: &str) -> crate::support::Reply {
    token_request(
        server,
        &[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client_id)],
        None,
    )
    .await
}

#[tokio::test]
async fn a_person_deleted_at_the_directory_loses_their_refresh_after_the_recheck_delay() {
    let Some(ldap) = Ldap::start() else { return };
    ldap.add_user("dave", "dave@example.com", "dave's password");
    let server = server_with(&ldap, "").await;
    let laptop = register(&server, json!({"client_name": "Laptop Mail"})).await;
    let phone = register(&server, json!({"client_name": "Phone Mail"})).await;
    let laptop_tokens = tokens_for(&server, &laptop, "dave@example.com", "dave's password").await;
    let phone_tokens = tokens_for(&server, &phone, "dave@example.com", "dave's password").await;
    let user = server.state.store().user_by_address("dave@example.com").await.unwrap().unwrap();
    assert_eq!(user.source, "directory");
    assert!(!user.password_hash.starts_with("$argon2"), "a directory person has no local password");

    // Issue 17 point 3: the devices page and its JSON API are the same for a directory person.
    let mut browser = Browser::default();
    let page = browser.get(&server, "/account").await;
    let page = browser.sign_in(&server, &page, "dave@example.com", "dave's password").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Laptop") && page.html.contains("Phone Mail"), "{}", page.html);
    assert!(page.html.contains("is kept by directory"), "no local password form: {}", page.html);
    let reply = browser.get(&server, "/account/api/devices").await;
    let devices: serde_json::Value = serde_json::from_str(&reply.html).unwrap();
    assert_eq!(devices["user"], "dave@example.com");
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2, "{devices}");

    // Within the delay, a refresh does not ask the directory; after it, it asks and dave is
    // still there.
    let reply = refresh(&server, &laptop, laptop_tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    server.clock.advance(901);
    let reply = refresh(&server, &laptop, reply.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let laptop_refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();

    // Deleted at the directory: still refreshable until the delay has passed again.
    ldap.delete("dave");
    server.clock.advance(901);
    let reply = refresh(&server, &laptop, &laptop_refresh).await;
    crate::support::assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_grant");
    // Every grant of dave's went with it, the phone's too.
    let reply = refresh(&server, &phone, phone_tokens["refresh_token"].as_str().unwrap()).await;
    crate::support::assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_grant");
    let access = phone_tokens["access_token"].as_str().unwrap();
    let introspected = crate::flow::introspect(&server, crate::flow::IMAP, access).await;
    assert_eq!(introspected["active"], false, "{introspected}");
}
