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
mod device;
mod grants;
mod keys;
mod passkeys;
mod second_factor;
mod upstream;

pub use accounts::{LOCAL_SOURCE, SessionRecord, UserRecord};
pub use clients::ClientRecord;
pub use device::{DeviceCodeRecord, DeviceStatus};
pub use grants::{
    CodeRedemption, GrantRecord, RefreshContext, RefreshTokenRecord, RetryAnswer, RevocationRecord,
    Rotation,
};
pub use keys::{SealingKeyRecord, SigningKeyRecord};
pub use passkeys::{ChallengePurpose, PasskeyChallengeRecord, PasskeyRecord};
pub use second_factor::{PendingSignInRecord, TotpRecord};

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
    /// A stored value does not parse as its type (written by hand, or by a future version).
    #[error("stored {column} is corrupt: {message}")]
    Corrupt {
        /// Which column.
        column: &'static str,
        /// Why it does not parse.
        message: String,
    },
}

impl Error {
    pub(crate) fn corrupt(column: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Corrupt { column, message: error.to_string() }
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, one writer at a time (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Reading connections to a SQLite file; under WAL they run beside the one writing connection.
const SQLITE_READERS: u32 = 4;

/// The tables, in the order [`Store::row_counts`] reports them.
pub const TABLES: [&str; 19] = [
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
    "device_codes",
    "upstream_sign_ins",
    "totp_factors",
    "recovery_codes",
    "pending_sign_ins",
    "passkeys",
    "passkey_challenges",
    "_sqlx_migrations",
];

/// The storage handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads.
    pub(crate) pool: AnyPool,
    /// Writes: for SQLite one connection, so that writers never meet SQLite's busy handler
    /// (which sleeps); for PostgreSQL the same pool as reads.
    pub(crate) writer: AnyPool,
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
        let connect = |connections: u32| {
            let options = options.clone();
            let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
            async move {
                match backend {
                    Backend::Sqlite => {
                        pool_options
                            .max_connections(connections)
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
                            .await
                    }
                    Backend::Postgres => {
                        pool_options.max_connections(connections).connect_with(options).await
                    }
                }
            }
        };
        let (pool, writer) = match backend {
            // An in-memory database exists per connection: one connection does everything.
            Backend::Sqlite if url.contains(":memory:") => {
                let pool = connect(1).await?;
                (pool.clone(), pool)
            }
            Backend::Sqlite => (connect(SQLITE_READERS).await?, connect(1).await?),
            Backend::Postgres => {
                let pool = connect(16).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Self { pool, writer, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.writer).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.writer).await?,
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
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
