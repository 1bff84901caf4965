//! Letterlock's storage: one API over SQLite (the embedded default) and PostgreSQL (when several
//! server nodes share state).
//!
//! Both back ends run the same SQL through sqlx's `Any` driver: placeholders are `$1`-style
//! (SQLite accepts them), times are `BIGINT` seconds, keys are `BLOB`/`BYTEA`, JSON is `TEXT`.
//! Only the DDL differs, so each back end has its own migrations folder, both embedded.
//!
//! ```no_run
//! # async fn example() -> Result<(), letterlock_store::Error> {
//! let store = letterlock_store::Store::connect("sqlite://letterlock.db").await?;
//! store.migrate().await?;
//! let keys = store.signing_keys().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod accounts;
mod clients;
mod grants;
mod keys;

pub use accounts::{SessionRecord, UserRecord};
pub use clients::ClientRecord;
pub use grants::{CodeRedemption, GrantRecord, RefreshTokenRecord};
pub use keys::{SealingKeyRecord, SigningKeyRecord};

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL names neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// The database could not be reached or a query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// An insert met an existing primary key.
    #[error("a record with this key exists already")]
    Conflict,
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, one writer at a time (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The tables, in the order [`Store::row_counts`] reports them.
pub const TABLES: [&str; 12] = [
    "signing_keys",
    "sealing_keys",
    "clients",
    "users",
    "sessions",
    "authorization_requests",
    "grants",
    "codes",
    "refresh_tokens",
    "seen_once",
    "revocations",
    "_sqlx_migrations",
];

/// The storage handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl);
        };
        let url = match backend {
            // Create the file on first start.
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                pool_options
                    // One connection: SQLite has one writer, and an in-memory database exists
                    // per connection.
                    .max_connections(1)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => pool_options.max_connections(16).connect_with(options).await?,
        };
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The number of rows in each table of [`TABLES`].
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, i64)>, Error> {
        let mut counts = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            // The table names are the constants above, never input.
            let query = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
            let count: i64 = sqlx::query_scalar(query).fetch_one(&self.pool).await?;
            counts.push((table, count));
        }
        Ok(counts)
    }
}

pub(crate) fn conflict_aware<T>(result: Result<T, sqlx::Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(Error::Conflict),
        Err(error) => Err(error.into()),
    }
}
