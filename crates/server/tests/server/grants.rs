//! The grant core called directly, without HTTP: refresh rotation, reuse detection (both the
//! rotated-token half and the race half), the retry window of issue 16, and device polling, on
//! in-memory SQLite with a manual clock and a seeded random source.

use std::sync::{Arc, Mutex};

use letterlock_protocol::scope::{MAIL, OFFLINE_ACCESS};
use letterlock_server::AppState;
use letterlock_server::clients::Client;
use letterlock_server::clock::ManualClock;
use letterlock_server::config::Config;
use letterlock_server::grants::code::CodeRequest;
use letterlock_server::grants::consent::Approval;
use letterlock_server::grants::records::{DeviceRequest, PendingRequest};
use letterlock_server::grants::{Caller, GrantError, Issued, TokenAsk};
use letterlock_server::random::{RandomFailed, RandomSource, Randomness};
use letterlock_store::{GrantRecord, Rotation, UserRecord};

use crate::flow::{ADDRESS, CONFIG, PASSWORD};
use crate::support::NOW;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const IMAP: &str = "imaps://mail.example.com";

/// SplitMix64 from a fixed seed: the same secrets on every run.
struct Seeded(Mutex<u64>);

impl RandomSource for Seeded {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), RandomFailed> {
        let mut state = self.0.lock().map_err(|_| RandomFailed)?;
        for chunk in bytes.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

struct Core {
    state: AppState,
    clock: Arc<ManualClock>,
    client: Client,
    other: Client,
    user: UserRecord,
}

async fn core() -> Core {
    core_with("").await
}

/// The core with `lifetimes` as the `[lifetimes]` section.
async fn core_with(lifetimes: &str) -> Core {
    let config = Config::parse(&format!(
        "[[public_clients]]\nclient_id = \"open\"\n[[public_clients]]\nclient_id = \"other\"\n\
         [lifetimes]\n{lifetimes}\n{CONFIG}"
    ))
    .unwrap();
    let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let random = Randomness::from_source(Arc::new(Seeded(Mutex::new(15))));
    let state = AppState::with_randomness(&config, store, clock.clone(), random).await.unwrap();
    let user =
        letterlock_server::accounts::add_user(state.store(), ADDRESS, PASSWORD, NOW).await.unwrap();
    let client = state.clients().open("open").await.unwrap();
    let other = state.clients().open("other").await.unwrap();
    Core { state, clock, client, other, user }
}

impl Core {
    fn caller(&self) -> Caller<'_> {
        Caller { client: &self.client, jkt: None, peer: Some("192.0.2.1") }
    }

    /// The caller proving the DPoP key `jkt`.
    fn caller_with_key<'a>(&'a self, jkt: &'a str) -> Caller<'a> {
        Caller { jkt: Some(jkt), ..self.caller() }
    }

    /// A grant with `offline_access`, and the first refresh token from redeeming its code.
    async fn refresh_token(&self) -> (GrantRecord, String) {
        self.refresh_token_for(self.caller()).await
    }

