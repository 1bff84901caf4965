//! Device authorization requests (RFC 8628): the device code (by hash), the user code, the
//! request, its status, and the last poll.

use sqlx::Row as _;

use crate::{Error, Store, conflict_aware};

/// A device authorization request (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    /// SHA-256 of the device code.
    pub hash: String,
    /// What the person types, `XXXX-XXXX`.
    pub user_code: String,
    /// The request (client, scope, resources) as JSON.
    pub request: String,
    /// Where the request is in RFC 8628's flow.
    pub status: DeviceStatus,
    /// The grant, once approved.
    pub grant_id: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// The last poll, for `slow_down`.
    pub last_poll_at: i64,
}

/// Where a device code is in RFC 8628's flow; stored as `pending`, `approved`, `denied` or
/// `used`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Nobody has decided yet (RFC 8628 §3.5 `authorization_pending`).
    Pending,
    /// The person approved; the next poll gets tokens.
    Approved,
    /// The person denied (RFC 8628 §3.5 `access_denied`).
    Denied,
    /// Tokens were issued for it.
    Used,
}

impl DeviceStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    /// From storage. A text this version does not know counts as used, so that it never
    /// yields tokens.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Used,
        }
    }
}

impl Store {
    /// Stores a device authorization request.
    pub async fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO device_codes (hash, user_code, request, status, grant_id, expires_at, last_poll_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.hash)
        .bind(&record.user_code)
        .bind(&record.request)
        .bind(record.status.as_str())
        .bind(&record.grant_id)
        .bind(record.expires_at)
        .bind(record.last_poll_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A device authorization request by device-code hash or by user code.
    pub async fn device_code(
        &self,
        hash: Option<&str>,
        user_code: Option<&str>,
    ) -> Result<Option<DeviceCodeRecord>, Error> {
        let row = sqlx::query(
            "SELECT hash, user_code, request, status, grant_id, expires_at, last_poll_at FROM device_codes \
             WHERE hash = $1 OR user_code = $2",
        )
        .bind(hash.unwrap_or(""))
        .bind(user_code.unwrap_or(""))
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| {
            Ok(DeviceCodeRecord {
                hash: row.try_get("hash")?,
                user_code: row.try_get("user_code")?,
                request: row.try_get("request")?,
                status: DeviceStatus::from_stored(&row.try_get::<String, _>("status")?),
                grant_id: row.try_get("grant_id")?,
                expires_at: row.try_get("expires_at")?,
                last_poll_at: row.try_get("last_poll_at")?,
            })
        })
        .transpose()
    }

    /// Moves a device request from status `from` to `to` (with its grant); false if it was not
    /// in `from` (so that a decision, or a redemption, happens once).
    pub async fn update_device_code(
        &self,
        hash: &str,
        from: DeviceStatus,
        to: DeviceStatus,
        grant_id: Option<&str>,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE device_codes SET status = $1, grant_id = COALESCE($2, grant_id) WHERE hash = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(grant_id)
        .bind(hash)
        .bind(from.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a poll; returns the previous poll's time.
    pub async fn poll_device_code(&self, hash: &str, now: i64) -> Result<Option<i64>, Error> {
        let previous = sqlx::query("SELECT last_poll_at FROM device_codes WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.writer)
            .await?
            .map(|row| row.try_get::<i64, _>("last_poll_at"))
            .transpose()?;
        sqlx::query("UPDATE device_codes SET last_poll_at = $1 WHERE hash = $2")
            .bind(now)
            .bind(hash)
            .execute(&self.writer)
            .await?;
        Ok(previous)
    }
}
