//! The cache of one-time values (client assertion and DPoP proof `jti`s).
//!
//! With PostgreSQL, several server nodes share one database, so the cache is a table there: an
//! assertion used at one node is refused at every other. SQLite serves one node, so the cache
//! lives in that node's memory, which spares the single SQLite writer a transaction on every
//! token request.

use letterlock_jose::dpop::SeenOnce;
use letterlock_store::{Backend, Store};

/// One-time values, remembered until they expire.
pub enum ReplayCache {
    /// In this node's memory (SQLite deployments).
    Memory(SeenOnce),
    /// In the shared database (PostgreSQL deployments).
    Shared(Store),
}

impl ReplayCache {
    /// The right cache for the store's back end.
    pub fn for_store(store: &Store) -> Self {
        match store.backend() {
            Backend::Sqlite => Self::Memory(SeenOnce::default()),
            Backend::Postgres => Self::Shared(store.clone()),
        }
    }

    /// Remembers `key` until `expires_at`; false if it was seen before and has not expired.
    pub async fn first_use(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, letterlock_store::Error> {
        match self {
            Self::Shared(store) => store.remember_once(key, expires_at).await,
            Self::Memory(seen) => Ok(seen.first_use(key, expires_at, now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_until_expiry() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let cache = ReplayCache::for_store(&store);
        assert!(matches!(cache, ReplayCache::Memory(_)));
        assert!(cache.first_use("a", 100, 10).await.unwrap());
        assert!(!cache.first_use("a", 100, 50).await.unwrap());
        assert!(cache.first_use("a", 200, 100).await.unwrap(), "expired, so new again");
    }
}
