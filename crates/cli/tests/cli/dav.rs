//! Issue 5: the DAV front door of `letterlock serve` in front of Debian's Radicale (trusting
//! `X-Remote-User`), with curl and the `caldav` library (PyPI) as clients, tokens from the full
//! flow by Authlib, and DPoP proofs made by Authlib's JOSE.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use letterlock_protocol::scope::{CALENDARS, CONTACTS};
use serde_json::{Value, json};

use super::gateway::{PASSWORD, Tokens, USER, authlib_flow_for_resource};
use super::{Server, curl, free_port, loopback_config, python_json, user_command, wait_for};

/// A private Radicale on a loopback port: users named by `X-Remote-User`, each owning only
/// their own collections.
struct Radicale {
    child: Child,
    port: u16,
}

impl Radicale {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let config = dir.join("radicale.conf");
        std::fs::write(
            &config,
            format!(
                "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = http_x_remote_user\n\
                 [rights]\ntype = owner_only\n[storage]\nfilesystem_folder = {}\n\
                 [web]\ntype = none\n[logging]\nlevel = warning\n",
                dir.join("collections").display()
            ),
        )
        .unwrap();
        let child = Command::new("radicale")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("radicale is installed (scripts/test installs it)");
        wait_for("Radicale to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, port }
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Authlib's flow for the DAV resource with the given scope, optionally with DPoP.
fn flow(port: u16, resource: &str, scope: &str, dpop: bool) -> Value {
    let mut env = vec![("LETTERLOCK_TEST_SCOPE", scope)];
    if dpop {
        env.push(("LETTERLOCK_TEST_DPOP", "1"));
    }
    authlib_flow_for_resource(port, resource, &env)
}

fn dav_client(scenario: &str, parameters: Value) -> Value {
    python_json("dav_client.py", &[scenario, &parameters.to_string()], &[])
}

/// curl's status line, headers and body for one request (`-i`), with extra arguments.
fn http(url: &str, token: Option<&str>, args: &[&str]) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-i", "--max-time", "20"]).args(args).arg(url);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .lines()
        .rfind(|line| line.starts_with("HTTP/"))
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text + &String::from_utf8_lossy(&output.stderr))
}

