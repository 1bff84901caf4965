//! Accounts and sign-in sessions.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, conflict_aware};

/// A user. The address is the user name, kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// A random id that never changes.
    pub id: String,
    /// The mail address, lower-case.
    pub address: String,
    /// The Argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot sign in and its tokens stop working.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: i64,
    /// When the password last changed.
    pub password_changed_at: i64,
    /// The configured name of the identity source that last proved this person: `local` for
    /// the password hash above, else a Dovecot, LDAP or upstream OpenID source.
    pub source: String,
    /// When that source last vouched for the person (a sign-in, or a refresh's re-check).
    pub checked_at: i64,
}

/// The name of the source that is this table's own password hash.
pub const LOCAL_SOURCE: &str = "local";

/// A sign-in session; the cookie holds the id, the table its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id, base64url.
    pub id_hash: String,
    /// Whose session.
    pub user_id: String,
    /// The CSRF token of forms in this session.
    pub csrf: String,
    /// When it began.
    pub created_at: i64,
    /// When it ends.
    pub expires_at: i64,
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        address: row.try_get("address")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
        source: row.try_get("source")?,
        checked_at: row.try_get("checked_at")?,
    })
}

impl Store {
    /// Adds a user; [`Error::Conflict`] if the address is taken.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO users (id, address, password_hash, disabled, created_at, password_changed_at, \
             source, checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user.id)
        .bind(&user.address)
        .bind(&user.password_hash)
        .bind(i64::from(user.disabled))
        .bind(user.created_at)
        .bind(user.password_changed_at)
        .bind(&user.source)
        .bind(user.checked_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A user by address (lower-case).
    pub async fn user_by_address(&self, address: &str) -> Result<Option<UserRecord>, Error> {
        let query = sqlx::query(
            "SELECT id, address, password_hash, disabled, created_at, password_changed_at, source, checked_at \
             FROM users \
             WHERE address = $1",
        );
        let row = query.bind(address).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, Error> {
        let query = sqlx::query(
            "SELECT id, address, password_hash, disabled, created_at, password_changed_at, source, checked_at \
             FROM users \
             WHERE id = $1",
        );
        let row = query.bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, by address.
    pub async fn users(&self) -> Result<Vec<UserRecord>, Error> {
        let query = sqlx::query(
            "SELECT id, address, password_hash, disabled, created_at, password_changed_at, source, checked_at \
             FROM users \
             ORDER BY address",
        );
        query.fetch_all(&self.pool).await?.iter().map(user_from_row).collect()
    }

    /// Sets a new password hash; false if there is no such user.
    pub async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        at: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(at)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The user an identity source has just proved: the row for `address` (made, with no
    /// password hash and the id `new_id`, if there is none), marked as proved by `source` at
    /// `now`. The same address is the same person whichever source proves it.
    pub async fn user_proven_by(
        &self,
        address: &str,
        source: &str,
        new_id: &str,
        now: i64,
    ) -> Result<UserRecord, Error> {
        sqlx::query(
            "INSERT INTO users (id, address, password_hash, disabled, created_at, password_changed_at, \
             source, checked_at) VALUES ($1, $2, '', 0, $3, $3, $4, $3) \
             ON CONFLICT (address) DO UPDATE SET source = excluded.source, checked_at = excluded.checked_at",
        )
        .bind(new_id)
        .bind(address)
        .bind(now)
        .bind(source)
        .execute(&self.writer)
        .await?;
        let row = sqlx::query(
            "SELECT id, address, password_hash, disabled, created_at, password_changed_at, source, checked_at \
             FROM users WHERE address = $1",
        )
        .bind(address)
        .fetch_one(&self.writer)
        .await?;
        user_from_row(&row)
    }

    /// Records that the user's source vouched for them again at `now` (a refresh's re-check).
    pub async fn set_checked(&self, id: &str, now: i64) -> Result<(), Error> {
        sqlx::query("UPDATE users SET checked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Disables or enables a user; false if there is no such user. Disabling also ends the
    /// user's sessions.
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<bool, Error> {
        let result = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&self.writer)
            .await?;
        if disabled {
            self.delete_sessions_of(id).await?;
        }
        Ok(result.rows_affected() == 1)
    }

    /// Starts a session.
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id_hash)
        .bind(&session.user_id)
        .bind(&session.csrf)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A session that has not ended at `now`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, Error> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, csrf, created_at, expires_at FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                id_hash: row.try_get("id_hash")?,
                user_id: row.try_get("user_id")?,
                csrf: row.try_get("csrf")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends every session of a user.
    pub async fn delete_sessions_of(&self, user_id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
