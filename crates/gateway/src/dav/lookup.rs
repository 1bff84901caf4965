//! What the collections on a path are, as the back end says: a `PROPFIND` at depth 0 for each
//! collection's `resourcetype` (RFC 4918 §9.1), from the top down, remembered briefly in the
//! door's [`KindCache`](super::scopes::KindCache). The path rules themselves are in
//! [`scopes`](super::scopes).

use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};

use super::scopes::{self, DavPath, Kind, Location};
use super::{BackendUser, DavDoor, Refused, full};

/// How long the back end may take to say what a collection is.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest `PROPFIND` answer read when asking what a collection is.
const LOOKUP_ANSWER_BYTES: usize = 256 * 1024;
/// RFC 4918 §9.1: a `PROPFIND` for one property.
const PROPFIND_RESOURCETYPE: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\
    <propfind xmlns=\"DAV:\"><prop><resourcetype/></prop></propfind>";

impl DavDoor {
    /// Where `path` lies: asks the back end what each collection on it is, from the top down,
    /// until a calendar or an address book (or nothing) is found.
    /// At most `lookups` questions go to the back end (the rest is [`Kind::Unknown`]).
    pub(super) async fn locate(
        &self,
        user: &BackendUser,
        path: &DavPath,
        lookups: &mut usize,
    ) -> Result<Location, Refused> {
        if !self.scopes.asks_the_back_end() {
            return Ok(Location::Unknown);
        }
        let mut kinds = Vec::new();
        for count in 1..=path.len().min(scopes::MAX_WALK) {
            let kind = self.kind(user, path, count, lookups).await?;
            kinds.push(kind);
            if !Location::walk_on(kind) {
                break;
            }
        }
        Ok(Location::from_walk(&kinds, path.len()))
    }

    /// What the collection at the first `count` segments of `path` is, for `user`: a `PROPFIND`
    /// at depth 0 for its `resourcetype` (RFC 4918 §9.1), remembered briefly.
    async fn kind(
        &self,
        user: &BackendUser,
        path: &DavPath,
        count: usize,
        lookups: &mut usize,
    ) -> Result<Kind, Refused> {
        let key = path.decoded_prefix(count);
        let now = std::time::Instant::now();
        if let Some(kind) = self.kinds.get(&user.name, &key, now) {
            return Ok(kind);
        }
        let Some(left) = lookups.checked_sub(1) else { return Ok(Kind::Unknown) };
        *lookups = left;
        let uri: hyper::Uri = format!("{}{}", self.backend, path.raw_prefix(count))
            .parse()
            .map_err(|_| Refused::Path)?;
        let mut request = Request::new(full(Bytes::from_static(PROPFIND_RESOURCETYPE)));
        *request.method_mut() = Method::from_bytes(b"PROPFIND").map_err(|_| Refused::Backend)?;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert("depth", HeaderValue::from_static("0"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        headers.insert(self.user_header.clone(), user.header.clone());
        if let Some(host) = &self.host {
            headers.insert(header::HOST, host.clone());
        }
        let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, self.client.request(request)).await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::warn!(%error, backend = self.backend, "the DAV back end failed");
                return Err(Refused::Backend);
            }
            Err(_) => return Err(Refused::Backend),
        };
        let kind = match answer.status().as_u16() {
            207 => match Limited::new(answer.into_body(), LOOKUP_ANSWER_BYTES).collect().await {
                Ok(collected) => {
                    Kind::from_multistatus(&String::from_utf8_lossy(&collected.to_bytes()))
                }
                Err(_) => Kind::Unknown,
            },
            404 | 410 => Kind::Absent,
            _ => Kind::Unknown,
        };
        self.kinds.put(&user.name, &key, kind, now);
        Ok(kind)
    }
}