/// Points 1–4 against Radicale: discovery, both token kinds, path scopes, the trusted header,
/// bad input, and revocation.
#[test]
fn dav_door_in_front_of_radicale() {
    let dir = tempfile::tempdir().unwrap();
    let radicale = Radicale::start(dir.path());
    let (dav, dav_tls) = (free_port(), free_port());
    let resource = format!("http://127.0.0.1:{dav}");
    let tls_resource = format!("https://127.0.0.1:{dav_tls}/dav");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (certificate, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (config, port) = loopback_config(
        dir.path(),
        &format!(
            "[[resources]]\nuri = \"{resource}\"\n[[resources]]\nuri = \"imap://127.0.0.1\"\n\
             [[resources]]\nuri = \"{tls_resource}\"\n\
             [[dav]]\nlisten = \"127.0.0.1:{dav_tls}\"\ntls = \"implicit\"\nresource = \"{tls_resource}\"\n\
             certificate = \"{}\"\nprivate_key = \"{}\"\nbackend = \"http://127.0.0.1:{}\"\n\
             [[dav]]\nlisten = \"127.0.0.1:{dav}\"\nresource = \"{resource}\"\n\
             backend = \"http://127.0.0.1:{}\"\nmax_body_bytes = 1048576\n\
             [[dav.paths]]\nprefix = \"/*/contacts/\"\nscope = \"{CONTACTS}\"\n\
             [[dav.paths]]\nprefix = \"/*/calendar/\"\nscope = \"{CALENDARS}\"\n",
            certificate.display(),
            key.display(),
            radicale.port,
            radicale.port
        ),
    );
    let added = user_command(&config, &["add", USER, "--password-stdin"], PASSWORD);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = Server::start(&config, port);
    wait_for("the DAV door", || std::net::TcpStream::connect(("127.0.0.1", dav)).is_ok());
    let base = format!("{resource}/");
    let home = format!("{resource}/{USER}/");

    // Without a token: 401 with the way to the issuer (RFC 9728 §5.1), and the metadata.
    let (status, text) = http(&base, None, &["-X", "PROPFIND", "-H", "Depth: 0"]);
    assert_eq!(status, 401, "{text}");
    let metadata_url = format!("{resource}/.well-known/oauth-protected-resource");
    assert!(
        text.contains(&format!("www-authenticate: Bearer resource_metadata=\"{metadata_url}\"")),
        "{text}"
    );
    assert!(text.contains("www-authenticate: DPoP algs=\"ES256 EdDSA\""), "{text}");
    let metadata = curl(&[&metadata_url]);
    assert_eq!(metadata["resource"], resource.as_str());
    assert_eq!(metadata["authorization_servers"], json!([format!("http://127.0.0.1:{port}")]));
    assert_eq!(metadata["scopes_supported"], json!([CONTACTS, CALENDARS]));
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA"]));
    // The issuer lists the door among its protected resources.
    let issuer =
        curl(&[&format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server")]);
    assert!(issuer["protected_resources"].as_array().unwrap().contains(&json!(resource)));

    // The full flow for contacts and calendars, then the caldav library with the token.
    let scope = format!("{CONTACTS} {CALENDARS} urn:ietf:params:oauth:scope:mail offline_access");
    let granted = flow(port, &resource, &scope, false);
    let token = granted["smtp_access_token"].as_str().unwrap().to_owned();
    let mut tokens = Tokens::from_flow(port, &granted);
    let seen = dav_client("caldav", json!({"url": base, "token": token}));
    assert_eq!(seen["principal"].as_str().unwrap().replace("%40", "@"), home, "{seen}");
    assert_eq!(seen["events"], json!(["Planning through the front door"]), "{seen}");

    // CardDAV with curl: an address book, a card in it, the card read back.
    let mkcol = "<?xml version=\"1.0\"?><D:mkcol xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\
        <D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>\
        <D:displayname>Contacts</D:displayname></D:prop></D:set></D:mkcol>";
    let contacts = format!("{home}contacts/");
    let (status, text) = http(&contacts, Some(&token), &["-X", "MKCOL", "--data-binary", mkcol]);
    assert_eq!(status, 201, "{text}");
    let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob-1\r\nFN:Bob Example\r\nEMAIL:bob@example.com\r\nEND:VCARD\r\n";
    let card_url = format!("{contacts}bob.vcf");
    let put = ["-X", "PUT", "-H", "Content-Type: text/vcard", "--data-binary", card];
    let (status, text) = http(&card_url, Some(&token), &put);
    assert_eq!(status, 201, "{text}");
    let (status, text) = http(&card_url, Some(&token), &[]);
    assert!(status == 200 && text.contains("FN:Bob Example"), "{text}");
    // MOVE and DELETE pass too (Radicale has no COPY: its 405 would come back as it is).
    let moved = format!("{contacts}robert.vcf");
    for (from, to) in [(&card_url, &moved), (&moved, &card_url)] {
        let destination = format!("Destination: {to}");
        let (status, text) = http(from, Some(&token), &["-X", "MOVE", "-H", &destination]);
        assert_eq!(status, 201, "{text}");
    }
    let carol = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:carol-1\r\nFN:Carol\r\nEND:VCARD\r\n";
    let put_carol = ["-X", "PUT", "-H", "Content-Type: text/vcard", "--data-binary", carol];
    let (status, text) = http(&moved, Some(&token), &put_carol);
    assert_eq!(status, 201, "{text}");
    let (status, text) = http(&moved, Some(&token), &["-X", "DELETE"]);
    assert_eq!(status, 200, "{text}");
    let (status, text) = http(&moved, Some(&token), &[]);
    assert_eq!(status, 404, "{text}");
    // The well-known redirect comes back as Radicale wrote it.
    let (status, text) = http(&format!("{resource}/.well-known/carddav"), Some(&token), &[]);
    assert!(status == 301 && text.to_lowercase().contains("location: /"), "{text}");

    // The TLS door (rustls; curl picks HTTP/2 by ALPN), whose resource has a path: its metadata
    // is at the well-known path with that path appended (RFC 9728 §3.1).
    let tls_token = tokens.token(&tls_resource);
    let ca = ["--cacert", certificate.to_str().unwrap()];
    let tls_metadata =
        format!("https://127.0.0.1:{dav_tls}/.well-known/oauth-protected-resource/dav");
    let (status, text) = http(&format!("https://127.0.0.1:{dav_tls}/{USER}/"), None, &ca);
    assert_eq!(status, 401, "{text}");
    assert!(text.starts_with("HTTP/2 401"), "{text}");
    assert!(text.contains(&format!("resource_metadata=\"{tls_metadata}\"")), "{text}");
    let (status, text) = http(&tls_metadata, None, &ca);
    assert!(status == 200 && text.contains(&format!("\"resource\":\"{tls_resource}\"")), "{text}");
    let (status, text) = http(
        &format!("https://127.0.0.1:{dav_tls}/{USER}/contacts/bob.vcf"),
        Some(&tls_token),
        &ca,
    );
    assert!(status == 200 && text.contains("FN:Bob Example"), "{text}");
    let (status, text) = http(&card_url, Some(&tls_token), &[]);
    assert_eq!(status, 401, "a token for the TLS door is not one for the other: {text}");

    // Path scopes: a contacts-only token reads cards, not the calendar.
    let contacts_only = tokens.narrowed(&resource, Some(CONTACTS));
    let (status, text) = http(&card_url, Some(&contacts_only), &[]);
    assert_eq!(status, 200, "{text}");
    let (status, text) =
        http(&format!("{home}calendar/"), Some(&contacts_only), &["-X", "PROPFIND"]);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains(&format!("error=\"insufficient_scope\", scope=\"{CALENDARS}\"")),
        "{text}"
    );
    // ... nor by a path that Radicale would normalise into the calendar.
    for sneaky in ["contacts/..%2Fcalendar/", "contacts/%2E%2E/calendar/", "/calendar/"] {
        let (status, text) =
            http(&format!("{home}{sneaky}"), Some(&contacts_only), &["--path-as-is"]);
        assert_eq!(status, 400, "{sneaky}: {text}");
    }

    // A token for IMAP is refused here.
    let imap_token = tokens.token("imap://127.0.0.1");
    let (status, text) = http(&home, Some(&imap_token), &["-X", "PROPFIND"]);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("error=\"invalid_token\""), "{text}");

    // Malformed Authorization headers get invalid_request.
    for header in
        ["Authorization: Bearer", "Authorization: Bearer two words", "Authorization: Bearer a\"b"]
    {
        let (status, text) = http(&home, None, &["-H", header]);
        assert_eq!(status, 400, "{header}: {text}");
        assert!(text.contains("error=\"invalid_request\""), "{header}: {text}");
    }

    // The user comes from the token, never from the client's own header.
    let bob = format!("{resource}/bob@example.com/");
    let (status, text) =
        http(&bob, Some(&token), &["-X", "PROPFIND", "-H", "X-Remote-User: bob@example.com"]);
    assert_eq!(status, 403, "Radicale sees fay, who may not read bob's: {text}");
    let (status, text) =
        http(&bob, None, &["-X", "PROPFIND", "-H", "X-Remote-User: bob@example.com"]);
    assert_eq!(status, 401, "{text}");

    // Limits: a huge header, a body over max_body_bytes (declared and chunked).
    let cookie = format!("Cookie: {}", "c".repeat(20_000));
    let (status, text) = http(&home, Some(&token), &["-H", &cookie]);
    assert_eq!(status, 431, "{text}");
    let big = dir.path().join("big.ics");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let upload = format!("@{}", big.display());
    let target = format!("{home}calendar/big.ics");
    let (status, text) = http(&target, Some(&token), &["-X", "PUT", "--data-binary", &upload]);
    assert_eq!(status, 413, "{text}");
    let chunked = ["-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", &upload];
    let (status, text) = http(&target, Some(&token), &chunked);
    assert_eq!(status, 413, "{text}");

    // DPoP (RFC 9449 §7): a bound token needs a fresh proof for this URL, key and token.
    let bound = flow(port, &resource, &scope, true);
    assert!(bound["dpop_key"]["d"].is_string());
    let seen = dav_client(
        "dpop",
        json!({"url": home, "token": bound["smtp_access_token"], "key": bound["dpop_key"]}),
    );
    assert_eq!(seen["good"][0], 207, "{seen}");
    for refused in ["replayed", "other_url", "other_token", "other_key", "no_proof"] {
        assert_eq!(seen[refused][0], 401, "{refused}: {seen}");
        assert!(
            seen[refused][1].as_str().unwrap().contains("invalid_dpop_proof"),
            "{refused}: {seen}"
        );
    }
    assert_eq!(seen["as_bearer"][0], 401, "{seen}");
    assert!(seen["as_bearer"][1].as_str().unwrap().contains("invalid_token"), "{seen}");

    // Revocation (RFC 7009) reaches the door through the feed: the next request gets 401.
    let client_id = granted["client_id"].as_str().unwrap();
    let (status, text) = http(
        &format!("http://127.0.0.1:{port}/revoke"),
        None,
        &[
            "--data-urlencode",
            &format!("token={}", tokens.refresh_token()),
            "--data-urlencode",
            &format!("client_id={client_id}"),
        ],
    );
    assert_eq!(status, 200, "{text}");
    wait_for("the door to refuse the revoked grant's token", || {
        http(&card_url, Some(&contacts_only), &[]).0 == 401
    });
    let (status, text) = http(&card_url, Some(&contacts_only), &[]);
    assert!(status == 401 && text.contains("invalid_token"), "{text}");

    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
