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
//!    this resource, one of the door's scopes, expiry, and the revocation feed.
//! 4. The scope the request needs follows what the collection it touches is, as the back end
//!    says ([`scopes`]): an address book needs contacts, a calendar calendars, whatever their
//!    names; a MOVE's or COPY's `Destination` is checked the same way.
//! 5. The request goes on with the client's `Authorization` and `DPoP` headers removed and the
//!    user in the configured header (Radicale's `X-Remote-User`); every client header a back end
//!    could take for the user or for its proxy's word (`X_Remote_User`, `Forwarded`,
//!    `X-Forwarded-*`, ...) is removed first, and `X-Forwarded-For` names the client's address.
//!    Bodies of known length stream; others are gathered within a budget ([`body`]). Every
//!    method passes, and redirects (`/.well-known/caldav`) come back as the back end wrote them.
//!
//! Paths with `.`, `..` or empty segments are refused: otherwise `/ann/contacts/..%2Fcalendar/`
//! would be checked as the address book and served as a calendar.
//!
//! This module holds the door and its request pipeline (metadata, token, path and scope checks);
//! [`listen`] the connections, [`lookup`] the questions to the back end about collections,
//! [`forward`] the passing on, [`refusal`] the answers to refused requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use letterlock_jose::dpop::{self, SeenOnce};
use serde_json::json;
use tokio_rustls::TlsAcceptor;

use self::body::{BodyError, Budget, Gathered};
use self::scopes::{Access, BodySays, DavPath, KindCache, Location, Scopes};
use crate::authority::Refusal;
use crate::config::{DavConfig, TlsMode};
use crate::door::Shared;
use crate::{GatewayError, tls};

mod body;
mod forward;
mod idle;
mod listen;
mod lookup;
mod refusal;
mod scopes;

/// The algorithms DPoP proofs may use (those of [`letterlock_jose`]).
const DPOP_ALGS: &str = "ES256 EdDSA";
/// The most questions one request may put to the back end about what collections are (a
/// multiget may name items in many); beyond, the request needs every scope.
const MAX_LOOKUPS: usize = 32;

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
    scopes: Scopes,
    kinds: KindCache,
    budget: Budget,
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

/// The user the back end hears of: the name, and the name as a header value.
struct BackendUser {
    name: String,
    header: HeaderValue,
}

/// A request body on its way to the back end.
enum Outgoing {
    /// Of known length (or empty): streamed.
    Stream(Incoming),
    /// Gathered whole first.
    Gathered(Gathered),
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
    /// 502: a `Destination` on another server (RFC 4918 §9.9.4).
    Elsewhere,
    /// 403: a user name that cannot be a header value.
    User,
    /// The back end did not say what a collection is: 502.
    Backend,
    /// A body that could not be gathered.
    Body(BodyError),
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
        let rules: Vec<(String, String)> =
            config.paths.iter().map(|rule| (rule.prefix.clone(), rule.scope.clone())).collect();
        let scopes = Scopes::new(&config.scopes, &rules);
        let spool = config.spool_directory.clone().unwrap_or_else(std::env::temp_dir);
        let budget = Budget::new(spool, config.max_spool_bytes, shared.login_timeout());
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
            scopes,
            kinds: KindCache::default(),
            budget,
            seen: SeenOnce::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DavConfig {
        &self.config
    }

