//! The HTTP front door: CardDAV and CalDAV (or any HTTP mail API, such as JMAP) behind OAuth.
//!
//! A request reaches the back end only after its token passed every check:
//!
//! 1. `/.well-known/oauth-protected-resource` (with RFC 9728 §3.1's path insertion) is answered
//!    here: the resource, its issuer, its scopes, how to present tokens.
//! 2. Without a token the answer is 401 with `WWW-Authenticate: Bearer resource_metadata=…` and
//!    `DPoP algs=…`, so a client that knows only this server finds the issuer (RFC 9728 §5).
//! 3. The token (RFC 6750 `Bearer`, or RFC 9449 `DPoP` with its proof) is checked by the
//!    [`Authority`](crate::authority::Authority) the mail doors share: signature, `iss`, `aud` =
//!    this resource, the scope the path needs, expiry, and the revocation feed.
//! 4. The request goes on with the client's `Authorization` and `DPoP` headers removed and the
//!    user in the configured header (Radicale's `X-Remote-User`); a client's own copy of that
//!    header is removed first. Bodies stream both ways; every method passes, and redirects
//!    (`/.well-known/caldav`) come back as the back end wrote them.
//!
//! Path rules are matched on the percent-decoded path, and paths with `.`, `..` or empty
//! segments are refused: otherwise `/ann/contacts/..%2Fcalendar/` would pass as contacts and be
//! served as a calendar.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use letterlock_jose::dpop::{self, SeenOnce};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authority::Refusal;
use crate::config::{DavConfig, TlsMode};
use crate::door::Shared;
use crate::stream::Stream;
use crate::{GatewayError, tls};

/// The algorithms DPoP proofs may use (those of [`letterlock_jose`]).
const DPOP_ALGS: &str = "ES256 EdDSA";
/// How long the back end may take to start answering.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(120);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// One `[[dav]]` front door.
pub struct DavDoor {
    config: DavConfig,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    client: Client<HttpConnector, Body>,
    /// `http://host:port` of the back end.
    backend: String,
    /// The scheme, host and port of the resource: DPoP proofs name URLs under it.
    origin: String,
    /// The resource's host (and port), for requests that name none (HTTP/2).
    host: Option<HeaderValue>,
    metadata_path: String,
    metadata_url: String,
    metadata: Bytes,
    user_header: HeaderName,
    rules: Vec<(Vec<String>, String)>,
    seen: SeenOnce,
}

impl std::fmt::Debug for DavDoor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DavDoor").field("resource", &self.config.resource).finish()
    }
}

