//! The grant core called directly, without HTTP: refresh rotation, reuse detection (both the
//! rotated-token half and the race half) and device polling, on in-memory SQLite with a manual
//! clock and a seeded random source.

use std::sync::{Arc, Mutex};

use letterlock_protocol::scope::{MAIL, OFFLINE_ACCESS};
use letterlock_server::AppState;
use letterlock_server::clients::Client;
use letterlock_server::clock::ManualClock;
use letterlock_server::config::Config;
use letterlock_server::grants::code::CodeRequest;
use letterlock_server::grants::consent::Approval;
use letterlock_server::grants::records::{DeviceRequest, PendingRequest};
use letterlock_server::grants::{Caller, GrantError, TokenAsk};
use letterlock_server::random::{RandomFailed, RandomSource, Randomness};
use letterlock_store::{GrantRecord, UserRecord};

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
    let config = Config::parse(&format!(
        "[[public_clients]]\nclient_id = \"open\"\n[[public_clients]]\nclient_id = \"other\"\n{CONFIG}"
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

    /// A grant with `offline_access`, and the first refresh token from redeeming its code.
    async fn refresh_token(&self) -> (GrantRecord, String) {
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
            code_challenge: CHALLENGE.into(),
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
        let issued = grants.redeem_code(self.caller(), &request).await.unwrap();
        assert_eq!(issued.token_type, "Bearer");
        (grant, issued.refresh_token.expect("offline_access gives a refresh token"))
    }

    async fn revoked(&self, grant: &GrantRecord) -> bool {
        self.state.store().grant(&grant.id).await.unwrap().unwrap().revoked_at.is_some()
    }
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
    assert!(grants.refresh(core.caller(), &third, &TokenAsk::default()).await.is_ok());
    assert!(!core.revoked(&grant).await);
    // Another client cannot use it, and an unknown token is refused.
    let caller = Caller { client: &core.other, jkt: None, peer: None };
    let error = grants.refresh(caller, &third, &TokenAsk::default()).await.unwrap_err();
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
    // RFC 9700 §4.14.2: the old token again means two parties hold it.
    let error = grants.refresh(core.caller(), &first, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::RefreshTokenReused), "{error:?}");
    assert_eq!(error.code().as_str(), "invalid_grant");
    assert!(core.revoked(&grant).await);
    // The legitimate holder's newer token dies with the grant.
    let newer = second.refresh_token.unwrap();
    let error = grants.refresh(core.caller(), &newer, &TokenAsk::default()).await.unwrap_err();
    assert!(matches!(error, GrantError::GrantRevoked), "{error:?}");
}

#[tokio::test]
async fn two_holders_refreshing_at_once_revoke_the_grant() {
    let core = core().await;
    let (grant, token) = core.refresh_token().await;
    let (one, two) = (core.state.grants(), core.state.grants());
    // Whichever way the two interleave, one of them finds the token rotated: before reading it
    // (a rotated token) or at the store's compare-and-swap (the race half).
    let ask = TokenAsk::default();
    let (first, second) = tokio::join!(
        one.refresh(core.caller(), &token, &ask),
        two.refresh(core.caller(), &token, &ask),
    );
    let (winner, loser) = match (first, second) {
        (Ok(issued), Err(error)) | (Err(error), Ok(issued)) => (issued, error),
        other => panic!("exactly one refresh may win: {other:?}"),
    };
    assert!(matches!(loser, GrantError::RefreshTokenReused), "{loser:?}");
    assert!(core.revoked(&grant).await);
    let error = one
        .refresh(core.caller(), &winner.refresh_token.unwrap(), &TokenAsk::default())
        .await
        .unwrap_err();
    assert!(matches!(error, GrantError::GrantRevoked), "{error:?}");
}

#[tokio::test]
async fn the_race_half_is_the_store_compare_and_swap() {
    let core = core().await;
    let (grant, token) = core.refresh_token().await;
    let hash = letterlock_server::secrets::hash_secret(&token);
    // Another holder rotates the token between this refresh's read and its write: the store
    // refuses the second rotation, and the core revokes the grant.
    assert!(
        core.state.store().record_issue(Some(&hash), None, &grant.id, NOW, None).await.unwrap()
    );
    assert!(
        !core.state.store().record_issue(Some(&hash), None, &grant.id, NOW, None).await.unwrap()
    );
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
