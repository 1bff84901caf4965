//! Second factors: a TOTP secret per user, its recovery codes, and the sign-ins that wait for
//! a second factor (issue 17).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, conflict_aware};

/// A user's TOTP factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Whose.
    pub user_id: String,
    /// The shared secret, RFC 4648 base32.
    pub secret: String,
    /// False until the person typed a first code from their app.
    pub confirmed: bool,
    /// The RFC 6238 time step of the last code accepted.
    pub last_step: Option<i64>,
    /// When it was made.
    pub created_at: i64,
}

/// A sign-in waiting for its second factor; the browser's cookie holds the id, the table its
/// hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignInRecord {
    /// SHA-256 of the id, base64url.
    pub id_hash: String,
    /// Who proved their password.
    pub user_id: String,
    /// The CSRF token of the second-factor forms.
    pub csrf: String,
    /// How the first factor was proven (the server's own label).
    pub method: String,
    /// Where to go once the second factor is proven.
    pub next: String,
    /// When the password was proven.
    pub created_at: i64,
    /// When it stops waiting.
    pub expires_at: i64,
}

fn pending_from_row(row: &AnyRow) -> Result<PendingSignInRecord, Error> {
    Ok(PendingSignInRecord {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        csrf: row.try_get("csrf")?,
        method: row.try_get("method")?,
        next: row.try_get("next")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    /// The user's TOTP factor, confirmed or not.
    pub async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, Error> {
        let row = sqlx::query(
            "SELECT user_id, secret, confirmed, last_step, created_at FROM totp_factors \
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TotpRecord {
                user_id: row.try_get("user_id")?,
                secret: row.try_get("secret")?,
                confirmed: row.try_get::<i64, _>("confirmed")? != 0,
                last_step: row.try_get("last_step")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Keeps a new, unconfirmed secret for the user, replacing an unconfirmed one; false (and
    /// nothing changed) when the user has a confirmed factor already.
    pub async fn put_unconfirmed_totp(
        &self,
        user_id: &str,
        secret: &str,
        at: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "INSERT INTO totp_factors (user_id, secret, confirmed, last_step, created_at) \
             VALUES ($1, $2, 0, NULL, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
             created_at = excluded.created_at, last_step = NULL \
             WHERE totp_factors.confirmed = 0",
        )
        .bind(user_id)
        .bind(secret)
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Confirms the user's unconfirmed factor whose secret is `secret`, with the step of the
    /// code that confirmed it as the last one used; false if there is none such (confirmed
    /// already, replaced meanwhile, or never made).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        secret: &str,
        step: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE totp_factors SET confirmed = 1, last_step = $3 \
             WHERE user_id = $1 AND secret = $2 AND confirmed = 0",
        )
        .bind(user_id)
        .bind(secret)
        .bind(step)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records that the code of `step` was used, if no code of that step or a later one was:
    /// false means a replay (two requests racing with one code find one of them refused).
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE totp_factors SET last_step = $2 \
             WHERE user_id = $1 AND confirmed = 1 AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes the user's factor and recovery codes; false if there was no factor.
    pub async fn delete_totp(&self, user_id: &str) -> Result<bool, Error> {
        let mut transaction = self.writer.begin().await?;
        let result = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces every recovery code of the user with these (hashes).
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        at: i64,
    ) -> Result<(), Error> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        for hash in code_hashes {
            let result = sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id)
            .bind(hash)
            .bind(at)
            .execute(&mut *transaction)
            .await;
            conflict_aware(result)?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Uses a recovery code (by hash) once: true the first time, false after or if unknown.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        at: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// How many of the user's recovery codes are unused.
    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, Error> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Keeps a sign-in that waits for its second factor.
    pub async fn insert_pending_sign_in(&self, pending: &PendingSignInRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO pending_sign_ins (id_hash, user_id, csrf, method, next, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&pending.id_hash)
        .bind(&pending.user_id)
        .bind(&pending.csrf)
        .bind(&pending.method)
        .bind(&pending.next)
        .bind(pending.created_at)
        .bind(pending.expires_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A waiting sign-in that has not expired at `now`.
    pub async fn pending_sign_in(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<PendingSignInRecord>, Error> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, csrf, method, next, created_at, expires_at \
             FROM pending_sign_ins WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pending_from_row).transpose()
    }

    /// Ends a waiting sign-in: true for the one request that ends it, false after.
    pub async fn delete_pending_sign_in(&self, id_hash: &str) -> Result<bool, Error> {
        let result = sqlx::query("DELETE FROM pending_sign_ins WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
