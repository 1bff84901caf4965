//! Load for an IMAP server that takes OAUTHBEARER: Letterlock's front door, or Dovecot validating
//! tokens itself. Used by `scripts/bench-gateway`; figures in docs/BENCHMARKS.md.
//!
//! ```text
//! imap_load auth  ADDRESS USER TOKEN SECONDS CONNECTIONS  # connect, AUTHENTICATE, LOGOUT, repeat
//! imap_load noop  ADDRESS USER TOKEN COUNT                # one session, COUNT NOOPs in turn
//! imap_load idle  ADDRESS USER TOKEN SESSIONS             # open and hold authenticated sessions
//! imap_load fetch ADDRESS USER TOKEN ROUNDS               # FETCH 1 BODY.PEEK[] ROUNDS times
//! ```
//! Prints one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a load tool")]

use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

type Reader = BufReader<TcpStream>;

async fn line(reader: &mut Reader) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(!line.is_empty(), "the server closed the connection");
    line
}

async fn until_tagged(reader: &mut Reader, tag: &str) -> String {
    loop {
        let line = line(reader).await;
        if line.starts_with(tag) {
            return line;
        }
    }
}

async fn login(address: &str, user: &str, token: &str) -> Reader {
    let stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream);
    line(&mut reader).await;
    let response = format!("n,a={user},\x01auth=Bearer {token}\x01\x01");
    let encoded = base64::engine::general_purpose::STANDARD.encode(response);
    reader
        .get_mut()
        .write_all(format!("a AUTHENTICATE OAUTHBEARER {encoded}\r\n").as_bytes())
        .await
        .unwrap();
    let answer = until_tagged(&mut reader, "a ").await;
    assert!(answer.starts_with("a OK"), "login failed: {answer}");
    reader
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, address, user, token) = (&args[0], &args[1], &args[2], &args[3]);
    let number: usize = args[4].parse().unwrap();
    match mode.as_str() {
        "auth" => {
            let connections: usize = args[5].parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(number as u64);
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (address, user, token) = (address.clone(), user.clone(), token.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let mut reader = login(&address, &user, &token).await;
                        reader.get_mut().write_all(b"z LOGOUT\r\n").await.unwrap();
                        until_tagged(&mut reader, "z ").await;
                        latencies.push(started.elapsed());
                    }
                    latencies
                }));
            }
            let started = Instant::now();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let elapsed = started.elapsed().as_secs_f64();
            latencies.sort();
            println!(
                "{{\"logins\":{},\"per_second\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
                latencies.len(),
                latencies.len() as f64 / elapsed,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
        }
        "noop" => {
            let mut reader = login(address, user, token).await;
            let mut latencies = Vec::with_capacity(number);
            for index in 0..number {
                let tag = format!("n{index} ");
                let started = Instant::now();
                reader.get_mut().write_all(format!("{tag}NOOP\r\n").as_bytes()).await.unwrap();
                until_tagged(&mut reader, &tag).await;
                latencies.push(started.elapsed());
            }
            latencies.sort();
            println!(
                "{{\"commands\":{number},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
        }
        "idle" => {
            let mut sessions = Vec::with_capacity(number);
            for _ in 0..number {
                sessions.push(login(address, user, token).await);
            }
            println!("{{\"sessions\":{number}}}");
            // Hold them until stdin closes.
            let _ = tokio::task::spawn_blocking(|| {
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
            })
            .await;
            drop(sessions);
        }
        "fetch" => {
            let mut reader = login(address, user, token).await;
            reader.get_mut().write_all(b"s SELECT INBOX\r\n").await.unwrap();
            until_tagged(&mut reader, "s ").await;
            let mut bytes = 0usize;
            let started = Instant::now();
            for round in 0..number {
                let tag = format!("f{round} ");
                reader
                    .get_mut()
                    .write_all(format!("{tag}FETCH 1 BODY.PEEK[]\r\n").as_bytes())
                    .await
                    .unwrap();
                let first = line(&mut reader).await;
                let size: usize = first
                    .trim_end()
                    .rsplit_once('{')
                    .and_then(|(_, size)| size.trim_end_matches('}').parse().ok())
                    .unwrap_or_else(|| panic!("no literal in {first}"));
                let mut body = vec![0u8; size];
                reader.read_exact(&mut body).await.unwrap();
                bytes += size;
                until_tagged(&mut reader, &tag).await;
            }
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "{{\"bytes\":{bytes},\"seconds\":{elapsed:.3},\"mib_per_second\":{:.0}}}",
                bytes as f64 / elapsed / 1024.0 / 1024.0
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