    /// The same, redeemed by `caller` (with a DPoP key, the refresh token is bound to it).
    async fn refresh_token_for(&self, caller: Caller<'_>) -> (GrantRecord, String) {
        let grants = self.state.grants();
        let scope = format!("{MAIL} {OFFLINE_ACCESS}");
        let resources = vec![IMAP.to_owned()];
        let approval = Approval {
            device_name: "laptop",
            scope: &scope,
            resources: &resources,
            redirect_uri: Some("http://127.0.0.1/cb"),
        };
        let grant = grants.consent(&self.client, &self.user, approval).await.unwrap();
        let pending = PendingRequest {
            client_id: self.client.client_id.clone(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            state: None,
            code_challenge: Some(CHALLENGE.into()),
            scope: scope.clone(),
            resources,
            dpop_jkt: None,
            login_hint: None,
            nonce: None,
        };
        let code =
            grants.create_code(&self.client, &pending, &self.user.id, &grant, None).await.unwrap();
        let request =
            CodeRequest { code: &code, code_verifier: Some(VERIFIER), ..CodeRequest::default() };
        let issued = grants.redeem_code(caller, &request).await.unwrap();
        assert_eq!(issued.token_type, "Bearer");
        (grant, issued.refresh_token.expect("offline_access gives a refresh token"))
    }

    async fn revoked(&self, grant: &GrantRecord) -> bool {
        self.state.store().grant(&grant.id).await.unwrap().unwrap().revoked_at.is_some()
    }

    async fn refresh_tokens_stored(&self) -> i64 {
        let counts = self.state.store().row_counts().await.unwrap();
        counts.into_iter().find(|(table, _)| *table == "refresh_tokens").unwrap().1
    }
}

/// Two answers are the same tokens.
fn same_tokens(one: &Issued, two: &Issued) -> bool {
    one.access_token == two.access_token
        && one.refresh_token == two.refresh_token
        && one.token_type == two.token_type
        && one.scope == two.scope
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_narrows_within_the_grant() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    core.clock.advance(60);
    let second = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    let second_token = second.refresh_token.clone().unwrap();
    assert_ne!(second_token, first, "rotated");
    assert!(second.scope.contains(OFFLINE_ACCESS));
    // A narrower scope is fine and still rotates (the grant is not lost by asking for less).
    let narrowed = grants
        .refresh(core.caller(), &second_token, &TokenAsk { scope: Some(MAIL), resources: vec![] })
        .await
        .unwrap();
    assert_eq!(narrowed.scope.to_string(), MAIL);
    assert!(narrowed.refresh_token.is_some());
    // Wider is not (RFC 6749 §6), and a resource must have been granted (RFC 8707 §2.2).
    let third = narrowed.refresh_token.unwrap();
    let wider = TokenAsk { scope: Some("urn:ietf:params:oauth:scope:contacts"), resources: vec![] };
    let error = grants.refresh(core.caller(), &third, &wider).await.unwrap_err();
    assert!(matches!(error, GrantError::ScopeNotGranted(_)), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_scope");
    let elsewhere = TokenAsk { scope: None, resources: vec!["smtps://mail.example.com"] };
    let error = grants.refresh(core.caller(), &third, &elsewhere).await.unwrap_err();
    assert_eq!(error.code().as_str(), "invalid_target");
    // A refusal spends nothing: the token still works.
    let fourth = grants.refresh(core.caller(), &third, &TokenAsk::default()).await.unwrap();
    assert!(!core.revoked(&grant).await);
    // Another client cannot use the current token (and is not reuse: see
    // `a_retry_from_another_client_revokes_the_grant` for a rotated one), and an unknown token is
    // refused.
    let current = fourth.refresh_token.unwrap();
    let caller = Caller { client: &core.other, jkt: None, peer: None };
    let error = grants.refresh(caller, &current, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenOfAnotherClient), "{error:?}");
    let error = grants.refresh(core.caller(), "nonsense", &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::UnknownRefreshToken), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_grant");
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_again_revokes_the_grant() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    let second = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    // Issue 16: the legitimate holder goes on with the new token, so the old one is no longer a
    // retry (before issue 16, presenting it right away was enough; within the retry window that
    // is now a retry, `a_retry_within_the_window_gets_the_same_answer_until_the_successor_is_used`).
    let second = second.refresh_token.unwrap();
    let third = grants.refresh(core.caller(), &second, &TokenAsk::default()).await.unwrap();
    // RFC 9700 §4.14.2: the old token again means two parties hold it.
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_grant");
    assert!(core.revoked(&grant).await);
    // The legitimate holder's newer token dies with the grant.
    let newer = third.refresh_token.unwrap();
    let error = grants.refresh(core.caller(), &newer, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::GrantRevoked), "{error:?}");
}