/// A token as the request presents it.
enum Presented<'a> {
    /// No `Authorization`, or a scheme other than Bearer and DPoP (Basic, say).
    Nothing,
    Bearer(&'a str),
    Dpop(&'a str),
}

/// Why a request is refused, each answered in RFC 6750 / RFC 9449 form.
#[derive(Debug)]
enum Refused {
    /// 401 with the challenges and no error: the client should get a token.
    NoToken,
    /// 400 `invalid_request`.
    Request(String),
    /// 401 `invalid_token`.
    Token(String),
    /// 403 `insufficient_scope`.
    Scope(String),
    /// 401 `invalid_dpop_proof` (DPoP scheme).
    Proof(String),
    /// 400 for a path this door will not pass on.
    Path,
}

impl DavDoor {
    /// Prepares a door: its TLS, its back-end client, its metadata document.
    pub fn new(config: DavConfig, shared: Arc<Shared>) -> Result<Self, GatewayError> {
        config.validate()?;
        let acceptor = match (&config.certificate, &config.private_key, config.tls) {
            (Some(certificate), Some(key), TlsMode::Implicit) => Some(TlsAcceptor::from(
                tls::server_config(certificate, key, &[b"h2", b"http/1.1"])?,
            )),
            _ => None,
        };
        let resource = url::Url::parse(&config.resource)
            .map_err(|error| GatewayError::Config(format!("dav.resource: {error}")))?;
        let origin = resource.origin().ascii_serialization();
        let host = resource.host_str().and_then(|host| {
            let host = resource.port().map_or(host.to_owned(), |port| format!("{host}:{port}"));
            HeaderValue::from_str(&host).ok()
        });
        let metadata_path = metadata_path(&resource);
        let metadata_url = format!("{origin}{metadata_path}");
        let authority = &shared.authority;
        let metadata = json!({
            "resource": config.resource,
            "authorization_servers": [authority.issuer().as_str()],
            "scopes_supported": config.scopes,
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": DPOP_ALGS.split(' ').collect::<Vec<_>>(),
        });
        let backend = config.backend.trim_end_matches('/').to_owned();
        let user_header = HeaderName::from_bytes(config.user_header.as_bytes())
            .map_err(|error| GatewayError::Config(format!("dav.user_header: {error}")))?;
        let rules =
            config.paths.iter().map(|rule| (segments(&rule.prefix), rule.scope.clone())).collect();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            config,
            shared,
            acceptor,
            client,
            backend,
            origin,
            host,
            metadata_path,
            metadata_url,
            metadata: Bytes::from(metadata.to_string()),
            user_header,
            rules,
            seen: SeenOnce::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DavConfig {
        &self.config
    }

    /// Accepts connections until shutdown; open connections finish their requests.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let door = self.clone();
        let shared = self.shared.clone();
        shared
            .serve(listener, self.acceptor.clone(), move |stream, peer| {
                door.clone().connection(stream, peer)
            })
            .await;
    }

    async fn connection(self: Arc<Self>, stream: Stream, peer: SocketAddr) {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.login_timeout())
            .max_buf_size(self.config.max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.config.max_header_bytes).unwrap_or(u32::MAX));
        let door = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let door = door.clone();
            async move { Ok::<_, Infallible>(door.handle(request, peer).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = self.shared.shutting_down() => connection.as_mut().graceful_shutdown(),
        }
        let grace = Duration::from_secs(self.shared.settings.shutdown_grace_seconds.max(1));
        let _ = tokio::time::timeout(grace, connection).await;
    }

    /// Answers one request: metadata, a refusal, or the back end's answer.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if request.uri().path() == self.metadata_path {
            return self.metadata(request.method());
        }
        match self.authorize(&request) {
            Err(refused) => self.refusal(refused, peer),
            Ok(presented) => match self.check(&request, presented).await {
                Err(refused) => self.refusal(refused, peer),
                Ok(user) => self.forward(request, &user).await,
            },
        }
    }

    fn metadata(&self, method: &Method) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let mut response = Response::new(full(self.metadata.clone()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
        response
    }

    /// Reads the `Authorization` header.
    fn authorize<'a>(&self, request: &'a Request<Incoming>) -> Result<Presented<'a>, Refused> {
        let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else { return Ok(Presented::Nothing) };
        if values.next().is_some() {
            return Err(Refused::Request("more than one Authorization header".into()));
        }
        let value = value
            .to_str()
            .map_err(|_| Refused::Request("the Authorization header is not ASCII".into()))?;
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim_start_matches(' ');
        let presented = if scheme.eq_ignore_ascii_case("Bearer") {
            Presented::Bearer(credentials)
        } else if scheme.eq_ignore_ascii_case("DPoP") {
            Presented::Dpop(credentials)
        } else {
            return Ok(Presented::Nothing);
        };
        if !is_token68(credentials) {
            return Err(Refused::Request(format!("the {scheme} credentials are malformed")));
        }
        Ok(presented)
    }

    /// Checks the token and its proof for this request; returns the back-end user.
    async fn check(
        &self,
        request: &Request<Incoming>,
        presented: Presented<'_>,
    ) -> Result<String, Refused> {
        let (token, dpop) = match presented {
            Presented::Nothing => return Err(Refused::NoToken),
            Presented::Bearer(token) => (token, false),
            Presented::Dpop(token) => (token, true),
        };
        let path = request.uri().path();
        let scopes = self.scopes_for(path).ok_or(Refused::Path)?;
        let now = (self.shared.clock)();
        let claims =
            self.shared.authority.check(token, &self.config.resource, &scopes, now).await.map_err(
                |refusal| match refusal {
                    Refusal::Token(error) if error.status() == "insufficient_scope" => {
                        Refused::Scope(scopes.join(" "))
                    }
                    refusal => Refused::Token(refusal.to_string()),
                },
            )?;
        match (&claims.jkt, dpop) {
            (Some(_), false) => {
                return Err(Refused::Token(
                    "the token is bound to a DPoP key: present it with the DPoP scheme".into(),
                ));
            }
            (None, true) => {
                return Err(Refused::Token("the token is not bound to a DPoP key".into()));
            }
            (None, false) => {}
            (Some(jkt), true) => {
                let mut proofs = request.headers().get_all("dpop").iter();
                let proof = match (proofs.next(), proofs.next()) {
                    (Some(proof), None) => proof.to_str().unwrap_or(""),
                    _ => return Err(Refused::Proof("send exactly one DPoP header".into())),
                };
                let url = format!("{}{path}", self.origin);
                let proof =
                    dpop::verify_proof(proof, request.method().as_str(), &url, Some(token), now)
                        .map_err(Refused::Proof)?;
                if &proof.jkt != jkt {
                    return Err(Refused::Proof("the proof's key is not the token's".into()));
                }
                let (key, expires_at) = proof.replay_key();
                if !self.seen.first_use(&key, expires_at, now) {
                    return Err(Refused::Proof("the proof was used before".into()));
                }
            }
        }
        Ok(self.config.backend_user(&claims.subject))
    }

    /// The scopes a path needs (any one of them), or `None` for a path not passed on.
    fn scopes_for(&self, path: &str) -> Option<Vec<&str>> {
        path_scopes(&self.rules, &self.config.scopes, path)
    }

    /// Passes the request on as `user` and streams the answer back.
    async fn forward(&self, request: Request<Incoming>, user: &str) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.config.max_body_bytes) {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large\n");
        }
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
        parts.headers.remove(&self.user_header);
        let Ok(user) = HeaderValue::from_str(user) else {
            return text(StatusCode::FORBIDDEN, "the user name cannot be passed on\n");
        };
        parts.headers.insert(self.user_header.clone(), user);
        if !parts.headers.contains_key(header::HOST)
            && let Some(host) = &self.host
        {
            parts.headers.insert(header::HOST, host.clone());
        }
        let limit = usize::try_from(self.config.max_body_bytes).unwrap_or(usize::MAX);
        let body = if declared.is_some() || hyper::body::Body::is_end_stream(&body) {
            Limited::new(body, limit).boxed()
        } else {
            // A body of unknown length (chunked, or HTTP/2 without content-length) is gathered
            // first, within the limit: WSGI servers such as Radicale cannot read chunked bodies.
            match Limited::new(body, limit).collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    full(bytes)
                }
                Err(error) if caused_by_length_limit(error.as_ref()) => {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large\n");
                }
                Err(_) => return text(StatusCode::BAD_REQUEST, "the request body broke off\n"),
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

    /// A refusal with its `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9449 §7.1, RFC 9728
    /// §5.1).
    fn refusal(&self, refused: Refused, peer: SocketAddr) -> Response<Body> {
        tracing::debug!(%peer, ?refused, "DAV request refused");
        let metadata = format!("resource_metadata=\"{}\"", self.metadata_url);
        let algs = format!("algs=\"{DPOP_ALGS}\"");
        let (status, bearer, dpop, body) = match &refused {
            Refused::NoToken => (
                StatusCode::UNAUTHORIZED,
                metadata.clone(),
                format!("{algs}, {metadata}"),
                "a token is needed; see the resource metadata\n".to_owned(),
            ),
            Refused::Request(reason) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "error=\"invalid_request\", error_description=\"{}\", {metadata}",
                    quoted(reason)
                ),
                format!("{algs}, {metadata}"),
                format!("{reason}\n"),
            ),
            Refused::Token(reason) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "error=\"invalid_token\", error_description=\"{}\", {metadata}",
                    quoted(reason)
                ),
                format!("{algs}, {metadata}"),
                format!("{reason}\n"),
            ),
            Refused::Scope(scopes) => (
                StatusCode::FORBIDDEN,
                format!(
                    "error=\"insufficient_scope\", scope=\"{scopes}\", error_description=\"the token lacks the scope this path needs\", {metadata}"
                ),
                format!("{algs}, {metadata}"),
                format!("this path needs the scope {scopes}\n"),
            ),
            Refused::Proof(reason) => (
                StatusCode::UNAUTHORIZED,
                metadata.clone(),
                format!(
                    "error=\"invalid_dpop_proof\", error_description=\"{}\", {algs}, {metadata}",
                    quoted(reason)
                ),
                format!("{reason}\n"),
            ),
            Refused::Path => {
                return text(StatusCode::BAD_REQUEST, "this path is not passed on\n");
            }
        };
        let mut response = text(status, &body);
        let headers = response.headers_mut();
        for challenge in [format!("Bearer {bearer}"), format!("DPoP {dpop}")] {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// RFC 9728 §3.1: the well-known path, with the resource's own path (if any) appended.
fn metadata_path(resource: &url::Url) -> String {
    format!("/.well-known/oauth-protected-resource{}", resource.path().trim_end_matches('/'))
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never: Infallible| match never {}).boxed()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Text fit for a quoted-string: no quotes, backslashes or control characters.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '"' | '\\') && !c.is_control()).collect()
}