    /// Answers one request: metadata, a refusal, or the back end's answer.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if request.uri().path() == self.metadata_path {
            return self.metadata(request.method());
        }
        match self.pass(request, peer).await {
            Ok(response) => response,
            Err(refused) => self.refusal(refused, peer),
        }
    }

    /// Checks a request and passes it on.
    async fn pass(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Refused> {
        let presented = self.authorize(&request)?;
        let path = DavPath::parse(request.uri().path()).ok_or(Refused::Path)?;
        let destination = self.destination(&request)?;
        let (granted, user) = self.check(&request, presented).await?;
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.config.max_body_bytes) {
            return Err(Refused::Body(BodyError::TooLarge));
        }
        let method = parts.method.as_str();
        // MKCOL and PROPPATCH bodies say what they make or change, REPORT bodies which other
        // resources they want: read them first.
        let (body, says, references) = if matches!(method, "MKCOL" | "PROPPATCH" | "REPORT") {
            let limit = self.config.max_body_bytes.min(body::MEMORY_PER_BODY as u64);
            let gathered = self.budget.gather(body, limit, false).await.map_err(Refused::Body)?;
            let encoded = parts.headers.contains_key(header::CONTENT_ENCODING);
            let bytes = gathered.bytes().unwrap_or_default();
            let references = if method == "REPORT" {
                scopes::references(&bytes, encoded)
            } else {
                Some(Vec::new())
            };
            (Outgoing::Gathered(gathered), Some(BodySays::read(&bytes, encoded)), references)
        } else {
            (Outgoing::Stream(body), None, Some(Vec::new()))
        };
        let mut lookups = MAX_LOOKUPS;
        let location = self.locate(&user, &path, &mut lookups).await?;
        let mut elsewhere = Vec::new();
        if let Some(destination) = &destination {
            elsewhere.push(self.locate(&user, destination, &mut lookups).await?);
        }
        match references {
            Some(mut references) => {
                references.sort_unstable();
                references.dedup();
                for reference in references {
                    elsewhere.push(match self.reference(&reference) {
                        Some(place) => self.locate(&user, &place, &mut lookups).await?,
                        None => Location::Unknown,
                    });
                }
            }
            // A body whose hrefs the door cannot read for certain could name anything.
            None => elsewhere.push(Location::Unknown),
        }
        let depth = parts.headers.get("depth").and_then(|depth| depth.to_str().ok());
        let access =
            Access { method, depth, path: &path, location, elsewhere: &elsewhere, body: says };
        let needed = self.scopes.needed(&access);
        if !needed.iter().all(|scope| granted.contains(scope)) {
            return Err(Refused::Scope(needed.into_iter().collect::<Vec<_>>().join(" ")));
        }
        // What may change what a collection is makes the door forget what it knew there.
        let changes = match method {
            "PUT" => !matches!(location, Location::Inside { below: 1.., .. }),
            other => matches!(other, "DELETE" | "MOVE" | "MKCOL" | "MKCALENDAR" | "PROPPATCH"),
        };
        let body = match body {
            Outgoing::Stream(body)
                if declared.is_none() && !hyper::body::Body::is_end_stream(&body) =>
            {
                // A body of unknown length (chunked, or HTTP/2 without content-length): WSGI
                // servers such as Radicale cannot read one, so it is gathered, spooled if large.
                let gathered = self.budget.gather(body, self.config.max_body_bytes, true).await;
                Outgoing::Gathered(gathered.map_err(Refused::Body)?)
            }
            body => body,
        };
        let response = self.forward(parts, body, &user.header, peer).await;
        if changes {
            self.kinds.forget(&user.name, &path.decoded_prefix(path.len()));
            if let Some(destination) = &destination {
                self.kinds.forget(&user.name, &destination.decoded_prefix(destination.len()));
            }
        }
        Ok(response)
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

    /// The `Destination` of a MOVE or COPY (RFC 4918 §10.3), which must be on this resource's
    /// origin and pass like a request path.
    fn destination(&self, request: &Request<Incoming>) -> Result<Option<DavPath>, Refused> {
        if !matches!(request.method().as_str(), "MOVE" | "COPY") {
            return Ok(None);
        }
        let mut values = request.headers().get_all("destination").iter();
        let value = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().map_err(|_| Refused::Path)?,
            _ => return Err(Refused::Request("send exactly one Destination header".into())),
        };
        // RFC 4918 §10.3: an absolute URI or an absolute path.
        if !value.starts_with('/') && !value.contains("://") {
            return Err(Refused::Path);
        }
        let path = self.local_path(value).ok_or(Refused::Elsewhere)?;
        DavPath::parse(path).map(Some).ok_or(Refused::Path)
    }

    /// Where a REPORT's `DAV:href` points, if the door can tell: an absolute path or a URL on
    /// this resource's origin whose path passes.
    fn reference(&self, href: &str) -> Option<DavPath> {
        DavPath::parse(self.local_path(href)?)
    }

    /// The path of an absolute path or of a URL on this resource's origin, as written (a URL
    /// parser would resolve `..` before the door could refuse it); `None` for anything else.
    fn local_path<'a>(&self, reference: &'a str) -> Option<&'a str> {
        let path = if reference.starts_with('/') {
            reference
        } else {
            let (scheme, rest) = reference.split_once("://")?;
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let origin = url::Url::parse(&format!("{scheme}://{}/", &rest[..end]))
                .ok()?
                .origin()
                .ascii_serialization();
            if origin != self.origin {
                return None;
            }
            &rest[end..]
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        Some(if path.is_empty() { "/" } else { path })
    }

    /// Checks the token and its proof for this request; returns its scopes and the back-end
    /// user.
    async fn check(
        &self,
        request: &Request<Incoming>,
        presented: Presented<'_>,
    ) -> Result<(Vec<String>, BackendUser), Refused> {
        let (token, dpop) = match presented {
            Presented::Nothing => return Err(Refused::NoToken),
            Presented::Bearer(token) => (token, false),
            Presented::Dpop(token) => (token, true),
        };
        let path = request.uri().path();
        let any_of: Vec<&str> = self.scopes.all().iter().map(String::as_str).collect();
        let now = (self.shared.clock)();
        let claims =
            self.shared.authority.check(token, &self.config.resource, &any_of, now).await.map_err(
                |refusal| match refusal {
                    Refusal::Token(error) if error.status() == "insufficient_scope" => {
                        Refused::Scope(any_of.join(" "))
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
        let name = self.config.backend_user(&claims.subject);
        // RFC 9110 §5.5: a field value may carry any octet but controls, so an address that is
        // not ASCII (EAI, RFC 6530) goes as its UTF-8 bytes.
        let header = HeaderValue::from_bytes(name.as_bytes()).map_err(|_| Refused::User)?;
        Ok((claims.scopes, BackendUser { name, header }))
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

/// RFC 7235 token68: the syntax of a bearer token.
fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The headers of one hop (RFC 9110 §7.6.1), including those `Connection` names.
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
        #[test]
        fn token68_never_panics(text in ".{0,64}") {
            let _ = is_token68(&text);
        }
    }
}