/// Issue 16 changed this rule: two refreshes at once with one token from the same installation
/// (Thunderbird refreshing for IMAP and SMTP) are indistinguishable from a retry after a lost
/// response. Whichever way they interleave (the second finds the token rotated, or loses the
/// store's compare-and-swap), both get the same tokens, the grant stays live, and exactly one
/// successor exists: nothing is issued twice.
#[tokio::test]
async fn refreshes_at_once_from_one_installation_get_the_same_tokens_once() {
    let core = core().await;
    let (grant, token) = core.refresh_token().await;
    let before = core.refresh_tokens_stored().await;
    let (one, two, three) = (core.state.grants(), core.state.grants(), core.state.grants());
    let ask = TokenAsk::default();
    let (first, second, third) = tokio::join!(
        one.refresh(core.caller(), &token, &ask),
        two.refresh(core.caller(), &token, &ask),
        three.refresh(core.caller(), &token, &ask),
    );
    let (first, second, third) = (first.unwrap(), second.unwrap(), third.unwrap());
    assert!(same_tokens(&first, &second) && same_tokens(&first, &third), "one answer");
    assert!(!core.revoked(&grant).await);
    assert_eq!(core.refresh_tokens_stored().await, before + 1, "one successor, not three");
    let next = first.refresh_token.unwrap();
    assert!(one.refresh(core.caller(), &next, &TokenAsk::default()).await.is_ok());
}

/// The race half still refuses what is not a retry: two holders of a DPoP-bound token with
/// different keys refreshing at once get at most one answer, and the one that finds the token
/// rotated revokes the grant (the other key's request, read before the rotation, is refused for
/// its key without tokens).
#[tokio::test]
async fn refreshes_at_once_with_another_key_never_issue_twice() {
    let core = core().await;
    let (grant, token) = core.refresh_token_for(core.caller_with_key("key-a")).await;
    let before = core.refresh_tokens_stored().await;
    let (one, two) = (core.state.grants(), core.state.grants());
    let ask = TokenAsk::default();
    let (owner, thief) = tokio::join!(
        one.refresh(core.caller_with_key("key-a"), &token, &ask),
        two.refresh(core.caller_with_key("key-b"), &token, &ask),
    );
    let thief = thief.unwrap_err();
    assert!(
        matches!(thief, GrantError::RefreshTokenReused | GrantError::RefreshTokenBoundToAnotherKey),
        "{thief:?}"
    );
    assert!(core.refresh_tokens_stored().await <= before + 1, "never two successors");
    if matches!(thief, GrantError::RefreshTokenReused) {
        assert!(core.revoked(&grant).await);
    } else {
        assert!(owner.is_ok());
    }
}

/// Issue 16: a lost response. The same installation presenting the rotated-out token within the
/// window gets the first answer again (the time left, not the full lifetimes), and the grant
/// stays live; once the successor has been used, the old token is reuse again.
#[tokio::test]
async fn a_retry_within_the_window_gets_the_same_answer_until_the_successor_is_used() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    let answer = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    assert_eq!(answer.refresh_token_expires_in, Some(90 * 86_400), "the default lifetime");
    core.clock.advance(30);
    let again = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    assert!(same_tokens(&answer, &again), "{again:?}");
    assert_eq!(again.expires_in, answer.expires_in - 30);
    assert_eq!(again.refresh_token_expires_in, Some(90 * 86_400 - 30));
    let again = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    assert!(same_tokens(&answer, &again), "as often as the window lasts");
    assert!(!core.revoked(&grant).await);
    // The successor works, and then the client evidently got the answer: the old token is reuse.
    let successor = answer.refresh_token.unwrap();
    let next = grants.refresh(core.caller(), &successor, &TokenAsk::default()).await.unwrap();
    assert!(!core.revoked(&grant).await);
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert!(core.revoked(&grant).await);
    let error =
        grants.refresh(core.caller(), &next.refresh_token.unwrap(), &TokenAsk::default()).await;
    assert!(matches!(error.unwrap_err(), GrantError::GrantRevoked));
}

/// Attack (issue 16): a retry after the window is reuse, and revokes the grant.
#[tokio::test]
async fn a_retry_after_the_window_revokes_the_grant() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    core.clock.advance(60);
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_grant");
    assert!(core.revoked(&grant).await);
}

