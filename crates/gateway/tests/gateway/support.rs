use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use letterlock_gateway::door::Protocol;
use letterlock_gateway::{FrontDoors, Gateway};
use letterlock_jose::key::{Algorithm, PrivateKey};
use letterlock_protocol::issuer::Issuer;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::{TcpListener, TcpStream};

/// The gateway's clock in these tests: fixed, so that lifetimes and failure windows are exact.
pub const NOW: i64 = 1_900_000_000;

fn clock() -> i64 {
    NOW
}

/// The user every token names.
pub const USER: &str = "ann@example.com";

/// The stub issuer.
pub struct StubIssuer {
    pub url: String,
    key: PrivateKey,
    feed: Arc<Mutex<Vec<Value>>>,
}

impl StubIssuer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Issuer::parse(&url).unwrap();
        let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let jwks = json!({ "keys": [key.public_jwk(Some("k1".into())).to_json()] });
        let metadata = json!({ "issuer": issuer.as_str(), "jwks_uri": format!("{url}/jwks") });
        let feed = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(metadata) }),
            )
            .route("/jwks", get(move || async move { Json(jwks) }))
            .route("/revocations", get(revocations))
            .with_state(feed.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url: issuer.as_str().to_owned(), key, feed }
    }

    /// A token for `resource` with the mail scope, valid for an hour at [`NOW`].
    pub fn token(&self, resource: &str, grant_id: &str) -> String {
        self.token_with(resource, grant_id, NOW + 3600)
    }

    /// A token for `resource` that expires at `expires_at`.
    pub fn token_with(&self, resource: &str, grant_id: &str, expires_at: i64) -> String {
        let claims = json!({
            "iss": self.url,
            "aud": resource,
            "sub": USER,
            "client_id": "client-1",
            "scope": letterlock_gateway::config::MAIL_SCOPE,
            "jti": format!("jti-{grant_id}"),
            "iat": expires_at - 3600,
            "exp": expires_at,
            "grant_id": grant_id,
        });
        let Value::Object(claims) = claims else { unreachable!() };
        letterlock_jose::jws::sign(&self.key, Some("k1"), "at+jwt", &claims, &SystemRandom::new())
            .unwrap()
    }

    /// Publishes the revocation of a grant on the feed.
    pub fn revoke(&self, grant_id: &str) {
        let mut feed = self.feed.lock().unwrap();
        let cursor = feed.len() + 1;
        feed.push(json!({ "cursor": cursor, "grant_id": grant_id, "revoked_at": NOW }));
    }
}

/// The revocation feed, long-polled: entries after the cursor, or none within a second.
async fn revocations(
    State(feed): State<Arc<Mutex<Vec<Value>>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let after: usize = query.get("after").and_then(|after| after.parse().ok()).unwrap_or(0);
    for _ in 0..20 {
        {
            let feed = feed.lock().unwrap();
            if feed.len() > after {
                return Json(json!({ "revocations": feed[after..], "cursor": feed.len() }));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Json(json!({ "revocations": [], "cursor": after }))
}

/// An OAUTHBEARER initial response (RFC 7628 §3.1), base64.
pub fn oauthbearer(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(letterlock_sasl::oauthbearer::encode(
        Some(USER),
        None,
        None,
        token,
    ))
}

/// A running gateway with one door.
pub struct Door {
    pub address: SocketAddr,
    pub resource: String,
    /// The door's certificate (DER), when it has TLS.
    trusted: Vec<u8>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _files: tempfile::TempDir,
}

/// `[gateway]` for the tests: one thread, a short login timeout, two failures per minute.
const GATEWAY: &str = "[gateway]\nclient_id = \"doors\"\nsecret = \"feed-secret\"\nthreads = 1\n\
    login_timeout_seconds = 5\nfailures_per_minute_per_address = 2\n";

impl Door {
    /// Starts a gateway with one door of `protocol` in front of `backend`; `tls` is the
    /// door's `tls` (`none` or `starttls`, with a certificate for `localhost`).
    pub async fn start(
        issuer: &StubIssuer,
        protocol: Protocol,
        backend: SocketAddr,
        tls: &str,
    ) -> Self {
        let files = tempfile::tempdir().unwrap();
        let section = protocol.section();
        let resource = format!("{section}://127.0.0.1");
        let mut door = format!(
            "[[{section}]]\nlisten = \"127.0.0.1:0\"\nresource = \"{resource}\"\ntls = \"{tls}\"\n"
        );
        let mut trusted = Vec::new();
        if tls != "none" {
            let made = letterlock_test_support::certificate(files.path(), &["localhost"]);
            door.push_str(&format!(
                "certificate = \"{}\"\nprivate_key = \"{}\"\n",
                made.certificate.display(),
                made.private_key.display()
            ));
            trusted = made.der;
        }
        door.push_str(&format!(
            "[{section}.backend]\naddress = \"{backend}\"\nlogin = \"master\"\n\
             master_user = \"master\"\nmaster_password = \"master-secret\"\n"
        ));
        let config: FrontDoors = toml::from_str(&format!("{GATEWAY}{door}")).unwrap();
        let gateway = Gateway::start_with_clock(Issuer::parse(&issuer.url).unwrap(), config, clock)
            .await
            .unwrap();
        let address = gateway.local_addresses()[0].1;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.run(async move {
            let _ = stopped.await;
        }));
        Self { address, resource, trusted, _stop: stop, _files: files }
    }

    pub async fn connect(&self) -> Lines<TcpStream> {
        Lines::new(TcpStream::connect(self.address).await.unwrap())
    }
}

/// Upgrades a client connection to TLS, trusting only the door's certificate.
pub async fn upgrade(door: &Door, stream: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(door.trusted.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, stream).await.unwrap()
}

/// Lines both ways over a stream, each read within ten seconds.
pub struct Lines<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lines<S> {
    pub fn new(stream: S) -> Self {
        Self { stream: BufReader::new(stream) }
    }

    /// The next line with its CRLF; empty at the end of the stream.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
            .await
            .expect("a line within ten seconds")
            .unwrap();
        line
    }

    /// Sends `text` as it is (with its CRLFs).
    pub async fn send(&mut self, text: &str) {
        self.stream.get_mut().write_all(text.as_bytes()).await.unwrap();
    }

    /// True once the peer has closed the connection (nothing more to read).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest));
        matches!(read.await, Ok(Ok(_))) && rest.is_empty()
    }

    /// The stream, for a TLS upgrade (nothing may be buffered).
    pub fn into_inner(self) -> S {
        assert!(self.stream.buffer().is_empty());
        self.stream.into_inner()
    }
}

/// A scripted back end on port 0: accepts one connection and plays `script` on it; what the
/// script returns (the lines it saw) comes back through the handle.
pub async fn backend<F, Fut>(script: F) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>)
where
    F: FnOnce(Lines<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<String>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        script(Lines::new(stream)).await
    });
    (address, handle)
}

/// A back end that is never reached (the login must fail before it).
pub fn unreachable_backend() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

/// The PLAIN response the door sends for the master-user login of [`USER`], base64.
pub fn master_plain() -> String {
    base64::engine::general_purpose::STANDARD.encode(letterlock_sasl::plain::encode(
        Some(USER),
        "master",
        "master-secret",
    ))
}

/// The decoded RFC 7628 error challenge of a `+ `/`334 ` line.
pub fn challenge(line: &str, prefix: &str) -> Value {
    let encoded = line.strip_prefix(prefix).unwrap().trim_end();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