/// RFC 7235 token68: the syntax of a bearer token.
fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The headers of one hop (RFC 9110 §7.6.1), including those `Connection` names.
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

/// The scopes `path` needs under `rules` (prefix segments, `*` for any one segment), any one of
/// `default` when no rule matches; `None` for a path that must not be passed on (a broken
/// escape, `.` or `..` or empty segments after decoding, a backslash or NUL).
fn path_scopes<'a>(
    rules: &'a [(Vec<String>, String)],
    default: &'a [String],
    path: &str,
) -> Option<Vec<&'a str>> {
    let decoded = percent_decode(path)?;
    if !decoded.starts_with('/') || decoded.contains(['\\', '\0']) {
        return None;
    }
    let parts: Vec<&str> = decoded[1..].split('/').collect();
    // Only the last segment may be empty (a trailing slash).
    let (_, inner) = parts.split_last()?;
    if inner.iter().any(|part| part.is_empty())
        || parts.iter().any(|part| *part == "." || *part == "..")
    {
        return None;
    }
    for (prefix, scope) in rules {
        let matches = prefix.len() <= parts.len()
            && prefix
                .iter()
                .zip(&parts)
                .all(|(wanted, part)| (wanted == "*" && !part.is_empty()) || wanted == part);
        if matches {
            return Some(vec![scope.as_str()]);
        }
    }
    Some(default.iter().map(String::as_str).collect())
}