/// Attack (issue 16): a thief who copied a DPoP-bound refresh token retries it within the
/// window with its own key, or with no proof: reuse, the grant is revoked, and nothing opens.
#[tokio::test]
async fn a_retry_with_another_dpop_key_or_none_revokes_the_grant() {
    for thief_key in [Some("key-b"), None] {
        let core = core().await;
        let (grant, first) = core.refresh_token_for(core.caller_with_key("key-a")).await;
        let grants = core.state.grants();
        let answer = grants
            .refresh(core.caller_with_key("key-a"), &first, &TokenAsk::default())
            .await
            .unwrap();
        core.clock.advance(1);
        let thief = Caller { jkt: thief_key, ..core.caller() };
        let error = grants.refresh(thief, &first, &TokenAsk::default()).await.unwrap_err();
        assert!(matches!(error, GrantError::RefreshTokenReused), "{thief_key:?}: {error:?}");
        assert!(core.revoked(&grant).await);
        // The owner's own retry and its successor die with the grant.
        let (owner, ask) = (core.caller_with_key("key-a"), TokenAsk::default());
        assert!(grants.refresh(owner, &first, &ask).await.is_err());
        let successor = answer.refresh_token.unwrap();
        let next = grants.refresh(owner, &successor, &ask).await.unwrap_err();
        assert!(matches!(next, GrantError::GrantRevoked), "{next:?}");
    }
}

/// Issue 16: the owner of a DPoP-bound token retries with its own key and gets the same answer.
#[tokio::test]
async fn a_retry_with_the_same_dpop_key_gets_the_same_answer() {
    let core = core().await;
    let (grant, first) = core.refresh_token_for(core.caller_with_key("key-a")).await;
    let grants = core.state.grants();
    let owner = core.caller_with_key("key-a");
    let answer = grants.refresh(owner, &first, &TokenAsk::default()).await.unwrap();
    let again = grants.refresh(owner, &first, &TokenAsk::default()).await.unwrap();
    assert!(same_tokens(&answer, &again));
    assert!(!core.revoked(&grant).await);
}

/// Attack (issue 16): another client presenting a rotated-out token within the window is reuse.
#[tokio::test]
async fn a_retry_from_another_client_revokes_the_grant() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    let caller = Caller { client: &core.other, jkt: None, peer: None };
    let error = grants.refresh(caller, &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert!(core.revoked(&grant).await);
}

/// `refresh_retry_window_seconds = 0` turns retries off: the rule before issue 16.
#[tokio::test]
async fn with_the_window_off_a_retry_revokes_at_once() {
    let core = core_with("refresh_retry_window_seconds = 0").await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert!(core.revoked(&grant).await);
    // And a window beyond the limit is a configuration error.
    let config =
        Config::parse(&format!("[lifetimes]\nrefresh_retry_window_seconds = 301\n{CONFIG}"))
            .unwrap();
    let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let error = AppState::new(&config, store, clock).await.err().expect("refused");
    assert!(error.to_string().contains("refresh_retry_window_seconds"), "{error}");
}

/// A person revoking the device within the window ends retries too.
#[tokio::test]
async fn a_retry_after_the_device_was_revoked_gets_nothing() {
    let core = core().await;
    let (grant, first) = core.refresh_token().await;
    let grants = core.state.grants();
    grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap();
    assert!(core.state.store().revoke_grant(&grant.id, None, NOW).await.unwrap());
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::GrantRevoked), "{error:?}");
}

#[tokio::test]
async fn the_race_half_is_the_store_compare_and_swap() {
    let core = core().await;
    let (grant, token) = core.refresh_token().await;
    let hash = letterlock_server::secrets::hash_secret(&token);
    // Another holder rotates the token between this refresh's read and its write: the store
    // refuses the second rotation, and the core revokes the grant.
    let rotation = Some(Rotation { hash: &hash, retry: None });
    assert!(core.state.store().record_issue(rotation, None, &grant.id, NOW, None).await.unwrap());
    assert!(!core.state.store().record_issue(rotation, None, &grant.id, NOW, None).await.unwrap());
    let error = core.state.grants().reuse_detected(&grant.id).await;
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert!(core.revoked(&grant).await);
}

