//! Forwarding to the back end: the request goes on without the client's `Authorization`,
//! `DPoP`, hop-by-hop (RFC 9110 §7.6.1) and proxy headers, with the user in the configured
//! header and `X-Forwarded-For` naming the client; the answer streams back without its
//! hop-by-hop headers.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{Body, BoxError, DavDoor, Outgoing, text};

/// How long the back end may take to start answering.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(120);
/// Headers a back end may believe of the proxy in front of it, compared after folding (lower
/// case, `_` to `-`, as CGI and WSGI servers do): who the user is, who the client is, which
/// path or method was "really" asked. Only the door says such things; a client's are removed.
const PROXY_HEADERS: [&str; 15] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "remote-user",
    "x-remote-user",
    "x-script-name",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
/// Header name prefixes of the same kind (`X-Forwarded-For`, `X-Forwarded-User`, oauth2-proxy's
/// `X-Auth-Request-User`).
const PROXY_HEADER_PREFIXES: [&str; 2] = ["x-forwarded-", "x-auth-request-"];

impl DavDoor {
    /// Passes the request on as `user` and streams the answer back.
    pub(super) async fn forward(
        &self,
        mut parts: hyper::http::request::Parts,
        body: Outgoing,
        user: &HeaderValue,
        peer: SocketAddr,
    ) -> Response<Body> {
        let target = parts.uri.path_and_query().map_or("/", |target| target.as_str());
        parts.uri = match format!("{}{target}", self.backend).parse() {
            Ok(uri) => uri,
            Err(_) => return text(StatusCode::BAD_REQUEST, "unusable request target\n"),
        };
        parts.version = hyper::Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        for name in [header::AUTHORIZATION, HeaderName::from_static("dpop")] {
            parts.headers.remove(name);
        }
        remove_proxy_headers(&mut parts.headers, self.user_header.as_str());
        parts.headers.insert(self.user_header.clone(), user.clone());
        // The one thing about the client the door can vouch for.
        if let Ok(address) = HeaderValue::from_str(&peer.ip().to_canonical().to_string()) {
            parts.headers.insert(HeaderName::from_static("x-forwarded-for"), address);
        }
        if !parts.headers.contains_key(header::HOST)
            && let Some(host) = &self.host
        {
            parts.headers.insert(header::HOST, host.clone());
        }
        let limit = usize::try_from(self.config.max_body_bytes).unwrap_or(usize::MAX);
        let body = match body {
            Outgoing::Stream(body) => Limited::new(body, limit).boxed(),
            Outgoing::Gathered(gathered) => {
                parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(gathered.len()));
                gathered.into_body()
            }
        };
        let sent = tokio::time::timeout(
            BACKEND_TIMEOUT,
            self.client.request(Request::from_parts(parts, body)),
        )
        .await;
        match sent {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(
                    parts,
                    body.map_err(|error| Box::new(error) as BoxError).boxed(),
                )
            }
            Ok(Err(error)) if caused_by_length_limit(&error) => {
                text(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large\n")
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, backend = self.backend, "the DAV back end failed");
                text(StatusCode::BAD_GATEWAY, "the server behind this one did not answer\n")
            }
            Err(_) => text(StatusCode::GATEWAY_TIMEOUT, "the server behind this one is too slow\n"),
        }
    }
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn caused_by_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Removes what only the door may tell the back end: every header whose name folds (lower
/// case, `_` to `-`) to `user_header` or to one of [`PROXY_HEADERS`] or their prefixes. hyper's
/// names are lower case already; CGI and WSGI servers turn `-` and `_` alike into `_`.
fn remove_proxy_headers(headers: &mut HeaderMap, user_header: &str) {
    let user_header = user_header.to_ascii_lowercase();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let folded = name.as_str().replace('_', "-");
            folded == user_header
                || PROXY_HEADERS.contains(&folded.as_str())
                || PROXY_HEADER_PREFIXES.iter().any(|prefix| folded.starts_with(prefix))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_a_back_end_believes_of_its_proxy_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x_remote_user", "bob"),
            ("x-remote_user", "bob"),
            ("x-remote-user", "bob"),
            ("remote-user", "bob"),
            ("forwarded", "for=1.2.3.4;host=evil"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x_forwarded_host", "evil"),
            ("x-real-ip", "1.2.3.4"),
            ("x-script-name", "/evil"),
            ("x-auth-request-user", "bob"),
            ("depth", "1"),
            ("destination", "/ann/x"),
        ] {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        remove_proxy_headers(&mut headers, "X-Remote-User");
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["depth", "destination"]);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x_user"), HeaderValue::from_static("bob"));
        remove_proxy_headers(&mut headers, "X-User");
        assert!(headers.is_empty());
    }
}
