//! The client's refusals and discovery paths against servers that answer what a test tells
//! them to: an issuer whose metadata names someone else, redirects, plain http to another
//! machine, services the issuer does not list, oversized and malformed JSON, a SASL challenge
//! pointing to another domain; and autoconfig and well-known discovery over TLS with a private
//! CA and `--resolve`, and SRV records from Debian's dnsmasq. In every refusal nothing is registered and no browser is opened.
//! (The journey against the real server, front doors and Dovecot is in the CLI's tests.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a panic in a test is a failed test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use letterlock_client::{
    Browser, Client, Endpoint, Error, Login, MemoryStorage, NetOptions, Options, Service,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake answers for one path.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// A fake HTTP(S) server: fixed replies by path, and a log of the requests it saw.
#[derive(Clone, Default)]
struct Fake {
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn reply(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_owned(), reply);
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Serves plain HTTP on a loopback port.
    async fn start(&self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(fake.clone().serve(stream));
            }
        });
        port
    }

    /// Serves HTTPS with a certificate for `names`; returns the port and the certificate (PEM)
    /// to trust.
    async fn start_tls(&self, names: &[&str]) -> (u16, String) {
        let certified = letterlock_test_support::self_signed(names);
        let key = rustls::pki_types::PrivateKeyDer::try_from(certified.key_der.clone()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.der.clone().into()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (fake, acceptor) = (fake.clone(), acceptor.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        fake.serve(tls).await;
                    }
                });
            }
        });
        (port, certified.pem)
    }

    async fn serve(self, mut stream: impl AsyncRead + AsyncWrite + Unpin) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut words = head.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("").to_owned();
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        let _ = stream.read_exact(&mut body).await;
        let reply = self.replies.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
            status: 404,
            headers: vec![],
            body: b"not here".to_vec(),
        });
        let mut response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.write_all(&reply.body).await;
        let _ = stream.shutdown().await;
    }
}

/// A browser that must never be opened in these tests.
struct NoBrowser;

impl Browser for NoBrowser {
    fn open(&self, url: &str) -> Result<(), Error> {
        panic!("the browser was opened at {url} although discovery should have refused");
    }
}

fn client(net: NetOptions) -> Client {
    Client::new(
        Arc::new(MemoryStorage::default()),
        Arc::new(NoBrowser),
        Options { net, ..Options::default() },
    )
    .unwrap()
}

fn metadata(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "scopes_supported": ["urn:ietf:params:oauth:scope:mail", "offline_access"],
    })
}

fn quiet(_: &str) {}

/// A login naming its IMAP server and issuer, so that only the issuer is asked.
fn login_at(issuer: &str, imap: &str) -> Login {
    let mut login = Login::new("fay@example.com");
    login.issuer = Some(issuer.to_owned());
    login.endpoints.push(Endpoint::parse(Service::Imap, imap).unwrap());
    login
}

