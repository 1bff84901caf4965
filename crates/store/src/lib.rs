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

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor as _, Row as _};

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

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id.
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// When it was made.
    pub created_at: i64,
    /// When it starts signing.
    pub activates_at: i64,
}

/// A sealing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealingKeyRecord {
    /// Key id.
    pub kid: String,
    /// 32 bytes of AES-256-GCM key material.
    pub material: Vec<u8>,
    /// When it was made.
    pub created_at: i64,
    /// When the operator retired it; client ids sealed under it no longer open.
    pub retired_at: Option<i64>,
}

/// A client registered in stored mode (RFC 7592).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub client_id: String,
    /// The verified metadata in RFC 7591 JSON form.
    pub metadata: String,
    /// The software statement as presented, echoed in RFC 7592 responses.
    pub software_statement: Option<String>,
    /// The `iss` of the trusted vendor that vouched for the client.
    pub vendor: Option<String>,
    /// SHA-256 of the registration access token, base64url.
    pub registration_token_hash: String,
    /// SHA-256 of the client secret, base64url, for `client_secret_basic` clients.
    pub client_secret_hash: Option<String>,
    /// When it was registered.
    pub issued_at: i64,
    /// When it was last updated.
    pub updated_at: i64,
}

/// The tables, in the order [`Store::row_counts`] reports them.
pub const TABLES: [&str; 3] = ["signing_keys", "sealing_keys", "clients"];

/// The storage handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
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
        for (table, query) in TABLES.into_iter().zip([
            "SELECT COUNT(*) FROM signing_keys",
            "SELECT COUNT(*) FROM sealing_keys",
            "SELECT COUNT(*) FROM clients",
        ]) {
            let count: i64 = sqlx::query_scalar(query).fetch_one(&self.pool).await?;
            counts.push((table, count));
        }
        Ok(counts)
    }

    /// Every signing key.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, Error> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_at, activates_at FROM signing_keys \
             ORDER BY activates_at, created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    algorithm: row.try_get("algorithm")?,
                    private_key: row.try_get("private_key")?,
                    created_at: row.try_get("created_at")?,
                    activates_at: row.try_get("activates_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key.
    pub async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&self.pool)
        .await;
        conflict_aware(result)
    }

    /// Every sealing key, oldest first.
    pub async fn sealing_keys(&self) -> Result<Vec<SealingKeyRecord>, Error> {
        let rows = sqlx::query(
            "SELECT kid, material, created_at, retired_at FROM sealing_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SealingKeyRecord {
                    kid: row.try_get("kid")?,
                    material: row.try_get("material")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Adds a sealing key.
    pub async fn insert_sealing_key(&self, key: &SealingKeyRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO sealing_keys (kid, material, created_at, retired_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.kid)
        .bind(&key.material)
        .bind(key.created_at)
        .bind(key.retired_at)
        .execute(&self.pool)
        .await;
        conflict_aware(result)
    }

    /// Retires a sealing key; returns false if there is no such key.
    pub async fn retire_sealing_key(&self, kid: &str, at: i64) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE sealing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Adds a stored client.
    pub async fn insert_client(&self, client: &ClientRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO clients (client_id, metadata, software_statement, vendor, \
             registration_token_hash, client_secret_hash, issued_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&client.client_id)
        .bind(&client.metadata)
        .bind(&client.software_statement)
        .bind(&client.vendor)
        .bind(&client.registration_token_hash)
        .bind(&client.client_secret_hash)
        .bind(client.issued_at)
        .bind(client.updated_at)
        .execute(&self.pool)
        .await;
        conflict_aware(result)
    }

    /// A stored client by id.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, Error> {
        let row = sqlx::query(
            "SELECT client_id, metadata, software_statement, vendor, registration_token_hash, \
             client_secret_hash, issued_at, updated_at FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Replaces a stored client's metadata, statement and vendor (RFC 7592 §2.2); returns false
    /// if there is no such client.
    pub async fn update_client(&self, client: &ClientRecord) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE clients SET metadata = $1, software_statement = $2, vendor = $3, \
             registration_token_hash = $4, client_secret_hash = $5, updated_at = $6 \
             WHERE client_id = $7",
        )
        .bind(&client.metadata)
        .bind(&client.software_statement)
        .bind(&client.vendor)
        .bind(&client.registration_token_hash)
        .bind(&client.client_secret_hash)
        .bind(client.updated_at)
        .bind(&client.client_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a stored client (RFC 7592 §2.3); returns false if there was none. Records that
    /// belong to a client reference it with `ON DELETE CASCADE`, so they go with it.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, Error> {
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

fn client_from_row(row: &AnyRow) -> Result<ClientRecord, Error> {
    Ok(ClientRecord {
        client_id: row.try_get("client_id")?,
        metadata: row.try_get("metadata")?,
        software_statement: row.try_get("software_statement")?,
        vendor: row.try_get("vendor")?,
        registration_token_hash: row.try_get("registration_token_hash")?,
        client_secret_hash: row.try_get("client_secret_hash")?,
        issued_at: row.try_get("issued_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn conflict_aware<T>(result: Result<T, sqlx::Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(Error::Conflict),
        Err(error) => Err(error.into()),
    }
}
