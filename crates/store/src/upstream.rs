//! Sign-ins in flight at an upstream OpenID provider: kept between the redirect to the
//! provider and its answer, and taken once.

use sqlx::Row as _;

use crate::{Error, Store, conflict_aware};

impl Store {
    /// Keeps a sign-in started at an upstream provider under the hash of its `state` until
    /// `expires_at`. `record` is the server's JSON.
    pub async fn insert_upstream_sign_in(
        &self,
        state_hash: &str,
        record: &str,
        expires_at: i64,
    ) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO upstream_sign_ins (state_hash, record, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(state_hash)
        .bind(record)
        .bind(expires_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// Takes the sign-in kept under `state_hash`: it is deleted whatever the answer, so a
    /// `state` works once (RFC 9700 §4.7.1). `None` when there is none, or it expired by `now`.
    pub async fn take_upstream_sign_in(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<String>, Error> {
        let row = sqlx::query(
            "DELETE FROM upstream_sign_ins WHERE state_hash = $1 RETURNING record, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(row.try_get("record")?))
    }
}
