//! What the front doors know of the authorization server: its signing keys (the JWKS, cached and
//! refetched on an unknown `kid`), the grants and access tokens it has revoked (from its
//! revocation feed), and the live sessions of each grant and token, so that a revocation closes
//! them.
//!
//! Token checks are local: an ES256 verification costs about 50 µs, so a token that verified
//! once is remembered (by its SHA-256) until it expires; its grant and its `jti` are still
//! checked against the revocations on every use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use letterlock_jose::access::{AccessTokenClaims, AccessTokenVerifier, TokenError};
use letterlock_protocol::issuer::Issuer;
use serde_json::Value;
use tokio::sync::Notify;

/// Tokens remembered after a successful check, at most.
const VERIFIED_CACHE_SIZE: usize = 50_000;
/// The JWKS is refetched for an unknown `kid` at most this often.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Revocations are remembered this long (longer than any access token lives).
const REVOCATION_MEMORY_SECONDS: i64 = 2 * 24 * 3600;
/// The largest issuer document accepted.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why the issuer could not be reached or understood.
#[derive(Debug, thiserror::Error)]
#[error("issuer: {0}")]
pub struct IssuerError(pub String);

/// Why a token was refused, or the back end could not be told about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token itself (signature, claims, scope).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Its grant was revoked (the device was removed on the devices page).
    #[error("the token's grant was revoked")]
    Revoked,
    /// The token itself was revoked (RFC 7009), by its `jti`.
    #[error("the token was revoked")]
    TokenRevoked,
}

impl Refusal {
    /// The RFC 7628 / RFC 6750 status.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Token(error) => error.status(),
            Self::Revoked | Self::TokenRevoked => "invalid_token",
        }
    }
}

/// One resource a front door serves, and the verifier for its tokens.
#[derive(Debug, Clone)]
pub struct Audience {
    /// The resource identifier.
    pub resource: String,
    /// Whether `typ: JWT` is accepted besides `at+jwt`.
    pub accept_jwt_typ: bool,
}

/// One entry of the issuer's revocation feed: a grant, or one access token of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The grant revoked, or the grant of the token revoked.
    pub grant_id: String,
    /// The `jti` of the one access token revoked (RFC 7009); `None` revokes the whole grant.
    pub jti: Option<String>,
    /// When, in seconds since the epoch.
    pub revoked_at: i64,
}

/// What a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The session's grant: the device was removed.
    Grant,
    /// The session's access token alone; the device may log in again with a fresh one.
    Token,
}

/// A live session: its id, the `jti` of the token that opened it, and what wakes it.
struct LiveSession {
    id: u64,
    jti: String,
    notify: Arc<Notify>,
}

/// The live sessions of each grant.
type SessionMap = HashMap<String, Vec<LiveSession>>;

struct Keys {
    verifiers: HashMap<String, AccessTokenVerifier>,
    fetched_at: Instant,
}

/// The issuer as the front doors see it. Shared by all front doors of a gateway.
pub struct Authority {
    issuer: Issuer,
    http: reqwest::Client,
    audiences: Vec<Audience>,
    keys: RwLock<Keys>,
    refetch: tokio::sync::Mutex<()>,
    verified: Mutex<HashMap<[u8; 32], AccessTokenClaims>>,
    revoked: Mutex<HashMap<String, i64>>,
    revoked_tokens: Mutex<HashMap<String, i64>>,
    sessions: Mutex<SessionMap>,
    next_session: AtomicU64,
    feed_credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Authority").field("issuer", &self.issuer.as_str()).finish()
    }
}

