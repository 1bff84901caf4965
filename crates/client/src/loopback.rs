//! The loopback redirect listener (RFC 8252 §7.3): `127.0.0.1` on a port the system picks, one
//! path, reading only the request line of what the browser sends.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Error;

/// The longest request head the listener reads.
const MAX_HEAD: usize = 16 * 1024;
/// The redirect path.
const PATH: &str = "/callback";

/// A bound listener waiting for one authorization response.
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    /// Binds `127.0.0.1:0` (never a name, never every interface).
    pub async fn bind() -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|error| Error::Authorization(format!("loopback listener: {error}")))?;
        let port = listener
            .local_addr()
            .map_err(|error| Error::Authorization(format!("loopback listener: {error}")))?
            .port();
        Ok(Self { listener, port })
    }

    /// The redirect URI for this authorization.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// Waits up to `limit` for the answer to this authorization: a request to the redirect path
    /// that carries `state`, whose query parameters it returns. Other requests get 404 (a
    /// favicon) or 400 (a callback with another or no `state`) and are not the answer: any
    /// local program or web page can send the browser here, and a wrong guess must not end the
    /// sign-in (RFC 6749 §10.12).
    pub async fn wait(
        self,
        state: &str,
        limit: Duration,
    ) -> Result<HashMap<String, String>, Error> {
        let wait = async {
            loop {
                let (mut stream, _) =
                    self.listener.accept().await.map_err(|error| {
                        Error::Authorization(format!("loopback listener: {error}"))
                    })?;
                let head =
                    match tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream))
                        .await
                    {
                        Ok(Ok(head)) => head,
                        _ => continue,
                    };
                match parse_request_line(&head) {
                    Some(parameters)
                        if parameters.get("state").is_some_and(|sent| {
                            aws_lc_rs::constant_time::verify_slices_are_equal(
                                sent.as_bytes(),
                                state.as_bytes(),
                            )
                            .is_ok()
                        }) =>
                    {
                        let page = if parameters.contains_key("code") {
                            "You are signed in. You can close this window and go back to your mail program."
                        } else {
                            "Sign-in did not complete. Go back to your mail program for details."
                        };
                        respond(&mut stream, "200 OK", page).await;
                        return Ok(parameters);
                    }
                    Some(_) => {
                        let page = "This is not the answer to the sign-in in progress.";
                        respond(&mut stream, "400 Bad Request", page).await;
                    }
                    None => respond(&mut stream, "404 Not Found", "Not found.").await,
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| Error::Authorization("no answer from the browser in time".into()))?
    }
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(head)
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><meta charset=utf-8><title>Letterlock</title><p>{text}</p>");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The query parameters of `GET /callback?…`, or `None` for any other request.
pub fn parse_request_line(head: &[u8]) -> Option<HashMap<String, String>> {
    let line = head.split(|byte| *byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut words = line.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if method != "GET" || !version.starts_with("HTTP/1.") || words.next().is_some() {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != PATH {
        return None;
    }
    let mut parameters = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        // A repeated parameter is an attack or a bug; the response is refused.
        if parameters.insert(name.into_owned(), value.into_owned()).is_some() {
            return Some(HashMap::from([("error".to_owned(), "invalid_request".to_owned())]));
        }
    }
    Some(parameters)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_the_callback_is_an_answer() {
        let answer = parse_request_line(
            b"GET /callback?code=abc&state=x%20y&iss=https%3A%2F%2Fa HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        assert_eq!(answer["code"], "abc");
        assert_eq!(answer["state"], "x y");
        assert_eq!(answer["iss"], "https://a");
        assert!(parse_request_line(b"GET /favicon.ico HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_request_line(b"POST /callback?code=a HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_request_line(b"GET /callbackx?code=a HTTP/1.1\r\n\r\n").is_none());
        let twice = parse_request_line(b"GET /callback?code=a&code=b HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(twice.get("code"), None);
        assert_eq!(twice["error"], "invalid_request");
    }

    #[tokio::test]
    async fn the_listener_answers_the_browser() {
        let listener = Listener::bind().await.unwrap();
        let uri = listener.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:"));
        let port: u16 =
            uri.trim_start_matches("http://127.0.0.1:").trim_end_matches(PATH).parse().unwrap();
        let browser = tokio::spawn(async move {
            let mut favicon = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            favicon.write_all(b"GET /favicon.ico HTTP/1.1\r\n\r\n").await.unwrap();
            let mut text = String::new();
            favicon.read_to_string(&mut text).await.unwrap();
            assert!(text.starts_with("HTTP/1.1 404"));
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.write_all(b"GET /callback?code=c1&state=s HTTP/1.1\r\n\r\n").await.unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).await.unwrap();
            text
        });
        let answer = listener.wait("s", Duration::from_secs(10)).await.unwrap();
        assert_eq!(answer["code"], "c1");
        assert!(browser.await.unwrap().contains("You are signed in"));
    }

    /// Issue 14 (finding 12 of the review): another program or a web page that sends the
    /// browser to the listener first, with its own code and a wrong or missing state, gets 400
    /// and does not end the sign-in; the real answer that follows is taken.
    #[tokio::test]
    async fn a_callback_with_another_state_does_not_end_the_wait() {
        let listener = Listener::bind().await.unwrap();
        let port = listener.port;
        let browser = tokio::spawn(async move {
            let mut answers = Vec::new();
            for request in [
                "GET /callback?code=evil&state=guess HTTP/1.1\r\n\r\n",
                "GET /callback?code=evil HTTP/1.1\r\n\r\n",
                "GET /callback?error=access_denied&state=s%20 HTTP/1.1\r\n\r\n",
                "GET /callback?code=c1&state=s HTTP/1.1\r\n\r\n",
            ] {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut text = String::new();
                stream.read_to_string(&mut text).await.unwrap();
                answers.push(text.lines().next().unwrap_or_default().to_owned());
            }
            answers
        });
        let answer = listener.wait("s", Duration::from_secs(10)).await.unwrap();
        assert_eq!(answer["code"], "c1");
        let answers = browser.await.unwrap();
        assert_eq!(answers[..3], ["HTTP/1.1 400 Bad Request"; 3]);
        assert_eq!(answers[3], "HTTP/1.1 200 OK");
    }

    proptest! {
        #[test]
        fn any_request_head_is_handled(head in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_request_line(&head);
        }

        #[test]
        fn callback_queries_round_trip(code in "[ -~]{0,60}", state in "[ -~]{0,60}") {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code).append_pair("state", &state).finish();
            let head = format!("GET /callback?{query} HTTP/1.1\r\n\r\n");
            let answer = parse_request_line(head.as_bytes()).unwrap();
            prop_assert_eq!(&answer["code"], &code);
            prop_assert_eq!(&answer["state"], &state);
        }
    }
}