#[tokio::test]
async fn device_polling_follows_rfc_8628() {
    let core = core().await;
    let grants = core.state.grants();
    let request = DeviceRequest {
        client_id: core.client.client_id.clone(),
        scope: MAIL.into(),
        resources: vec![IMAP.into()],
    };
    let started = grants.start_device(&request).await.unwrap();
    let ask = TokenAsk::default();
    let poll = || grants.poll_device(core.caller(), &started.device_code, &ask);
    // RFC 8628 §3.5: pending until the person decides; faster than the interval is slow_down.
    let error = poll().await.unwrap_err();
    assert!(matches!(error, GrantError::AuthorizationPending), "{error:?}");
    assert_eq!(error.code().as_str(), "authorization_pending");
    core.clock.advance(1);
    let error = poll().await.unwrap_err();
    assert!(matches!(error, GrantError::SlowDown), "{error:?}");
    assert_eq!(error.code().as_str(), "slow_down");
    core.clock.advance(5);
    assert!(matches!(poll().await.unwrap_err(), GrantError::AuthorizationPending));
    // Another client's poll is refused; a typed code is normalized.
    let caller = Caller { client: &core.other, jkt: None, peer: None };
    let error =
        grants.poll_device(caller, &started.device_code, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::DeviceCodeOfAnotherClient), "{error:?}");
    let typed = started.user_code.to_lowercase().replace('-', " ");
    let user_code = letterlock_server::grants::device::normalize_user_code(&typed);
    let (record, _) = grants.pending_device(&user_code).await.unwrap().expect("pending");
    // Approved: tokens once, then `used`.
    let approval = Approval {
        device_name: "tv",
        scope: MAIL,
        resources: &request.resources,
        redirect_uri: None,
    };
    let grant = grants.consent(&core.client, &core.user, approval).await.unwrap();
    assert!(grants.approve_device(&record, &grant).await.unwrap());
    assert!(!grants.approve_device(&record, &grant).await.unwrap(), "decided once");
    core.clock.advance(5);
    let issued = poll().await.unwrap();
    assert_eq!(issued.scope.to_string(), MAIL);
    assert!(issued.refresh_token.is_none(), "no offline_access");
    core.clock.advance(5);
    let error = poll().await.unwrap_err();
    assert!(matches!(error, GrantError::DeviceCodeUsed), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_grant");
}

#[tokio::test]
async fn a_denied_or_expired_device_code_gives_no_tokens() {
    let core = core().await;
    let grants = core.state.grants();
    let request = DeviceRequest {
        client_id: core.client.client_id.clone(),
        scope: MAIL.into(),
        resources: vec![IMAP.into()],
    };
    let denied = grants.start_device(&request).await.unwrap();
    let (record, _) = grants.pending_device(&denied.user_code).await.unwrap().unwrap();
    assert!(grants.deny_device(&record).await.unwrap());
    let error = grants.poll_device(core.caller(), &denied.device_code, &TokenAsk::default()).await;
    let error = error.unwrap_err();
    assert!(matches!(error, GrantError::AccessDenied), "{error:?}");
    assert_eq!(error.code().as_str(), "access_denied");
    let expiring = grants.start_device(&request).await.unwrap();
    core.clock.advance(letterlock_server::grants::device::DEVICE_CODE_SECONDS);
    assert!(grants.pending_device(&expiring.user_code).await.unwrap().is_none());
    let error =
        grants.poll_device(core.caller(), &expiring.device_code, &TokenAsk::default()).await;
    let error = error.unwrap_err();
    assert!(matches!(error, GrantError::DeviceCodeExpired), "{error:?}");
    assert_eq!(error.code().as_str(), "expired_token");
    let error = grants.poll_device(core.caller(), "nonsense", &TokenAsk::default()).await;
    assert!(matches!(error.unwrap_err(), GrantError::UnknownDeviceCode));
}

#[tokio::test]
async fn the_seeded_source_makes_the_same_secrets_each_run() {
    let (one, two) = (core().await, core().await);
    let request = |core: &Core| DeviceRequest {
        client_id: core.client.client_id.clone(),
        scope: MAIL.into(),
        resources: vec![IMAP.into()],
    };
    let first = one.state.grants().start_device(&request(&one)).await.unwrap();
    let second = two.state.grants().start_device(&request(&two)).await.unwrap();
    assert_eq!(first.user_code, second.user_code);
    assert_eq!(first.device_code, second.device_code);
}
