//! Grants (one per user and installation: what the devices page lists), pending authorization
//! requests, codes, refresh tokens, and one-time values.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use letterlock_protocol::ScopeSet;

use crate::{Backend, Error, Store, conflict_aware};

/// A grant: this user allowed this installation these scopes on these services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// A random id, also carried in access tokens so that services can check revocation.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The installation's client id.
    pub client_id: String,
    /// The name the user gave this device on the consent page.
    pub device_name: String,
    /// The application's name as shown at consent.
    pub client_name: String,
    /// The vendor's software id.
    pub software_id: Option<String>,
    /// The software version.
    pub software_version: Option<String>,
    /// The vouching vendor's `iss`, if a trusted vendor vouched.
    pub vendor: Option<String>,
    /// Granted scopes (stored space-separated).
    pub scope: ScopeSet,
    /// Granted resources (stored as a JSON array of strings).
    pub resources: Vec<String>,
    /// The redirect URIs the person approved (stored as a JSON array of strings): a returning
    /// installation that proves its identity skips the consent page only for one of these.
    pub redirect_uris: Vec<String>,
    /// First approval.
    pub created_at: i64,
    /// Last token issued.
    pub last_used_at: i64,
    /// The address of the last token request.
    pub last_address: Option<String>,
    /// When the grant was revoked.
    pub revoked_at: Option<i64>,
}

/// A refresh token, by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub hash: String,
    /// Its grant.
    pub grant_id: String,
    /// The DPoP key thumbprint it is bound to.
    pub jkt: Option<String>,
    /// Issue time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it was exchanged for a new one; presenting it again revokes the grant, except for
    /// a retry within the window its [`RefreshTokenRecord::retry`] answer is kept for.
    pub rotated_at: Option<i64>,
    /// For a token issued by a refresh: the hash of the token it replaced, whose kept answer is
    /// erased when this one is used.
    pub replaces: Option<String>,
    /// For a rotated token: the answer its rotation gave, kept for a retry.
    pub retry: Option<RetryAnswer>,
}

/// The answer a refresh gave, kept with the rotated-out token for a retry after a lost response
/// (RFC 9700 §4.14.2 allows such a grace period). The store only keeps it: it is sealed by the
/// server under a key derived from the rotated token, which the store never holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAnswer {
    /// The sealed answer, as text.
    pub sealed: String,
    /// When the window ends; the answer is erased then.
    pub until: i64,
}

/// The refresh token a token response rotates out, and the answer to keep for its retry.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The hash of the token presented.
    pub hash: &'a str,
    /// The answer to keep with it, if retries are allowed.
    pub retry: Option<&'a RetryAnswer>,
}

/// A refresh token with its grant and whether the grant's user is disabled: everything a refresh
/// needs, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshContext {
    /// The token.
    pub token: RefreshTokenRecord,
    /// Its grant.
    pub grant: GrantRecord,
    /// The grant's user's address.
    pub address: String,
    /// True if the user is disabled.
    pub user_disabled: bool,
    /// The identity source that last proved the user (`users.source`).
    pub user_source: String,
    /// When that source last vouched for the user (`users.checked_at`).
    pub user_checked_at: i64,
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// The feed's cursor: entries are numbered in the order they became visible.
    pub cursor: i64,
    /// The grant revoked, or the grant of the access token revoked.
    pub grant_id: String,
    /// For the revocation of one access token (RFC 7009): its `jti`. `None` revokes the grant.
    pub token_id: Option<String>,
    /// When.
    pub revoked_at: i64,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code's grant and details.
    Fresh {
        /// The grant.
        grant_id: String,
        /// The code's details (JSON: client, redirect URI, PKCE challenge, ...).
        details: String,
        /// Expiry.
        expires_at: i64,
    },
    /// The code was used before: its grant must be revoked (RFC 6749 §4.1.2).
    Reused {
        /// The grant the code issued tokens under.
        grant_id: String,
    },
    /// No such code.
    Unknown,
}

const GRANT_COLUMNS: &str = "SELECT id, user_id, client_id, device_name, client_name, software_id, \
     software_version, vendor, scope, resources, redirect_uris, created_at, last_used_at, \
     last_address, revoked_at FROM grants";

