//! Second factors for the sign-in page (issue 17): a TOTP app (RFC 6238, [`totp`]) with ten
//! recovery codes, set up from the account page and asked for after the password.
//!
//! The rules, in one place so that every page asks them the same way:
//! - A factor counts once confirmed: the person typed a first code from their app, so the
//!   secret is known to be in it. An unconfirmed secret protects nothing and is asked for
//!   nowhere.
//! - Each code is used once: the step of the last accepted code is stored, and a code of that
//!   step or an earlier one is refused (RFC 6238 §5.2), by a conditional update, so that two
//!   requests racing with one code find one of them refused.
//! - Recovery codes are stored as hashes and each is used once.
//! - Every attempt spends the account's sign-in budget ([`crate::accounts::SignInGuard`]),
//!   before anything is compared: six digits are a million guesses, not more.

pub mod totp;

use std::net::IpAddr;

use letterlock_store::UserRecord;

use crate::random::{RandomFailed, Randomness};
use crate::secrets::hash_secret;
use crate::state::AppState;
use totp::{Check, TotpSecret};

/// How many recovery codes a person gets at set-up, and each time they ask for new ones.
pub const RECOVERY_CODES: usize = 10;
/// The characters of a recovery code: lower-case letters and digits without the ones read
/// alike (`0`/`o`, `1`/`l`/`i`).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters in a recovery code: 16 of 31 are about 79 bits, beyond guessing online and
/// costly to search offline from a stolen hash.
const RECOVERY_LENGTH: usize = 16;

/// Why a second factor was not accepted, or could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecondFactorError {
    /// Neither a current code nor an unused recovery code.
    #[error("the code is wrong")]
    Wrong,
    /// A code already used (RFC 6238 §5.2): the next one in the app will do.
    #[error("this code was used already; wait for the next one in your app")]
    Replayed,
    /// The account's sign-in budget is spent.
    #[error("too many attempts; wait a minute and try again")]
    Throttled,
    /// A factor is set up already (a second set-up would replace it unseen).
    #[error("a one-time code app is set up already")]
    AlreadySetUp,
    /// No set-up is under way (it was finished, or replaced in another window).
    #[error("this set-up is no longer current; start it again")]
    NoSetUp,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] RandomFailed),
}

/// What proved the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A code from the TOTP app.
    Totp,
    /// One of the recovery codes, now used.
    RecoveryCode,
}

/// True when the user has a confirmed factor, so that a password sign-in must be followed by a
/// code.
pub async fn has_totp(
    state: &AppState,
    user: &UserRecord,
) -> Result<bool, letterlock_store::Error> {
    Ok(state.store().totp(&user.id).await?.is_some_and(|factor| factor.confirmed))
}

/// How many recovery codes are left when the user has a factor on; `None` when it is off.
pub async fn recovery_codes_left(
    state: &AppState,
    user: &UserRecord,
) -> Result<Option<i64>, letterlock_store::Error> {
    if has_totp(state, user).await? {
        Ok(Some(state.store().recovery_codes_left(&user.id).await?))
    } else {
        Ok(None)
    }
}

/// True when a password sign-in of this user must stop at the second-factor step: they set up
/// a factor, or the operator requires one (`[sign_in] require_second_factor`).
pub async fn due(state: &AppState, user: &UserRecord) -> Result<bool, letterlock_store::Error> {
    Ok(state.identity().require_second_factor() || has_totp(state, user).await?)
}

/// Starts a set-up: a new secret, kept unconfirmed (replacing an unfinished set-up), to show
/// once.
pub async fn begin_setup(
    state: &AppState,
    user: &UserRecord,
) -> Result<TotpSecret, SecondFactorError> {
    let secret = TotpSecret::generate(state.random())?;
    if state.store().put_unconfirmed_totp(&user.id, &secret.base32(), state.now()).await? {
        Ok(secret)
    } else {
        Err(SecondFactorError::AlreadySetUp)
    }
}

