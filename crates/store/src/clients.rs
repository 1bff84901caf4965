//! Clients registered in stored mode (RFC 7592).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, conflict_aware};

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

impl Store {
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
        .execute(&self.writer)
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
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a stored client (RFC 7592 §2.3); returns false if there was none. Records that
    /// belong to a client (its grants, and their codes and refresh tokens) go with it, and its
    /// live grants are logged in the revocation feed at `at`, so that front doors refuse their
    /// access tokens and close their sessions too.
    pub async fn delete_client(&self, client_id: &str, at: i64) -> Result<bool, Error> {
        let mut transaction = self.begin_feed_write().await?;
        // RFC 7592 §2.3: what was granted to the client goes with it (its codes and refresh
        // tokens cascade from the grants). The access tokens already out carry only the grant
        // id, which front doors check against the feed, not against this table.
        crate::grants::revoke_live_grants(
            &mut transaction,
            "UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL AND client_id = $2 RETURNING id",
            client_id,
            at,
        )
        .await?;
        sqlx::query("DELETE FROM grants WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *transaction)
            .await?;
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
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
