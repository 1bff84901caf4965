//! The device authorization grant (RFC 8628): starting a request, the person's decision, and
//! the device's polling.

use letterlock_store::{DeviceCodeRecord, GrantRecord};

use super::issue::Subject;
use super::records::{DeviceRequest, DeviceStatus};
use super::{Caller, GrantError, Grants, TokenAsk, narrow};
use crate::random::{RandomFailed, Randomness};
use crate::secrets::hash_secret;

/// How long a device code lives, in seconds (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_SECONDS: i64 = 600;
/// The polling interval the device is told, in seconds (RFC 8628 §3.2 `interval`).
pub const POLL_INTERVAL: i64 = 5;
/// RFC 8628 §6.1: consonants only (no vowels, so no words), no easily confused letters.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A started device authorization: the codes to hand out (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct Started {
    /// The device code (the device's secret).
    pub device_code: String,
    /// What the person types, `XXXX-XXXX`.
    pub user_code: String,
}

impl Grants<'_> {
    /// Starts a device authorization for a checked request: stores the device code's hash with
    /// the request, pending.
    pub async fn start_device(&self, request: &DeviceRequest) -> Result<Started, GrantError> {
        let device_code = self.random.token(32)?;
        let now = self.now();
        let user_code = user_code(self.random)?;
        self.store
            .insert_device_code(&DeviceCodeRecord {
                hash: hash_secret(&device_code),
                user_code: user_code.clone(),
                request: request.to_json()?,
                status: DeviceStatus::Pending,
                grant_id: None,
                expires_at: now + DEVICE_CODE_SECONDS,
                last_poll_at: 0,
            })
            .await?;
        Ok(Started { device_code, user_code })
    }

    /// A device code the person may still decide on, by its user code: pending and unexpired.
    pub async fn pending_device(
        &self,
        user_code: &str,
    ) -> Result<Option<(DeviceCodeRecord, DeviceRequest)>, GrantError> {
        match self.store.device_code(None, Some(user_code)).await? {
            Some(record)
                if record.status == DeviceStatus::Pending && record.expires_at > self.now() =>
            {
                let request = DeviceRequest::from_json(&record.request)?;
                Ok(Some((record, request)))
            }
            _ => Ok(None),
        }
    }

    /// The person denied: false if the code was decided meanwhile.
    pub async fn deny_device(&self, record: &DeviceCodeRecord) -> Result<bool, GrantError> {
        Ok(self
            .store
            .update_device_code(&record.hash, DeviceStatus::Pending, DeviceStatus::Denied, None)
            .await?)
    }

    /// The person approved under `grant`: false if the code was decided meanwhile.
    pub async fn approve_device(
        &self,
        record: &DeviceCodeRecord,
        grant: &GrantRecord,
    ) -> Result<bool, GrantError> {
        Ok(self
            .store
            .update_device_code(
                &record.hash,
                DeviceStatus::Pending,
                DeviceStatus::Approved,
                Some(&grant.id),
            )
            .await?)
    }

    /// RFC 8628 §3.4: the device polls until the person decides. §3.5: `authorization_pending`
    /// until then, `slow_down` when it polls more often than [`POLL_INTERVAL`], `access_denied`,
    /// `expired_token`, and tokens once (the code is then used).
    pub async fn poll_device(
        &self,
        caller: Caller<'_>,
        device_code: &str,
        ask: &TokenAsk<'_>,
    ) -> Result<super::Issued, GrantError> {
        let hash = hash_secret(device_code);
        let now = self.now();
        let record = self
            .store
            .device_code(Some(&hash), None)
            .await?
            .ok_or(GrantError::UnknownDeviceCode)?;
        let request = DeviceRequest::from_json(&record.request)?;
        if request.client_id != caller.client.client_id {
            return Err(GrantError::DeviceCodeOfAnotherClient);
        }
        if record.expires_at <= now {
            return Err(GrantError::DeviceCodeExpired);
        }
        let previous_poll = self.store.poll_device_code(&hash, now).await?.unwrap_or(0);
        match record.status {
            DeviceStatus::Pending if now - previous_poll < POLL_INTERVAL => {
                Err(GrantError::SlowDown)
            }
            DeviceStatus::Pending => Err(GrantError::AuthorizationPending),
            DeviceStatus::Denied => Err(GrantError::AccessDenied),
            DeviceStatus::Approved => {
                // Only one poll wins the exchange of an approved code.
                if !self
                    .store
                    .update_device_code(&hash, DeviceStatus::Approved, DeviceStatus::Used, None)
                    .await?
                {
                    return Err(GrantError::DeviceCodeUsed);
                }
                let grant_id = record
                    .grant_id
                    .ok_or_else(|| GrantError::internal("an approved device code has no grant"))?;
                let (grant, address) = self.live_grant(&grant_id).await?;
                let granted_scope = letterlock_protocol::ScopeSet::parse(&request.scope)
                    .map_err(GrantError::internal)?;
                let asked = narrow(ask, &granted_scope, &request.resources, self.issuer.services)?;
                let subject = Subject { grant: &grant, address: &address, rotated: None };
                self.issue(caller, subject, asked, caller.jkt.map(str::to_owned)).await
            }
            DeviceStatus::Used => Err(GrantError::DeviceCodeUsed),
        }
    }
}

/// Eight letters from [`USER_CODE_ALPHABET`], each drawn uniformly, `XXXX-XXXX`: about 34 bits,
/// guessed at most `sign_in.attempts_per_minute_per_address` times a minute per address block.
pub fn user_code(random: &Randomness) -> Result<String, RandomFailed> {
    let letters = random.characters(USER_CODE_ALPHABET, 8)?;
    Ok(format!("{}-{}", &letters[..4], &letters[4..]))
}

/// Accepts what people type: lower case, spaces, missing or extra dashes.
pub fn normalize_user_code(text: &str) -> String {
    let letters: String = text
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .take(8)
        .collect();
    if letters.len() == 8 { format!("{}-{}", &letters[..4], &letters[4..]) } else { letters }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_consonants_in_two_groups() {
        let code = user_code(&Randomness::system()).unwrap();
        assert_eq!(code.len(), 9);
        assert!(
            code.chars().all(|c| c == '-' || USER_CODE_ALPHABET.contains(&(c as u8))),
            "{code}"
        );
        assert_eq!(normalize_user_code(" bcdf ghjk "), "BCDF-GHJK");
        assert_eq!(normalize_user_code("BCDF-GHJK"), "BCDF-GHJK");
        assert_eq!(normalize_user_code("bcd"), "BCD");
    }
}