/// Finishes a set-up with the first code from the app (throttled like any code): the factor is
/// on, and the recovery codes to show once are returned.
pub async fn confirm_setup(
    state: &AppState,
    user: &UserRecord,
    typed: &str,
    peer: IpAddr,
) -> Result<Vec<String>, SecondFactorError> {
    if !state.accounts().allow_second_factor_attempt(user, peer) {
        return Err(SecondFactorError::Throttled);
    }
    let factor = match state.store().totp(&user.id).await? {
        Some(factor) if factor.confirmed => return Err(SecondFactorError::AlreadySetUp),
        Some(factor) => factor,
        None => return Err(SecondFactorError::NoSetUp),
    };
    let secret = TotpSecret::from_base32(&factor.secret).ok_or(SecondFactorError::NoSetUp)?;
    let Check::Accepted { step } = secret.check(typed, state.now(), None) else {
        return Err(SecondFactorError::Wrong);
    };
    if !state.store().confirm_totp(&user.id, &factor.secret, step).await? {
        return Err(SecondFactorError::NoSetUp);
    }
    new_recovery_codes(state, user).await
}

/// Checks a second factor: a current TOTP code, used once, or an unused recovery code, which
/// is then used up. Spends one attempt of the account's sign-in budget first.
pub async fn prove(
    state: &AppState,
    user: &UserRecord,
    typed: &str,
    peer: IpAddr,
) -> Result<Proof, SecondFactorError> {
    if !state.accounts().allow_second_factor_attempt(user, peer) {
        return Err(SecondFactorError::Throttled);
    }
    let typed = typed.trim();
    if typed.len() > 64 {
        return Err(SecondFactorError::Wrong);
    }
    let digits = typed.chars().filter(|character| !character.is_whitespace()).count();
    if digits == totp::DIGITS as usize {
        let Some(factor) = state.store().totp(&user.id).await?.filter(|factor| factor.confirmed)
        else {
            return Err(SecondFactorError::Wrong);
        };
        let secret = TotpSecret::from_base32(&factor.secret).ok_or(SecondFactorError::Wrong)?;
        return match secret.check(typed, state.now(), factor.last_step) {
            Check::Accepted { step } => {
                // RFC 6238 §5.2: the step is recorded only if no code of it or a later one was
                // accepted meanwhile; otherwise this is the second use of one code.
                if state.store().use_totp_step(&user.id, step).await? {
                    Ok(Proof::Totp)
                } else {
                    Err(SecondFactorError::Replayed)
                }
            }
            Check::Replayed => Err(SecondFactorError::Replayed),
            Check::Wrong => Err(SecondFactorError::Wrong),
        };
    }
    let hash = recovery_code_hash(&user.id, typed);
    if state.store().use_recovery_code(&user.id, &hash, state.now()).await? {
        Ok(Proof::RecoveryCode)
    } else {
        Err(SecondFactorError::Wrong)
    }
}

/// Replaces the user's recovery codes with ten new ones, returned to show once.
pub async fn new_recovery_codes(
    state: &AppState,
    user: &UserRecord,
) -> Result<Vec<String>, SecondFactorError> {
    let codes = recovery_codes(state.random())?;
    let hashes: Vec<String> = codes.iter().map(|code| recovery_code_hash(&user.id, code)).collect();
    state.store().replace_recovery_codes(&user.id, &hashes, state.now()).await?;
    Ok(codes)
}

/// Turns the factor off, with its recovery codes.
pub async fn turn_off(state: &AppState, user: &UserRecord) -> Result<bool, SecondFactorError> {
    Ok(state.store().delete_totp(&user.id).await?)
}

/// Ten fresh recovery codes, each as `abcd-efgh-jkmn-pqrs`.
pub fn recovery_codes(random: &Randomness) -> Result<Vec<String>, RandomFailed> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let characters = random.characters(RECOVERY_ALPHABET, RECOVERY_LENGTH)?;
            let groups: Vec<&str> = characters
                .as_bytes()
                .chunks(4)
                .filter_map(|chunk| std::str::from_utf8(chunk).ok())
                .collect();
            Ok(groups.join("-"))
        })
        .collect()
}

/// How a recovery code is kept: SHA-256 of the user id and the code as typed without case,
/// spaces or dashes. The user id keeps one hash from matching another account's code.
pub fn recovery_code_hash(user_id: &str, typed: &str) -> String {
    let normalized: String = typed
        .chars()
        .filter(|character| !character.is_whitespace() && *character != '-')
        .flat_map(char::to_lowercase)
        .collect();
    hash_secret(&format!("{user_id}:{normalized}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_forgiving_to_type() {
        let codes = recovery_codes(&Randomness::system()).unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(code.matches('-').count(), 3);
        }
        let code = &codes[0];
        let typed = format!(" {} ", code.replace('-', " ").to_uppercase());
        assert_eq!(recovery_code_hash("u1", code), recovery_code_hash("u1", &typed));
        assert_ne!(recovery_code_hash("u1", code), recovery_code_hash("u2", code));
    }
}