impl Authority {
    /// An authority that knows no keys, revocations or sessions yet (its keys due for a fetch).
    fn unconnected(
        issuer: Issuer,
        http: reqwest::Client,
        audiences: Vec<Audience>,
        feed_credentials: Option<(String, String)>,
    ) -> Self {
        Self {
            issuer,
            http,
            audiences,
            keys: RwLock::new(Keys {
                verifiers: HashMap::new(),
                fetched_at: Instant::now() - JWKS_REFETCH_INTERVAL,
            }),
            refetch: tokio::sync::Mutex::new(()),
            verified: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashMap::new()),
            revoked_tokens: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            feed_credentials,
        }
    }

    /// Reads the issuer's metadata and keys. `feed_credentials` (a resource server's client id
    /// and secret) let [`Authority::follow_revocations`] read the revocation feed.
    pub async fn connect(
        issuer: Issuer,
        http: reqwest::Client,
        audiences: Vec<Audience>,
        feed_credentials: Option<(String, String)>,
    ) -> Result<Arc<Self>, IssuerError> {
        let authority = Arc::new(Self::unconnected(issuer, http, audiences, feed_credentials));
        // Inside `letterlock serve` the issuer may be a moment from answering: try for a while.
        let mut attempts = 0;
        while let Err(error) = authority.fetch_keys().await {
            attempts += 1;
            if attempts >= 20 {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(authority)
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The metadata URL named in RFC 7628 failure challenges (`openid-configuration`).
    pub fn discovery_url(&self) -> String {
        self.issuer.openid_configuration_url()
    }

    async fn get_json(&self, url: &str, authenticate: bool) -> Result<Value, IssuerError> {
        let mut request = self.http.get(url);
        if authenticate && let Some((id, secret)) = &self.feed_credentials {
            request = request.basic_auth(id, Some(secret));
        }
        let response =
            request.send().await.map_err(|error| IssuerError(format!("{url}: {error}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(IssuerError(format!("{url}: HTTP {status}")));
        }
        if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
            return Err(IssuerError(format!("{url}: the document is too large")));
        }
        let body =
            response.bytes().await.map_err(|error| IssuerError(format!("{url}: {error}")))?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(IssuerError(format!("{url}: the document is too large")));
        }
        serde_json::from_slice(&body).map_err(|error| IssuerError(format!("{url}: {error}")))
    }

    /// Fetches the metadata and the JWKS, and rebuilds the verifiers.
    async fn fetch_keys(&self) -> Result<(), IssuerError> {
        let metadata_url = self.issuer.authorization_server_metadata_url();
        let metadata = self.get_json(&metadata_url, false).await?;
        if metadata.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(IssuerError(format!(
                "{metadata_url} names another issuer than {}",
                self.issuer
            )));
        }
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| IssuerError(format!("{metadata_url} has no jwks_uri")))?;
        let jwks = self.get_json(jwks_uri, false).await?;
        let verifiers: HashMap<String, AccessTokenVerifier> = self
            .audiences
            .iter()
            .map(|audience| {
                let verifier =
                    AccessTokenVerifier::new(self.issuer.as_str(), &audience.resource, &jwks)
                        .accept_jwt_typ(audience.accept_jwt_typ);
                (audience.resource.clone(), verifier)
            })
            .collect();
        let count = verifiers.values().next().map_or(0, AccessTokenVerifier::key_count);
        if let Ok(mut keys) = self.keys.write() {
            *keys = Keys { verifiers, fetched_at: Instant::now() };
        }
        tracing::debug!(keys = count, "fetched the issuer's signing keys");
        Ok(())
    }

    /// Checks an access token for `resource` and one of the scopes `any_of` at `now` (seconds
    /// since the epoch).
    pub async fn check(
        &self,
        token: &str,
        resource: &str,
        any_of: &[&str],
        now: i64,
    ) -> Result<AccessTokenClaims, Refusal> {
        let digest = token_digest(resource, token);
        let remembered = self.verified.lock().ok().and_then(|cache| cache.get(&digest).cloned());
        let claims = match remembered {
            Some(claims) => {
                claims.permits(any_of, now)?;
                claims
            }
            None => {
                let claims = match self.verify(token, resource, any_of, now) {
                    Err(TokenError::UnknownKey(_)) => {
                        self.refetch_keys().await;
                        self.verify(token, resource, any_of, now)?
                    }
                    other => other?,
                };
                self.remember(digest, &claims, now);
                claims
            }
        };
        if self.is_revoked(&claims.grant_id) {
            return Err(Refusal::Revoked);
        }
        if self.is_token_revoked(&claims.jti) {
            return Err(Refusal::TokenRevoked);
        }
        Ok(claims)
    }

    fn verify(
        &self,
        token: &str,
        resource: &str,
        any_of: &[&str],
        now: i64,
    ) -> Result<AccessTokenClaims, TokenError> {
        let keys = self.keys.read().map_err(|_| TokenError::Signature)?;
        let verifier = keys.verifiers.get(resource).ok_or(TokenError::Audience)?;
        verifier.verify(token, any_of, now)
    }

    /// Refetches the JWKS, at most once per [`JWKS_REFETCH_INTERVAL`] however many unknown
    /// `kid`s arrive (a forged `kid` must not make the gateway hammer the issuer).
    async fn refetch_keys(&self) {
        let _one_at_a_time = self.refetch.lock().await;
        let due = self
            .keys
            .read()
            .map(|keys| keys.fetched_at.elapsed() >= JWKS_REFETCH_INTERVAL)
            .unwrap_or(false);
        if due && let Err(error) = self.fetch_keys().await {
            tracing::warn!(%error, "refetching the issuer's keys failed");
            if let Ok(mut keys) = self.keys.write() {
                keys.fetched_at = Instant::now();
            }
        }
    }

    fn remember(&self, digest: [u8; 32], claims: &AccessTokenClaims, now: i64) {
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE_SIZE {
                cache.retain(|_, claims| claims.expires_at > now);
                if cache.len() >= VERIFIED_CACHE_SIZE {
                    cache.clear();
                }
            }
            cache.insert(digest, claims.clone());
        }
    }

    /// True if the grant was revoked.
    pub fn is_revoked(&self, grant_id: &str) -> bool {
        self.revoked.lock().map(|revoked| revoked.contains_key(grant_id)).unwrap_or(true)
    }

    /// True if the access token with this `jti` was revoked (RFC 7009).
    pub fn is_token_revoked(&self, jti: &str) -> bool {
        self.revoked_tokens.lock().map(|revoked| revoked.contains_key(jti)).unwrap_or(true)
    }

    /// Records revocations of grants and of single tokens, and closes the live sessions they
    /// end: every session of a revoked grant, and the sessions a revoked token opened.
    pub fn revoke(&self, entries: &[FeedEntry], now: i64) {
        let forget_before = now - REVOCATION_MEMORY_SECONDS;
        if let (Ok(mut grants), Ok(mut tokens)) = (self.revoked.lock(), self.revoked_tokens.lock())
        {
            grants.retain(|_, at| *at > forget_before);
            tokens.retain(|_, at| *at > forget_before);
            for entry in entries {
                match &entry.jti {
                    None => grants.insert(entry.grant_id.clone(), entry.revoked_at),
                    Some(jti) => tokens.insert(jti.clone(), entry.revoked_at),
                };
            }
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            for entry in entries {
                let ended = match &entry.jti {
                    None => sessions.remove(&entry.grant_id).unwrap_or_default(),
                    Some(jti) => {
                        let Some(live) = sessions.get_mut(&entry.grant_id) else { continue };
                        let (ended, kept) = std::mem::take(live)
                            .into_iter()
                            .partition(|session| session.jti == *jti);
                        *live = kept;
                        if live.is_empty() {
                            sessions.remove(&entry.grant_id);
                        }
                        ended
                    }
                };
                for session in ended {
                    session.notify.notify_one();
                }
            }
        }
    }

    /// Registers a live session opened with a token of these claims; the returned guard's
    /// `revoked()` completes when the grant or the token is revoked, and dropping the guard
    /// deregisters the session.
    pub fn register(self: &Arc<Self>, claims: &AccessTokenClaims) -> SessionGuard {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.entry(claims.grant_id.clone()).or_default().push(LiveSession {
                id,
                jti: claims.jti.clone(),
                notify: notify.clone(),
            });
        }
        // A revocation that arrived between the token check and this registration.
        if self.is_revoked(&claims.grant_id) || self.is_token_revoked(&claims.jti) {
            notify.notify_one();
        }
        SessionGuard { authority: self.clone(), grant_id: claims.grant_id.clone(), id, notify }
    }

    /// The number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|sessions| sessions.values().map(Vec::len).sum()).unwrap_or(0)
    }

    /// Follows the issuer's revocation feed for ever (long polling), closing the sessions of
    /// each revoked grant and token. Starts from the beginning, so grants and tokens revoked
    /// before the gateway started are known too.
    pub async fn follow_revocations(self: Arc<Self>, now: impl Fn() -> i64) {
        let Some(_) = &self.feed_credentials else {
            tracing::warn!(
                "no [gateway] client_id and secret: revocations will not close live sessions"
            );
            return;
        };
        let mut cursor: i64 = 0;
        let mut backoff = Duration::from_secs(1);
        loop {
            let url = self.issuer.endpoint(&format!("/revocations?after={cursor}&wait=25"));
            match self.get_json(&url, true).await {
                Ok(page) => {
                    backoff = Duration::from_secs(1);
                    let items: Vec<FeedEntry> = page
                        .get("revocations")
                        .and_then(Value::as_array)
                        .map(|items| items.iter().filter_map(feed_entry).collect())
                        .unwrap_or_default();
                    if !items.is_empty() {
                        let tokens = items.iter().filter(|item| item.jti.is_some()).count();
                        tracing::info!(
                            grants = items.len() - tokens,
                            tokens,
                            "revocations received"
                        );
                        self.revoke(&items, now());
                    }
                    if let Some(next) = page.get("cursor").and_then(Value::as_i64) {
                        cursor = next.max(cursor);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the revocation feed failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// A live session's registration with the [`Authority`].
#[derive(Debug)]
pub struct SessionGuard {
    authority: Arc<Authority>,
    grant_id: String,
    id: u64,
    notify: Arc<Notify>,
}

impl SessionGuard {
    /// Completes when the session's grant, or the token that opened it, is revoked; says which.
    pub async fn revoked(&self) -> Revoked {
        self.notify.notified().await;
        // The revocation is recorded before the session is woken.
        if self.authority.is_revoked(&self.grant_id) { Revoked::Grant } else { Revoked::Token }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.authority.sessions.lock()
            && let Some(list) = sessions.get_mut(&self.grant_id)
        {
            list.retain(|session| session.id != self.id);
            if list.is_empty() {
                sessions.remove(&self.grant_id);
            }
        }
    }
}

/// A feed item: `{"grant_id", "revoked_at"}`, with `jti` when one access token was revoked.
fn feed_entry(item: &Value) -> Option<FeedEntry> {
    Some(FeedEntry {
        grant_id: item.get("grant_id")?.as_str()?.to_owned(),
        // Anything but a string revokes the whole grant: more than asked, never less.
        jti: item.get("jti").and_then(Value::as_str).map(str::to_owned),
        revoked_at: item.get("revoked_at")?.as_i64()?,
    })
}

fn token_digest(resource: &str, token: &str) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(resource.as_bytes());
    context.update(b"\0");
    context.update(token.as_bytes());
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    digest
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

    use super::*;

    fn authority() -> Arc<Authority> {
        Arc::new(Authority::unconnected(
            Issuer::parse("https://issuer.example").unwrap(),
            reqwest::Client::new(),
            Vec::new(),
            None,
        ))
    }

    fn claims(grant_id: &str, jti: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            subject: "fay@example.com".into(),
            client_id: "client".into(),
            grant_id: grant_id.into(),
            jti: jti.into(),
            expires_at: 2_000,
            scopes: Vec::new(),
            jkt: None,
            ..AccessTokenClaims::default()
        }
    }

    fn entry(grant_id: &str, jti: Option<&str>) -> FeedEntry {
        FeedEntry { grant_id: grant_id.into(), jti: jti.map(str::to_owned), revoked_at: 1_000 }
    }

    #[tokio::test]
    async fn a_revoked_token_ends_its_own_sessions_and_a_revoked_grant_all() {
        let authority = authority();
        let first = authority.register(&claims("g1", "t1"));
        let second = authority.register(&claims("g1", "t2"));
        let other = authority.register(&claims("g2", "t3"));
        authority.revoke(&[entry("g1", Some("t1"))], 1_000);
        assert_eq!(first.revoked().await, Revoked::Token);
        assert!(authority.is_token_revoked("t1") && !authority.is_revoked("g1"));
        assert_eq!(authority.session_count(), 2, "the grant's other session stays");
        authority.revoke(&[entry("g1", None)], 1_000);
        assert_eq!(second.revoked().await, Revoked::Grant);
        assert_eq!(authority.session_count(), 1);
        // A session that registers after its token's revocation ends at once.
        let late = authority.register(&claims("g2", "t1"));
        assert_eq!(late.revoked().await, Revoked::Token);
        drop(other);
    }

    #[test]
    fn feed_items_name_a_grant_or_one_of_its_tokens() {
        let item = serde_json::json!({"cursor": 3, "grant_id": "g", "revoked_at": 1_000});
        assert_eq!(feed_entry(&item), Some(entry("g", None)));
        let item =
            serde_json::json!({"cursor": 4, "grant_id": "g", "jti": "t", "revoked_at": 1_000});
        assert_eq!(feed_entry(&item), Some(entry("g", Some("t"))));
        let odd = serde_json::json!({"grant_id": "g", "jti": 7, "revoked_at": 1_000});
        assert_eq!(feed_entry(&odd), Some(entry("g", None)), "the whole grant");
        assert_eq!(feed_entry(&serde_json::json!({"revoked_at": 1_000})), None);
    }
}
