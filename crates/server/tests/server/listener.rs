//! The real listener: TLS with rustls, curl as an independent client, graceful shutdown.

use std::process::Command;
use std::time::Duration;

use letterlock_server::config::TlsConfig;
use letterlock_server::listen::{serve, tls_acceptor};
use serde_json::Value;

fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_curl_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let certificate = dir.path().join("cert.pem");
    let private_key = dir.path().join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&private_key, certified.signing_key.serialize_pem()).unwrap();

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