fn refused(result: Result<letterlock_client::Account, Error>, words: &str) {
    match result {
        Err(Error::Refused(message)) => assert!(message.contains(words), "{message}"),
        other => panic!("expected a refusal with {words:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_that_fail_a_check_are_refused_and_nothing_is_sent() {
    let fake = Fake::default();
    let port = fake.start().await;
    let issuer = format!("http://127.0.0.1:{port}");
    let client = client(NetOptions::default());
    let imap = "imap://127.0.0.1:1143";

    // Metadata naming another issuer than the one it was fetched for (RFC 8414 §3.3).
    fake.reply(
        "/.well-known/oauth-authorization-server",
        json(200, metadata("http://127.0.0.1:1")),
    );
    refused(client.login(&login_at(&issuer, imap), &quiet).await, "must be the same");

    // A redirect while fetching metadata is not followed.
    fake.reply(
        "/.well-known/oauth-authorization-server",
        Reply {
            status: 302,
            headers: vec![("location".into(), "https://evil.example.net/".into())],
            body: vec![],
        },
    );
    refused(client.login(&login_at(&issuer, imap), &quiet).await, "does not follow redirects");

    // A service the issuer does not list in protected_resources gets no token.
    let mut listed = metadata(&issuer);
    listed["protected_resources"] = serde_json::json!(["imaps://mail.example.com"]);
    fake.reply("/.well-known/oauth-authorization-server", json(200, listed));
    refused(client.login(&login_at(&issuer, imap), &quiet).await, "not among the services");

    // An endpoint in the metadata that is plain http to another machine.
    let mut plain = metadata(&issuer);
    plain["token_endpoint"] = "http://auth.example.com/token".into();
    fake.reply("/.well-known/oauth-authorization-server", json(200, plain));
    refused(client.login(&login_at(&issuer, imap), &quiet).await, "not https");

    // Oversized and malformed JSON.
    fake.reply(
        "/.well-known/oauth-authorization-server",
        Reply { status: 200, headers: vec![], body: vec![b' '; 300 * 1024] },
    );
    match client.login(&login_at(&issuer, imap), &quiet).await {
        Err(Error::Network(message)) => assert!(message.contains("more than"), "{message}"),
        other => panic!("oversized: {other:?}"),
    }
    fake.reply(
        "/.well-known/oauth-authorization-server",
        Reply { status: 200, headers: vec![], body: b"{\"issuer\": ".to_vec() },
    );
    match client.login(&login_at(&issuer, imap), &quiet).await {
        Err(Error::Network(message)) => assert!(message.contains("not valid JSON"), "{message}"),
        other => panic!("malformed: {other:?}"),
    }

    // Nothing but metadata was ever asked: no registration, no token request.
    assert!(
        fake.seen().iter().all(|request| request.starts_with("GET /.well-known/")),
        "{:?}",
        fake.seen()
    );

    // An issuer that is plain http to another machine is refused before any request.
    refused(client.login(&login_at("http://auth.example.com", imap), &quiet).await, "issuer");
}

/// A fake IMAP server whose OAUTHBEARER failure names `pointer` as the issuer's metadata.
async fn imap_pointing_to(pointer: &str) -> u16 {
    use base64::Engine as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let challenge = base64::engine::general_purpose::STANDARD.encode(
        serde_json::json!({"status": "invalid_token", "scope": "urn:ietf:params:oauth:scope:mail",
                           "openid-configuration": pointer})
        .to_string(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let challenge = challenge.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read);
                let _ = write.write_all(b"* OK fake IMAP\r\n").await;
                let mut line = String::new();
                while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
                    .await
                    .unwrap_or(0)
                    > 0
                {
                    let tag = line.split(' ').next().unwrap_or("").to_owned();
                    let reply = if line.contains("CAPABILITY") {
                        format!(
                            "* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER SASL-IR\r\n{tag} OK done\r\n"
                        )
                    } else if line.contains("AUTHENTICATE") {
                        format!("+ {challenge}\r\n")
                    } else if line.trim() == "AQ==" {
                        "C4 NO [AUTHENTICATIONFAILED] no\r\n".to_owned()
                    } else {
                        format!("{tag} OK bye\r\n")
                    };
                    let _ = write.write_all(reply.as_bytes()).await;
                    line.clear();
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_sasl_challenge_pointing_to_another_domain_is_refused() {
    let port = imap_pointing_to("https://evil.example.net/.well-known/openid-configuration").await;
    let mut login = Login::new("fay@example.com");
    login
        .endpoints
        .push(Endpoint::parse(Service::Imap, &format!("imap://127.0.0.1:{port}")).unwrap());
    let result = client(NetOptions::default()).login(&login, &quiet).await;
    refused(result, "not on the mail server's domain");

    // The same server pointing to an issuer on its own host is followed, and the issuer must
    // really be at that URL.
    let fake = Fake::default();
    let issuer_port = fake.start().await;
    let issuer = format!("http://127.0.0.1:{issuer_port}");
    let mut document = metadata(&issuer);
    document["protected_resources"] = serde_json::json!(["imap://127.0.0.1"]);
    fake.reply("/.well-known/oauth-authorization-server", json(200, document.clone()));
    let port = imap_pointing_to(&format!("{issuer}/.well-known/oauth-authorization-server")).await;
    let mut login = Login::new("fay@example.com");
    login
        .endpoints
        .push(Endpoint::parse(Service::Imap, &format!("imap://127.0.0.1:{port}")).unwrap());
    let plan = client(NetOptions::default()).discover(&login, &quiet).await.unwrap();
    assert_eq!(plan.issuers.len(), 1);
    assert_eq!(plan.issuers[0].0.issuer.as_str(), issuer);
    assert_eq!(plan.issuers[0].1[0].resource, "imap://127.0.0.1");
    assert!(plan.issuers[0].2.contains("SASL challenge"));

    // A challenge naming a metadata URL that is not its issuer's well-known location.
    fake.reply("/elsewhere", json(200, document));
    let port = imap_pointing_to(&format!("{issuer}/elsewhere")).await;
    let mut login = Login::new("fay@example.com");
    login
        .endpoints
        .push(Endpoint::parse(Service::Imap, &format!("imap://127.0.0.1:{port}")).unwrap());
    let result = client(NetOptions::default()).login(&login, &quiet).await;
    refused(result, "whose metadata is not at that URL");
}

#[tokio::test]
async fn autoconfig_and_the_domains_metadata_are_found_over_tls() {
    let fake = Fake::default();
    let (port, certificate) = fake.start_tls(&["autoconfig.example.com", "example.com"]).await;
    let mut net = NetOptions::default();
    net.add_roots_from_pem(certificate.as_bytes()).unwrap();
    net.add_resolve(&format!("autoconfig.example.com=127.0.0.1:{port}")).unwrap();
    net.add_resolve(&format!("example.com=127.0.0.1:{port}")).unwrap();
    // The IMAP server autoconfig names is down: discovery goes on without its challenge.
    net.add_resolve("imap.example.com=127.0.0.1:9").unwrap();
    net.add_resolve("imap.example.org=127.0.0.1:9").unwrap();

    // Autoconfig names the servers and the issuer (an issuer elsewhere, which lists them).
    let issuer_fake = Fake::default();
    let issuer = format!("http://127.0.0.1:{}", issuer_fake.start().await);
    let mut document = metadata(&issuer);
    document["protected_resources"] = serde_json::json!(["imaps://imap.example.com"]);
    issuer_fake.reply("/.well-known/oauth-authorization-server", json(200, document));
    fake.reply(
        "/mail/config-v1.1.xml",
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: format!(
                "<clientConfig version=\"1.1\"><emailProvider id=\"example.com\">\
                 <incomingServer type=\"imap\"><hostname>imap.example.com</hostname><port>993</port>\
                 <socketType>SSL</socketType></incomingServer></emailProvider>\
                 <oAuth2><issuer>{issuer}</issuer></oAuth2></clientConfig>"
            )
            .into_bytes(),
        },
    );
    let client = client(net);
    let plan = client.discover(&Login::new("fay@example.com"), &quiet).await.unwrap();
    assert_eq!(plan.issuers[0].0.issuer.as_str(), issuer);
    assert_eq!(plan.issuers[0].1[0].endpoint.url.as_str(), "imaps://imap.example.com:993");
    assert_eq!(plan.issuers[0].2, "autoconfig");
    assert!(fake.seen().iter().any(|request| request == "GET /mail/config-v1.1.xml"));

    // Without autoconfig, the domain's own metadata (the issuer https://example.com), and a
    // service on the same registrable domain although the issuer lists none.
    fake.reply("/mail/config-v1.1.xml", Reply { status: 404, headers: vec![], body: vec![] });
    fake.reply(
        "/.well-known/oauth-authorization-server",
        json(200, metadata("https://example.com")),
    );
    let mut login = Login::new("fay@example.com");
    login.endpoints.push(Endpoint::parse(Service::Imap, "imap.example.com").unwrap());
    let plan = client.discover(&login, &quiet).await.unwrap();
    assert_eq!(plan.issuers[0].0.issuer.as_str(), "https://example.com");
    assert_eq!(plan.issuers[0].1[0].resource, "imaps://imap.example.com");
    assert_eq!(plan.issuers[0].2, "example.com's well-known metadata");

    // A service on another domain, with no protected_resources to allow it: refused.
    let mut login = Login::new("fay@example.com");
    login.endpoints.push(Endpoint::parse(Service::Imap, "imap.example.org").unwrap());
    let error = client.discover(&login, &quiet).await.unwrap_err();
    assert!(
        matches!(&error, Error::Refused(message) if message.contains("registrable domain")),
        "{error}"
    );
}

/// A name server we did not write: Debian's dnsmasq on a loopback port, answering `records`
/// (its `--srv-host` syntax) and nothing else.
struct Dnsmasq {
    child: std::process::Child,
    address: std::net::SocketAddr,
}

impl Dnsmasq {
    /// Serves `records`, with more of dnsmasq's `options`; `None` when dnsmasq is not
    /// installed and the test should return (the oracle rule of `letterlock-test-support`).
    fn start(records: &[&str], options: &[&str]) -> Option<Self> {
        if !letterlock_test_support::oracle::available("dnsmasq") {
            return None;
        }
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = std::process::Command::new("dnsmasq");
        command.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--user=root",
            // Authoritative for the test domains: other names get NXDOMAIN, not REFUSED.
            "--local=/example.com/",
            "--local=/example.org/",
            &format!("--port={port}"),
        ]);
        for record in records {
            command.arg(format!("--srv-host={record}"));
        }
        command.args(options);
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq is installed (scripts/test installs dnsmasq-base)");
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // dnsmasq answers TCP on the same port once it is listening.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(std::time::Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self { child, address })
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 6186 and RFC 6764: with no autoconfig, the domain's SRV records name the servers;
/// implicit TLS is preferred, the best priority and weight win, "." means not offered, a
/// target outside the domain is passed over, and so is a name the name server fails to answer.
#[tokio::test]
async fn srv_records_name_the_servers_when_autoconfig_does_not() {
    // dnsmasq has no upstream server for _submissions (the best SMTP label): it answers it
    // with an error, and _submission is used instead.
    let Some(dns) = Dnsmasq::start(
        &[
            "_imaps._tcp.example.com,imap.example.com,9993,10,5",
            "_imaps._tcp.example.com,backup.example.com,9994,20,100",
            "_imap._tcp.example.com,plain.example.com,143",
            "_submission._tcp.example.com,smtp.example.com,587",
            "_pop3s._tcp.example.com",
            "_carddavs._tcp.example.com,dav.example.net,443",
            "_caldavs._tcp.example.com,dav.example.com,8443",
        ],
        &["--server=/_submissions._tcp.example.com/#"],
    ) else {
        return;
    };
    let issuer_fake = Fake::default();
    let issuer = format!("http://127.0.0.1:{}", issuer_fake.start().await);
    let mut document = metadata(&issuer);
    document["protected_resources"] = serde_json::json!([
        "imaps://imap.example.com",
        "smtp://smtp.example.com",
        "https://dav.example.com:8443"
    ]);
    issuer_fake.reply("/.well-known/oauth-authorization-server", json(200, document));
    let mut net = NetOptions { dns_server: Some(dns.address), ..NetOptions::default() };
    // Autoconfig is not there: both of its places refuse the connection.
    net.add_resolve("autoconfig.example.com=127.0.0.1:9").unwrap();
    net.add_resolve("example.com=127.0.0.1:9").unwrap();
    net.add_resolve("autoconfig.example.org=127.0.0.1:9").unwrap();
    net.add_resolve("example.org=127.0.0.1:9").unwrap();
    let client = client(net);
    let mut login = Login::new("fay@example.com");
    login.issuer = Some(issuer.clone());
    let said = Mutex::new(Vec::new());
    let plan = client
        .discover(&login, &|line: &str| said.lock().unwrap().push(line.to_owned()))
        .await
        .unwrap();
    let found: Vec<String> = plan.issuers[0]
        .1
        .iter()
        .map(|service| format!("{} {}", service.endpoint.service, service.endpoint.url))
        .collect();
    assert_eq!(
        found,
        [
            "imap imaps://imap.example.com:9993",
            "smtp smtp://smtp.example.com:587",
            "caldav https://dav.example.com:8443/.well-known/caldav",
        ]
    );
    let said = said.lock().unwrap().join("\n");
    assert!(said.contains("Not using dav.example.net:443"), "{said}");
    assert!(said.contains("No SRV answer for _submissions._tcp.example.com."), "{said}");

    // A domain with no records at all: discovery says what to do.
    let mut nowhere = Login::new("fay@example.org");
    nowhere.issuer = Some(issuer);
    let error = client.discover(&nowhere, &quiet).await.unwrap_err();
    assert!(
        matches!(&error, Error::Discovery(message) if message.contains("neither autoconfig nor SRV")),
        "{error}"
    );

    // A name server that does not answer at all: SRV stops at once, and discovery says what to
    // do instead of failing on the network.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut net = NetOptions {
        dns_server: Some(closed),
        timeout: std::time::Duration::from_secs(1),
        ..NetOptions::default()
    };
    net.add_resolve("autoconfig.example.com=127.0.0.1:9").unwrap();
    net.add_resolve("example.com=127.0.0.1:9").unwrap();
    let deaf = self::client(net);
    let said = Mutex::new(Vec::new());
    let error = deaf
        .discover(&login, &|line: &str| said.lock().unwrap().push(line.to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Discovery(_)), "{error}");
    let said = said.lock().unwrap();
    let silent = said.iter().filter(|line| line.contains("does not answer")).count();
    assert_eq!(silent, 1, "one lookup, then no more: {said:?}");
}