/// A configured prefix's segments.
fn segments(prefix: &str) -> Vec<String> {
    let decoded = percent_decode(prefix).unwrap_or_else(|| prefix.to_owned());
    let trimmed = decoded.trim_start_matches('/').trim_end_matches('/');
    trimmed.split('/').filter(|part| !part.is_empty()).map(str::to_owned).collect()
}

/// Percent-decodes a path; `None` if it is not UTF-8 after decoding or has a broken escape.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rules() -> Vec<(Vec<String>, String)> {
        vec![
            (segments("/*/contacts/"), "contacts".into()),
            (segments("/*/calendar"), "calendars".into()),
        ]
    }

    #[test]
    fn paths_pick_their_scope_or_are_refused() {
        let (rules, default) = (rules(), vec!["contacts".to_owned(), "calendars".to_owned()]);
        let scopes = |path: &str| path_scopes(&rules, &default, path);
        assert_eq!(scopes("/ann%40example.com/contacts/bob.vcf"), Some(vec!["contacts"]));
        assert_eq!(scopes("/ann/calendar"), Some(vec!["calendars"]));
        assert_eq!(scopes("/ann/calendar/x.ics"), Some(vec!["calendars"]));
        assert_eq!(scopes("/ann/calendars/"), Some(vec!["contacts", "calendars"]));
        assert_eq!(scopes("/"), Some(vec!["contacts", "calendars"]));
        assert_eq!(scopes("/ann/"), Some(vec!["contacts", "calendars"]));
        for refused in [
            "/ann/contacts/..%2Fcalendar/",
            "/ann/contacts/%2e%2e/calendar/",
            "/ann/./calendar/",
            "/ann//calendar/",
            "//calendar/",
            "/ann/%ZZ",
            "/ann/%",
            "/ann/%FF",
            "/ann/a%5Cb",
            "/ann/a%00b",
            "relative",
        ] {
            assert_eq!(scopes(refused), None, "{refused}");
        }
    }

    #[test]
    fn metadata_path_inserts_the_resource_path() {
        let path = |resource: &str| metadata_path(&url::Url::parse(resource).unwrap());
        assert_eq!(path("https://dav.example.com"), "/.well-known/oauth-protected-resource");
        assert_eq!(path("https://dav.example.com/"), "/.well-known/oauth-protected-resource");
        assert_eq!(path("https://example.com/dav/"), "/.well-known/oauth-protected-resource/dav");
        assert_eq!(path("https://example.com/a/b"), "/.well-known/oauth-protected-resource/a/b");
    }

    #[test]
    fn bearer_credentials_are_token68() {
        assert!(is_token68("eyJ.a-b_c~d+e/f=="));
        for bad in ["", "=", "a b", "a\"b", "a,b", "é"] {
            assert!(!is_token68(bad), "{bad}");
        }
    }

    proptest! {
        /// Whatever the path, the decision never panics, and a path whose decoded form has a
        /// dot segment never gets through (it could be normalised into another collection).
        #[test]
        fn no_path_escapes_its_rule(path in "(/|[a-z]|%2[eEfF]|%[0-9a-fA-F]{2}|\\.|%){0,40}") {
            let (rules, default) = (rules(), vec!["contacts".to_owned()]);
            let decision = path_scopes(&rules, &default, &path);
            if let Some(decoded) = percent_decode(&path) {
                if decoded.split('/').any(|part| part == "." || part == "..") {
                    prop_assert!(decision.is_none());
                }
            } else {
                prop_assert!(decision.is_none());
            }
        }

        #[test]
        fn token68_never_panics(text in ".{0,64}") {
            let _ = is_token68(&text);
        }
    }
}
