//! The server's signing and sealing keys.

use sqlx::Row as _;

use crate::{Error, Store, conflict_aware};

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

impl Store {
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
        .execute(&self.writer)
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
        .execute(&self.writer)
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
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
