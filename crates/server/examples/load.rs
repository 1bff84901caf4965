//! A bounded load generator for the token endpoint and introspection, over loopback TCP.
//!
//! It starts the server in this process (its own multi-threaded runtime, as `letterlock serve`
//! would), seeds an account, one `private_key_jwt` client and grant per connection, then drives
//! either refresh-token grants (each signed with a fresh client assertion, each response's
//! rotated refresh token used for the next request) or introspections, for a fixed time, and
//! prints requests per second and latency percentiles.
//!
//! ```text
//! cargo run --release -p letterlock-server --example load -- refresh [DATABASE_URL] [CONNECTIONS] [SECONDS]
//! cargo run --release -p letterlock-server --example load -- introspect [DATABASE_URL] [CONNECTIONS] [SECONDS]
//! cargo run --release -p letterlock-server --example load -- sign-in [DATABASE_URL] [CONNECTIONS] [SECONDS]
//! ```
//! `sign-in` posts the sign-in form on CONNECTIONS connections (each success starts a session)
//! while 8 more connections run refresh-token grants, and reports both: a sign-in flood must not
//! starve token traffic. It signs in as a local account it makes; with `LOAD_SOURCE=dovecot` it
//! starts a private Dovecot (a passwd-file passdb, SHA512-CRYPT) and with `LOAD_SOURCE=ldap` a
//! private OpenLDAP `slapd` (over `ldaps://`), both from `letterlock-test-support`, and signs in
//! through that source alone.
//! Without a database URL it uses a SQLite file in a scratch folder. `LOAD_EXTRA_CONFIG` is
//! appended to the server's configuration, to compare settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a load tool: failing loudly is right"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use letterlock_jose::{Algorithm, PrivateKey, jws};
use letterlock_server::accounts::add_user;
use letterlock_server::clock::{Clock as _, SystemClock};
use letterlock_server::config::Config;
use letterlock_server::secrets::hash_secret;
use letterlock_store::{GrantRecord, RefreshTokenRecord, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const RESOURCE: &str = "imaps://mail.example.com";

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mode = arguments.first().cloned().unwrap_or_else(|| "refresh".into());
    let scratch = tempfile::tempdir().unwrap();
    let database = arguments
        .get(1)
        .filter(|url| !url.is_empty() && *url != "-")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", scratch.path().join("load.db").display()));
    let connections: usize = arguments.get(2).and_then(|text| text.parse().ok()).unwrap_or(50);
    let seconds: u64 = arguments.get(3).and_then(|text| text.parse().ok()).unwrap_or(10);

    let (_source_process, source_config) = sign_in_source();
    let server_runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let listener = server_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    let issuer = format!("http://{address}");
    let config = Config::parse(&format!(
        "issuer = \"{issuer}\"\n[dpop]\nrequire_nonce = false\n[[resources]]\nuri = \"{RESOURCE}\"\n\
         [[resource_servers]]\nclient_id = \"load\"\nsecret = \"load-secret-0123456789\"\nresources = [\"{RESOURCE}\"]\n\
         [limits]\ntoken_requests_per_minute_per_address = 4000000000\nconnections_per_address = 100000\n\
         [sign_in]\nattempts_per_minute_per_account = 4000000000\n\
         attempts_per_minute_per_account_everywhere = 4000000000\nattempts_per_minute_per_address = 4000000000\n\
         {source_config}\n{}",
        // More configuration to compare, e.g. "[lifetimes]\nrefresh_retry_window_seconds = 0".
        std::env::var("LOAD_EXTRA_CONFIG").unwrap_or_default()
    ))
    .unwrap();
    let state = server_runtime.block_on(async {
        let store = Store::connect(&database).await.unwrap();
        store.migrate().await.unwrap();
        letterlock_server::AppState::new(&config, store, Arc::new(SystemClock)).await.unwrap()
    });
    let router = letterlock_server::router(state.clone());
    // Every load connection comes from 127.0.0.1: the per-address limits are lifted above.
    server_runtime.spawn(letterlock_server::listen::serve_with(
        listener,
        router,
        None,
        letterlock_server::listen::ListenOptions::from_limits(&config.limits, Vec::new()),
        std::future::pending(),
    ));

    // The load side: one thread, so the server keeps the rest of the machine.
    let client_runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if mode == "sign-in" {
        let seeds = client_runtime.block_on(seed(&state, &issuer, REFRESH_BESIDE_SIGN_IN));
        let (sign_ins, refreshes) =
            client_runtime.block_on(sign_in_flood(address, &issuer, seeds, connections, seconds));
        let source = std::env::var("LOAD_SOURCE").unwrap_or_else(|_| "local".into());
        report(&format!("sign-in ({source})"), &database, connections, seconds, sign_ins);
        report("refresh beside it", &database, REFRESH_BESIDE_SIGN_IN, seconds, refreshes);
        return;
    }
    let seeds = client_runtime.block_on(seed(&state, &issuer, connections));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let latencies = client_runtime.block_on(async {
        let mut tasks = Vec::new();
        for seed in seeds {
            let issuer = issuer.clone();
            let mode = mode.clone();
            tasks.push(tokio::spawn(async move {
                drive(&mode, address, &issuer, seed, deadline).await
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    report(&mode, &database, connections, seconds, latencies);
}

/// The process behind `LOAD_SOURCE` (kept alive for the run), and the configuration naming it.
fn sign_in_source() -> (Box<dyn std::any::Any>, String) {
    use letterlock_test_support::{dovecot::Dovecot, ldap::Ldap};
    match std::env::var("LOAD_SOURCE").as_deref() {
        Ok("dovecot") => {
            let dovecot = Dovecot::with_passwd_file(&[(LOAD_ADDRESS, LOAD_PASSWORD)], "");
            let config = format!(
                "[[sign_in.sources]]\nkind = \"dovecot\"\nname = \"mail\"\nsocket = \"{}\"\n",
                dovecot.auth_client_socket().display()
            );
            (Box::new(dovecot), config)
        }
        Ok("ldap") => {
            let ldap = Ldap::start().expect("OpenLDAP's slapd is installed");
            ldap.add_user("load", LOAD_ADDRESS, LOAD_PASSWORD);
            let config = format!(
                "[[sign_in.sources]]\nkind = \"ldap\"\nname = \"directory\"\nurl = \"{}\"\n\
                 ca_file = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\nbase = \"{}\"\n",
                ldap.ldaps_url(),
                ldap.ca_file().display(),
                letterlock_test_support::ldap::SERVICE_DN,
                ldap.service_password_file().display(),
                letterlock_test_support::ldap::PEOPLE_BASE,
            );
            (Box::new(ldap), config)
        }
        _ => (Box::new(()), String::new()),
    }
}

/// The account every sign-in of the flood uses, whatever the source.
const LOAD_ADDRESS: &str = "load@example.com";

/// Refresh connections running beside a sign-in flood.
const REFRESH_BESIDE_SIGN_IN: usize = 8;

/// The local account `seed` makes, and its password.
const LOAD_PASSWORD: &str = "load test password";

/// Posts the sign-in form on `connections` connections and refreshes on the seeds' own, for
/// `seconds`: the latencies of each.
async fn sign_in_flood(
    address: std::net::SocketAddr,
    issuer: &str,
    seeds: Vec<Seed>,
    connections: usize,
    seconds: u64,
) -> (Vec<Duration>, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut sign_ins = Vec::new();
    for _ in 0..connections {
        sign_ins.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            // The sign-in form's token against login CSRF: any well-formed value, the same in
            // the cookie and the form.
            let login_token = letterlock_server::random::Randomness::system().token(24).unwrap();
            let headers = format!("Cookie: letterlock_login={login_token}\r\n");
            let body = form(&[
                ("address", LOAD_ADDRESS),
                ("password", LOAD_PASSWORD),
                ("login_csrf", &login_token),
            ]);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let (status, _) = post(&mut stream, "/login", &body, &headers).await;
                assert_eq!(status, 303, "the sign-in was refused");
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut refreshes = Vec::new();
    for seed in seeds {
        let issuer = issuer.to_owned();
        refreshes.push(tokio::spawn(async move {
            drive("refresh", address, &issuer, seed, deadline).await
        }));
    }
    let (mut signed, mut refreshed) = (Vec::new(), Vec::new());
    for task in sign_ins {
        signed.extend(task.await.unwrap());
    }
    for task in refreshes {
        refreshed.extend(task.await.unwrap());
    }
    (signed, refreshed)
}

struct Seed {
    client_id: String,
    key: PrivateKey,
    refresh_token: String,
    access_token: Option<String>,
}

/// One user; per connection a registered private_key_jwt client, a grant and a refresh token.
async fn seed(state: &letterlock_server::AppState, issuer: &str, connections: usize) -> Vec<Seed> {
    let now = SystemClock.now();
    let user = add_user(state.store(), LOAD_ADDRESS, LOAD_PASSWORD, now).await.unwrap();
    let random = SystemRandom::new();
    let mut seeds = Vec::new();
    for _ in 0..connections {
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let request = json!({
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk(None).to_json()]},
            "client_name": "load",
        });
        let registration = state
            .clients()
            .check_registration(request.as_object().unwrap().clone())
            .map_err(|error| format!("{error:?}"))
            .unwrap();
        let client_id =
            state.clients().seal(&registration, now).map_err(|error| format!("{error:?}")).unwrap();
        let grant = GrantRecord {
            id: state.random().id().unwrap(),
            user_id: user.id.clone(),
            client_id: client_id.clone(),
            device_name: "load".into(),
            client_name: "load".into(),
            software_id: None,
            software_version: None,
            vendor: None,
            scope: letterlock_protocol::ScopeSet::parse(
                "urn:ietf:params:oauth:scope:mail offline_access",
            )
            .unwrap(),
            resources: vec![RESOURCE.into()],
            redirect_uris: Vec::new(),
            created_at: now,
            last_used_at: now,
            last_address: None,
            revoked_at: None,
        };
        state.store().insert_grant(&grant).await.unwrap();
        let refresh_token = state.random().token(32).unwrap();
        state
            .store()
            .insert_refresh_token(&RefreshTokenRecord {
                hash: hash_secret(&refresh_token),
                grant_id: grant.id,
                jkt: None,
                created_at: now,
                expires_at: now + 86_400,
                rotated_at: None,
                replaces: None,
                retry: None,
            })
            .await
            .unwrap();
        seeds.push(Seed { client_id, key, refresh_token, access_token: None });
    }
    let _ = issuer;
    seeds
}

fn assertion(seed: &Seed, issuer: &str) -> String {
    let now = SystemClock.now();
    let claims = json!({"iss": seed.client_id, "sub": seed.client_id, "aud": issuer, "exp": now + 60, "iat": now, "jti": letterlock_server::random::Randomness::system().id().unwrap()});
    jws::sign(&seed.key, None, "JWT", claims.as_object().unwrap(), &SystemRandom::new()).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn drive(
    mode: &str,
    address: std::net::SocketAddr,
    issuer: &str,
    mut seed: Seed,
    deadline: Instant,
) -> Vec<Duration> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut latencies = Vec::new();
    let bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    if mode == "introspect" {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &seed.refresh_token),
            ("client_assertion_type", bearer),
            ("client_assertion", &assertion(&seed, issuer)),
        ]);
        let (_, reply) = post(&mut stream, "/token", &body, "").await;
        seed.access_token = Some(reply["access_token"].as_str().unwrap().to_owned());
    }
    while Instant::now() < deadline {
        let started = Instant::now();
        match mode {
            "refresh" => {
                let body = form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &seed.refresh_token),
                    ("client_assertion_type", bearer),
                    ("client_assertion", &assertion(&seed, issuer)),
                ]);
                let (status, reply) = post(&mut stream, "/token", &body, "").await;
                assert_eq!(status, 200, "{reply}");
                seed.refresh_token = reply["refresh_token"].as_str().unwrap().to_owned();
            }
            _ => {
                let body = form(&[("token", seed.access_token.as_deref().unwrap())]);
                let (status, reply) = post(
                    &mut stream,
                    "/introspect",
                    &body,
                    "Authorization: Basic bG9hZDpsb2FkLXNlY3JldC0wMTIzNDU2Nzg5\r\n",
                )
                .await;
                assert_eq!((status, &reply["active"]), (200, &Value::Bool(true)), "{reply}");
            }
        }
        latencies.push(started.elapsed());
    }
    latencies
}

/// One HTTP/1.1 request on a kept-alive connection, with extra header lines (each ending in
/// CRLF); the answer's status and JSON body.
async fn post(stream: &mut TcpStream, path: &str, body: &str, headers: &str) -> (u16, Value) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
        let Some(head_end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap());
        if buffer.len() >= head_end + 4 + length {
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            let body = serde_json::from_slice(&buffer[head_end + 4..head_end + 4 + length])
                .unwrap_or(Value::Null);
            return (status, body);
        }
    }
}

fn report(
    mode: &str,
    database: &str,
    connections: usize,
    seconds: u64,
    mut latencies: Vec<Duration>,
) {
    latencies.sort();
    let percentile = |fraction: f64| {
        let index =
            ((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
    };
    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    println!(
        "{mode} on {backend}: {connections} connections, {seconds} s: {} requests, {:.0} requests/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        percentile(1.0),
    );
}
