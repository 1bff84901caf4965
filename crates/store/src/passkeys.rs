//! Passkeys (WebAuthn credentials) and the challenges of their ceremonies.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, conflict_aware};

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id, base64url.
    pub credential_id: String,
    /// Whose passkey.
    pub user_id: String,
    /// The COSE_Key bytes.
    pub public_key: Vec<u8>,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// The name the person gave it.
    pub name: String,
    /// The authenticator model, hex.
    pub aaguid: String,
    /// Transport hints, space-separated.
    pub transports: String,
    /// When it was registered.
    pub created_at: i64,
    /// When it last signed someone in.
    pub last_used_at: Option<i64>,
}

/// What a ceremony's challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Registering a passkey on the account page.
    Register,
    /// Signing in with a passkey.
    SignIn,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign-in",
        }
    }

    fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "register" => Ok(Self::Register),
            "sign-in" => Ok(Self::SignIn),
            other => Err(Error::corrupt("passkey_challenges.purpose", other)),
        }
    }
}

/// A challenge handed out and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallengeRecord {
    /// SHA-256 of the challenge, base64url.
    pub challenge_hash: String,
    /// Registration or sign-in.
    pub purpose: ChallengePurpose,
    /// The signed-in user, for a registration.
    pub user_id: Option<String>,
    /// The hash of what binds it to one browser (the session id or the sign-in token).
    pub bound_to: String,
    /// When it stops being accepted.
    pub expires_at: i64,
}

const PASSKEY_COLUMNS: &str = "credential_id, user_id, public_key, sign_count, name, aaguid, \
                               transports, created_at, last_used_at";

fn passkey_from_row(row: &AnyRow) -> Result<PasskeyRecord, Error> {
    let count: i64 = row.try_get("sign_count")?;
    Ok(PasskeyRecord {
        credential_id: row.try_get("credential_id")?,
        user_id: row.try_get("user_id")?,
        public_key: row.try_get("public_key")?,
        sign_count: u32::try_from(count)
            .map_err(|error| Error::corrupt("passkeys.sign_count", error))?,
        name: row.try_get("name")?,
        aaguid: row.try_get("aaguid")?,
        transports: row.try_get("transports")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Registers a passkey; [`Error::Conflict`] if the credential id is registered already.
    pub async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO passkeys (credential_id, user_id, public_key, sign_count, name, aaguid, \
             transports, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&passkey.credential_id)
        .bind(&passkey.user_id)
        .bind(&passkey.public_key)
        .bind(i64::from(passkey.sign_count))
        .bind(&passkey.name)
        .bind(&passkey.aaguid)
        .bind(&passkey.transports)
        .bind(passkey.created_at)
        .bind(passkey.last_used_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// A passkey by credential id.
    pub async fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, Error> {
        let query = sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
        ));
        let row = sqlx::query(query).bind(credential_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, Error> {
        let query = sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 \
             ORDER BY created_at, credential_id"
        ));
        let rows = sqlx::query(query).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(passkey_from_row).collect()
    }

    /// Removes one of a user's passkeys; false if the user has no passkey with this id.
    pub async fn delete_passkey(&self, user_id: &str, credential_id: &str) -> Result<bool, Error> {
        let result = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2")
            .bind(user_id)
            .bind(credential_id)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a sign-in with a passkey: the new signature counter and the time. The counter
    /// must grow, or both it and the stored one be 0 (an authenticator that keeps none;
    /// WebAuthn §6.1.1), checked in the same statement so that two sign-ins at once cannot both
    /// pass with one value. False when it did not grow (a cloned authenticator) or the passkey
    /// is gone.
    pub async fn record_passkey_use(
        &self,
        credential_id: &str,
        sign_count: u32,
        at: i64,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE passkeys SET sign_count = $1, last_used_at = $2 WHERE credential_id = $3 \
             AND (sign_count < $1 OR ($1 = 0 AND sign_count = 0))",
        )
        .bind(i64::from(sign_count))
        .bind(at)
        .bind(credential_id)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Keeps a challenge until it is answered or expires.
    pub async fn insert_passkey_challenge(
        &self,
        challenge: &PasskeyChallengeRecord,
    ) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO passkey_challenges (challenge_hash, purpose, user_id, bound_to, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&challenge.challenge_hash)
        .bind(challenge.purpose.as_str())
        .bind(&challenge.user_id)
        .bind(&challenge.bound_to)
        .bind(challenge.expires_at)
        .execute(&self.writer)
        .await;
        conflict_aware(result)
    }

    /// Takes a challenge: deletes it and returns it if it had not expired at `now`. A challenge
    /// is taken once; of two ceremonies answering the same one, only one gets it.
    pub async fn take_passkey_challenge(
        &self,
        challenge_hash: &str,
        now: i64,
    ) -> Result<Option<PasskeyChallengeRecord>, Error> {
        let row = sqlx::query(
            "DELETE FROM passkey_challenges WHERE challenge_hash = $1 \
             RETURNING challenge_hash, purpose, user_id, bound_to, expires_at",
        )
        .bind(challenge_hash)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let purpose: String = row.try_get("purpose")?;
        let challenge = PasskeyChallengeRecord {
            challenge_hash: row.try_get("challenge_hash")?,
            purpose: ChallengePurpose::parse(&purpose)?,
            user_id: row.try_get("user_id")?,
            bound_to: row.try_get("bound_to")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((challenge.expires_at > now).then_some(challenge))
    }
}
