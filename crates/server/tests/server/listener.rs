//! The real listener: TLS with rustls, curl as an independent client, graceful shutdown.

use std::process::Command;
use std::time::Duration;

use letterlock_server::config::TlsConfig;
use letterlock_server::listen::{ListenOptions, serve, serve_with, tls_acceptor};
use serde_json::Value;

fn curl(args: &[&str]) -> (String, String) {
    let output = letterlock_test_support::curl(args);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_curl_and_shuts_down_gracefully() {
    if !letterlock_test_support::oracle::available("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let letterlock_test_support::Certificate { certificate, private_key, .. } =
        letterlock_test_support::certificate(dir.path(), &["127.0.0.1"]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let issuer = format!("https://127.0.0.1:{port}");
    let state = crate::support::server(&format!("issuer = \"{issuer}\"")).await.state;
    let tls = TlsConfig { certificate: certificate.clone(), private_key };
    let acceptor = tls_acceptor(&tls).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        letterlock_server::router(state),
        Some(acceptor),
        Duration::from_secs(5),
        async {
            let _ = stopped.await;
        },
    ));

    let ca = certificate.to_str().unwrap().to_owned();
    let base = issuer.clone();
    let (metadata, registered, plain_error) = tokio::task::spawn_blocking(move || {
        let (metadata, error) =
            curl(&["--cacert", &ca, &format!("{base}/.well-known/oauth-authorization-server")]);
        assert!(error.is_empty(), "curl: {error}");
        let (registered, error) = curl(&[
            "--cacert",
            &ca,
            "--http2",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"redirect_uris":["http://127.0.0.1/cb"],"client_name":"curl"}"#,
            &format!("{base}/register"),
        ]);
        assert!(error.is_empty(), "curl: {error}");
        // Plain HTTP to a TLS port is refused, not answered.
        let (_, plain_error) = curl(&[&format!("http://127.0.0.1:{port}/jwks.json")]);
        (metadata, registered, plain_error)
    })
    .await
    .unwrap();
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());
    assert_eq!(metadata["registration_endpoint"], format!("{issuer}/register"));
    let registered: Value = serde_json::from_str(&registered).unwrap();
    assert!(registered["client_id"].as_str().unwrap().starts_with("ll1."));
    assert!(!plain_error.is_empty(), "plain http should fail on the TLS port");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("graceful shutdown")
        .unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is closed after shutdown"
    );
}

/// Behind a trusted proxy, limits key on the forwarded client address; an untrusted peer's
/// `X-Forwarded-For` is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_see_the_client_behind_a_trusted_proxy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = crate::support::server(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\n[registration]\nrate_limit_per_minute = 1\nrate_limit_burst = 1\n"
    ))
    .await
    .state;
    let trusted = vec![letterlock_server::proxy::Cidr::parse("127.0.0.0/8").unwrap()];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(letterlock_server::listen::serve_behind(
        listener,
        letterlock_server::router(state),
        None,
        Duration::from_secs(5),
        trusted,
        async {
            let _ = stopped.await;
        },
    ));
    let url = format!("http://127.0.0.1:{port}/register");
    let statuses = tokio::task::spawn_blocking(move || {
        let register = |forwarded: &str| {
            let output = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    "Content-Type: application/json",
                ])
                .args(["-H", &format!("X-Forwarded-For: {forwarded}")])
                .args(["-d", r#"{"redirect_uris":["http://127.0.0.1/cb"]}"#, &url])
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        [
            register("198.51.100.1"),
            register("198.51.100.2"),
            register("198.51.100.1"),
            register("203.0.113.5, 198.51.100.2"),
        ]
    })
    .await
    .unwrap();
    assert_eq!(statuses, ["201", "201", "429", "429"], "one budget per forwarded client");
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// The client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5): an HTTP/2 connection
/// by prior knowledge that then asks for nothing.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads until the server closes the connection; false if it is still open after `patience`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, patience: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buffer = [0u8; 1024];
    let reading = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(patience, reading).await.is_ok()
}

/// Serves a test server's router on a loopback port with `options`; the port and a stop switch.
async fn serve_on_loopback(
    options: ListenOptions,
) -> (u16, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state =
        crate::support::server(&format!("issuer = \"http://127.0.0.1:{port}\"")).await.state;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        letterlock_server::router(state),
        None,
        options,
        async {
            let _ = stopped.await;
        },
    ));
    (port, stop, server)
}

/// Issue 14, review finding 16: an HTTP/2 connection that sent nothing after its SETTINGS was
/// kept open for ever, so idle connections could use up the server's file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    use tokio::io::AsyncWriteExt as _;
    let options =
        ListenOptions { idle_timeout: Duration::from_secs(1), ..ListenOptions::default() };
    let (port, stop, server) = serve_on_loopback(options).await;
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    idle.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap();
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(20)).await,
        "an idle HTTP/2 connection was still open after 20 s"
    );
    // Before the first byte the protocol is not known yet, and HTTP/1.1's header read timeout
    // does not run: the idle close covers that connection too.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(20)).await,
        "a connection that never sent a byte was still open after 20 s"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// Sends `GET /jwks.json` on an HTTP/1.1 connection; the status line, or "" if the server
/// closed the connection without answering.
async fn fetch_jwks(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = b"GET /jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_owned()
}

/// Issue 14, review finding 16: the authorization server had no connection cap. One address
/// block now gets `connections_per_address` at once (more are closed unanswered), and beyond
/// `max_connections` in total clients wait until a connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_address_and_in_total() {
    let options = ListenOptions { connections_per_address: 3, ..ListenOptions::default() };
    let (port, stop, server) = serve_on_loopback(options).await;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    let mut held =
        vec![connect().await.unwrap(), connect().await.unwrap(), connect().await.unwrap()];
    let mut fourth = connect().await.unwrap();
    assert!(closed_by_server(&mut fourth, Duration::from_secs(20)).await, "a fourth connection");
    assert_eq!(fetch_jwks(&mut held[0]).await, "HTTP/1.1 200 OK", "the first three are served");
    drop(held);
    // The server notices the closes on its own time: try until a slot has come back.
    let mut answers = Vec::new();
    for _ in 0..100 {
        answers.push(fetch_jwks(&mut connect().await.unwrap()).await);
        if answers.last().is_some_and(|answer| answer == "HTTP/1.1 200 OK") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answers.last().unwrap(), "HTTP/1.1 200 OK", "slots come back when closed");
    stop.send(()).unwrap();
    server.await.unwrap();

    let options = ListenOptions { max_connections: 2, ..ListenOptions::default() };
    let (port, stop, server) = serve_on_loopback(options).await;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    let (first, mut second) = (connect().await.unwrap(), connect().await.unwrap());
    let mut third = connect().await.unwrap();
    let waiting = tokio::spawn(async move { fetch_jwks(&mut third).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection waits while two are open");
    assert_eq!(fetch_jwks(&mut second).await, "HTTP/1.1 200 OK");
    assert_eq!(waiting.await.unwrap(), "HTTP/1.1 200 OK", "served once one has closed");
    drop(first);
    stop.send(()).unwrap();
    server.await.unwrap();
}