fn grant_from_row(row: &AnyRow) -> Result<GrantRecord, Error> {
    Ok(GrantRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        device_name: row.try_get("device_name")?,
        client_name: row.try_get("client_name")?,
        software_id: row.try_get("software_id")?,
        software_version: row.try_get("software_version")?,
        vendor: row.try_get("vendor")?,
        scope: ScopeSet::parse(&row.try_get::<String, _>("scope")?)
            .map_err(|error| Error::corrupt("grants.scope", error))?,
        resources: json_strings(row, "resources")?,
        redirect_uris: json_strings(row, "redirect_uris")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        last_address: row.try_get("last_address")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// A JSON array of strings from a text column.
fn json_strings(row: &AnyRow, column: &'static str) -> Result<Vec<String>, Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|error| Error::corrupt(column, error))
}

/// A list of strings as the JSON text the store keeps.
fn json_text(strings: &[String]) -> String {
    serde_json::Value::from(strings.to_vec()).to_string()
}

impl Store {
    /// Keeps a pending authorization request (JSON) until `expires_at`.
    pub async fn insert_pending_request(
        &self,
        id: &str,
        request: &str,
        expires_at: i64,
    ) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO authorization_requests (id, request, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(request)
        .bind(expires_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A pending request that has not expired at `now`.
    pub async fn pending_request(&self, id: &str, now: i64) -> Result<Option<String>, Error> {
        let row = sqlx::query(
            "SELECT request FROM authorization_requests WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get("request").map_err(Error::from)).transpose()
    }

    /// Removes a pending request once decided; true if it was there (so a decision is taken
    /// once only).
    pub async fn delete_pending_request(&self, id: &str) -> Result<bool, Error> {
        let result = sqlx::query("DELETE FROM authorization_requests WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Adds a grant.
    pub async fn insert_grant(&self, grant: &GrantRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, device_name, client_name, software_id, \
             software_version, vendor, scope, resources, redirect_uris, created_at, last_used_at, \
             last_address, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&grant.id)
        .bind(&grant.user_id)
        .bind(&grant.client_id)
        .bind(&grant.device_name)
        .bind(&grant.client_name)
        .bind(&grant.software_id)
        .bind(&grant.software_version)
        .bind(&grant.vendor)
        .bind(grant.scope.to_string())
        .bind(json_text(&grant.resources))
        .bind(json_text(&grant.redirect_uris))
        .bind(grant.created_at)
        .bind(grant.last_used_at)
        .bind(&grant.last_address)
        .bind(grant.revoked_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// Replaces what a returning installation was granted (scopes, resources, approved redirect
    /// URIs, names).
    pub async fn update_grant(&self, grant: &GrantRecord) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE grants SET device_name = $1, client_name = $2, software_id = $3, software_version = $4, \
             vendor = $5, scope = $6, resources = $7, redirect_uris = $8 \
             WHERE id = $9 AND revoked_at IS NULL",
        )
        .bind(&grant.device_name)
        .bind(&grant.client_name)
        .bind(&grant.software_id)
        .bind(&grant.software_version)
        .bind(&grant.vendor)
        .bind(grant.scope.to_string())
        .bind(json_text(&grant.resources))
        .bind(json_text(&grant.redirect_uris))
        .bind(&grant.id)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// A grant by id.
    pub async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{GRANT_COLUMNS} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The live grant of a user for an installation, if any. Under a well-known public client id
    /// each approval is a grant of its own, so there may be several; callers do not ask for those.
    pub async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<GrantRecord>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{GRANT_COLUMNS} WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL"
        )))
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// A user's grants, live ones first, most recently used first.
    pub async fn grants_of_user(&self, user_id: &str) -> Result<Vec<GrantRecord>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{GRANT_COLUMNS} WHERE user_id = $1 ORDER BY revoked_at IS NOT NULL, last_used_at DESC, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Begins a transaction that appends to the revocation feed. Every writer of the feed starts
    /// here, so that the feed's order is the order in which its entries become visible.
    ///
    /// Front doors read the feed from a cursor (`seq > cursor`). On PostgreSQL a sequence number
    /// is drawn when a row is inserted, not when its transaction commits: a revocation that
    /// drew 7 and commits after another one drew and committed 8 would be behind a cursor that
    /// already reads 8, and no front door would ever hear of it (review 2026-12-01, finding 7).
    /// The lock is taken before anything else in the transaction, so its holder draws its numbers
    /// and commits before the next writer draws any; EXCLUSIVE mode still lets the feed's readers
    /// through. SQLite has one writing connection, so its transactions are in this order already.
    pub(crate) async fn begin_feed_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        let mut transaction = self.writer.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE revocations IN EXCLUSIVE MODE")
                .execute(&mut *transaction)
                .await?;
        }
        Ok(transaction)
    }

    /// Revokes one grant (of one user, when `user_id` is given) and logs it in the revocation
    /// feed; true if it was live.
    pub async fn revoke_grant(
        &self,
        id: &str,
        user_id: Option<&str>,
        at: i64,
    ) -> Result<bool, Error> {
        let mut transaction = self.begin_feed_write().await?;
        let result = sqlx::query(
            "UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 IS NULL OR user_id = $3)",
        )
        .bind(at)
        .bind(id)
        .bind(user_id)
        .execute(&mut *transaction)
        .await?;
        let revoked = result.rows_affected() == 1;
        if revoked {
            append_to_feed(&mut transaction, id, None, at).await?;
        }
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Revokes every live grant of a user and logs each in the feed; returns how many.
    pub async fn revoke_grants_of_user(&self, user_id: &str, at: i64) -> Result<u64, Error> {
        let mut transaction = self.begin_feed_write().await?;
        let revoked = revoke_live_grants(
            &mut transaction,
            "UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id = $2 RETURNING id",
            user_id,
            at,
        )
        .await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Revokes every live grant of the clients whose id starts with `prefix` (the client ids
    /// sealed under one key) and logs each in the feed; returns how many.
    pub async fn revoke_grants_of_clients_starting_with(
        &self,
        prefix: &str,
        at: i64,
    ) -> Result<u64, Error> {
        let mut transaction = self.begin_feed_write().await?;
        // Not LIKE: `_` is a wildcard there, and SQLite's LIKE ignores case.
        let revoked = revoke_live_grants(
            &mut transaction,
            "UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND substr(client_id, 1, length($2)) = $2 RETURNING id",
            prefix,
            at,
        )
        .await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Revokes one access token (RFC 7009) by its `jti`: remembered until `remember_until` for
    /// introspection, and logged in the feed with its grant so that front doors refuse it and
    /// close the sessions it opened. False if it was revoked before.
    pub async fn revoke_access_token(
        &self,
        grant_id: &str,
        token_id: &str,
        remember_until: i64,
        at: i64,
    ) -> Result<bool, Error> {
        let mut transaction = self.begin_feed_write().await?;
        // ON CONFLICT rather than a unique violation: that would abort a PostgreSQL transaction.
        let result = sqlx::query(
            "INSERT INTO seen_once (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(revoked_token_key(token_id))
        .bind(remember_until)
        .execute(&mut *transaction)
        .await?;
        let revoked = result.rows_affected() == 1;
        if revoked {
            append_to_feed(&mut transaction, grant_id, Some(token_id), at).await?;
        }
        transaction.commit().await?;
        Ok(revoked)
    }

    /// True if the access token with this `jti` was revoked (and has not expired since).
    pub async fn access_token_revoked(&self, token_id: &str) -> Result<bool, Error> {
        self.seen(&revoked_token_key(token_id)).await
    }

    /// The revocation feed after cursor `after` (0 for the start), oldest first, at most
    /// `limit`. Front doors follow it to refuse revoked grants and tokens and close their live
    /// sessions.
    pub async fn revocations_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RevocationRecord>, Error> {
        let rows = sqlx::query(
            "SELECT seq, grant_id, token_id, revoked_at FROM revocations WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevocationRecord {
                    cursor: row.try_get("seq")?,
                    grant_id: row.try_get("grant_id")?,
                    token_id: row.try_get("token_id")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Stores a code by hash.
    pub async fn insert_code(
        &self,
        hash: &str,
        grant_id: &str,
        details: &str,
        expires_at: i64,
    ) -> Result<(), Error> {
        let result =
            sqlx::query("INSERT INTO codes (hash, grant_id, details, expires_at, used_at) VALUES ($1, $2, $3, $4, NULL)")
                .bind(hash)
                .bind(grant_id)
                .bind(details)
                .bind(expires_at)
                .execute(&self.writer)
                .await;
        conflict_aware(result)
    }

    /// Redeems a code: marks it used at `now` if it was not, atomically, so that two racing
    /// requests cannot both get tokens.
    pub async fn redeem_code(&self, hash: &str, now: i64) -> Result<CodeRedemption, Error> {
        let marked =
            sqlx::query("UPDATE codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL")
                .bind(now)
                .bind(hash)
                .execute(&self.writer)
                .await?
                .rows_affected()
                == 1;
        let row = sqlx::query("SELECT grant_id, details, expires_at FROM codes WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(CodeRedemption::Unknown) };
        let grant_id: String = row.try_get("grant_id")?;
        if marked {
            Ok(CodeRedemption::Fresh {
                grant_id,
                details: row.try_get("details")?,
                expires_at: row.try_get("expires_at")?,
            })
        } else {
            Ok(CodeRedemption::Reused { grant_id })
        }
    }

    /// Stores a refresh token by hash.
    pub async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), Error> {
        let result = insert_refresh_token(token).execute(&self.writer).await;
        conflict_aware(result)
    }

    /// A refresh token by hash.
    pub async fn refresh_token(&self, hash: &str) -> Result<Option<RefreshTokenRecord>, Error> {
        let row = sqlx::query(
            "SELECT hash, grant_id, jkt, created_at AS token_created_at, expires_at, rotated_at, \
             replaces, retry_answer, retry_until FROM refresh_tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh_token_from_row).transpose()
    }

    /// A refresh token with its grant and user, in one query.
    pub async fn refresh_context(&self, hash: &str) -> Result<Option<RefreshContext>, Error> {
        let row = sqlx::query(
            "SELECT r.hash, r.grant_id, r.jkt, r.created_at AS token_created_at, r.expires_at, r.rotated_at, \
             r.replaces, r.retry_answer, r.retry_until, \
             g.id, g.user_id, g.client_id, g.device_name, g.client_name, g.software_id, g.software_version, \
             g.vendor, g.scope, g.resources, g.redirect_uris, g.created_at, g.last_used_at, \
             g.last_address, g.revoked_at, u.address, u.disabled, u.source, u.checked_at \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id \
             WHERE r.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(RefreshContext {
                token: refresh_token_from_row(&row)?,
                grant: grant_from_row(&row)?,
                address: row.try_get("address")?,
                user_disabled: row.try_get::<i64, _>("disabled")? != 0,
                user_source: row.try_get("source")?,
                user_checked_at: row.try_get("checked_at")?,
            })
        })
        .transpose()
    }

    /// A grant with its user's address and whether the user is disabled, in one query.
    pub async fn grant_with_user(
        &self,
        id: &str,
    ) -> Result<Option<(GrantRecord, String, bool)>, Error> {
        let row = sqlx::query(
            "SELECT g.id, g.user_id, g.client_id, g.device_name, g.client_name, g.software_id, \
             g.software_version, g.vendor, g.scope, g.resources, g.redirect_uris, g.created_at, \
             g.last_used_at, g.last_address, g.revoked_at, u.address, u.disabled \
             FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok((
                grant_from_row(&row)?,
                row.try_get("address")?,
                row.try_get::<i64, _>("disabled")? != 0,
            ))
        })
        .transpose()
    }

    /// Records what a token response issued, in one transaction: rotates the refresh token
    /// presented (if any; false, with nothing written, if it was rotated already), keeping the
    /// answer for its retry, erases the answer kept for the token it replaced (its successor is
    /// now used, so the client evidently got that answer), stores the new one (if any), and,
    /// when `touch`, records the grant's use at `now` from `address`.
    pub async fn record_issue(
        &self,
        rotated: Option<Rotation<'_>>,
        issued: Option<&RefreshTokenRecord>,
        grant_id: &str,
        now: i64,
        touch: Option<Option<&str>>,
    ) -> Result<bool, Error> {
        let mut transaction = self.writer.begin().await?;
        if let Some(rotation) = rotated {
            // The compare-and-swap: only a token still current is rotated.
            let result = sqlx::query(
                "UPDATE refresh_tokens SET rotated_at = $1, retry_answer = $2, retry_until = $3 \
                 WHERE hash = $4 AND rotated_at IS NULL",
            )
            .bind(now)
            .bind(rotation.retry.map(|retry| retry.sealed.as_str()))
            .bind(rotation.retry.map(|retry| retry.until))
            .bind(rotation.hash)
            .execute(&mut *transaction)
            .await?;
            if result.rows_affected() != 1 {
                transaction.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "UPDATE refresh_tokens SET retry_answer = NULL, retry_until = NULL \
                 WHERE hash = (SELECT replaces FROM refresh_tokens WHERE hash = $1) \
                 AND retry_answer IS NOT NULL",
            )
            .bind(rotation.hash)
            .execute(&mut *transaction)
            .await?;
        }
        if let Some(token) = issued {
            insert_refresh_token(token).execute(&mut *transaction).await?;
        }
        if let Some(address) = touch {
            sqlx::query("UPDATE grants SET last_used_at = $1, last_address = COALESCE($2, last_address) WHERE id = $3")
                .bind(now)
                .bind(address)
                .bind(grant_id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Remembers a one-time value until `expires_at`; false if it was seen before (a replay).
    pub async fn remember_once(&self, key: &str, expires_at: i64) -> Result<bool, Error> {
        let result = sqlx::query("INSERT INTO seen_once (key, expires_at) VALUES ($1, $2)")
            .bind(key)
            .bind(expires_at)
            .execute(&self.writer)
            .await;
        match conflict_aware(result) {
            Ok(()) => Ok(true),
            Err(Error::Conflict) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// True if a one-time value is remembered.
    pub async fn seen(&self, key: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT key FROM seen_once WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Deletes what has expired: pending requests, sessions, codes, refresh tokens, the answers
    /// kept for a refresh retry, one-time values, upstream sign-ins, sign-ins waiting for a
    /// second factor and passkey challenges past their time.
    pub async fn purge_expired(&self, now: i64) -> Result<(), Error> {
        for query in [
            "DELETE FROM authorization_requests WHERE expires_at <= $1",
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM codes WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "UPDATE refresh_tokens SET retry_answer = NULL, retry_until = NULL \
             WHERE retry_until IS NOT NULL AND retry_until <= $1",
            "DELETE FROM seen_once WHERE expires_at <= $1",
            "DELETE FROM device_codes WHERE expires_at <= $1",
            "DELETE FROM upstream_sign_ins WHERE expires_at <= $1",
            "DELETE FROM pending_sign_ins WHERE expires_at <= $1",
            "DELETE FROM passkey_challenges WHERE expires_at <= $1",
        ] {
            sqlx::query(query).bind(now).execute(&self.writer).await?;
        }
        Ok(())
    }
}

/// Runs `update` (`UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL AND … $2 …
/// RETURNING id`) and logs every grant it revoked in the feed, in the same transaction: the
/// grants logged are exactly the grants revoked, whatever else commits meanwhile.
pub(crate) async fn revoke_live_grants(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    update: &'static str,
    key: &str,
    at: i64,
) -> Result<u64, Error> {
    let rows = sqlx::query(update).bind(at).bind(key).fetch_all(&mut **transaction).await?;
    for row in &rows {
        let id: String = row.try_get("id")?;
        append_to_feed(transaction, &id, None, at).await?;
    }
    Ok(rows.len() as u64)
}

/// Appends one entry to the revocation feed; only inside [`Store::begin_feed_write`]'s
/// transactions.
async fn append_to_feed(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    grant_id: &str,
    token_id: Option<&str>,
    at: i64,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO revocations (grant_id, token_id, revoked_at) VALUES ($1, $2, $3)")
        .bind(grant_id)
        .bind(token_id)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The insert of a refresh token record, whole.
fn insert_refresh_token(
    token: &RefreshTokenRecord,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, grant_id, jkt, created_at, expires_at, rotated_at, \
         replaces, retry_answer, retry_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&token.hash)
    .bind(&token.grant_id)
    .bind(&token.jkt)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.rotated_at)
    .bind(&token.replaces)
    .bind(token.retry.as_ref().map(|retry| retry.sealed.as_str()))
    .bind(token.retry.as_ref().map(|retry| retry.until))
}

/// A refresh token record from a row that names its creation time `token_created_at`.
fn refresh_token_from_row(row: &AnyRow) -> Result<RefreshTokenRecord, Error> {
    let sealed: Option<String> = row.try_get("retry_answer")?;
    let until: Option<i64> = row.try_get("retry_until")?;
    Ok(RefreshTokenRecord {
        hash: row.try_get("hash")?,
        grant_id: row.try_get("grant_id")?,
        jkt: row.try_get("jkt")?,
        created_at: row.try_get("token_created_at")?,
        expires_at: row.try_get("expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        replaces: row.try_get("replaces")?,
        retry: sealed.zip(until).map(|(sealed, until)| RetryAnswer { sealed, until }),
    })
}

/// The one-time value that marks an access token as revoked.
fn revoked_token_key(token_id: &str) -> String {
    format!("revoked:{token_id}")
}
